/**
 * EnvoyForwarder against a local HTTP server playing Envoy's internal
 * listener: which pod answered is read from the upstream header, and an
 * answer Envoy made itself (x-mcp-pin-envoy-reply) is no pod's answer.
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EnvoyForwarder, ENVOY_REPLY_HEADER } from '../../src/recovery/forwarder.js';

describe('EnvoyForwarder', () => {
  let server: Server;
  let forwarder: EnvoyForwarder;
  let reply: Record<string, string> = {};
  before(async () => {
    server = createServer((req, res) => {
      res.writeHead(reply[':status'] ? Number(reply[':status']) : 200, Object.fromEntries(Object.entries(reply).filter(([k]) => k !== ':status')));
      res.end(`pin=${req.headers['x-mcp-pin-dst']}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    forwarder = new EnvoyForwarder(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'x-mcp-pin-dst', 'x-mcp-pin-upstream', 2000);
  });
  after(async () => {
    await forwarder.close();
    await new Promise((r) => server.close(r));
  });

  const send = () =>
    forwarder.send({
      method: 'POST',
      path: '/mcp',
      headers: [],
      body: Buffer.from('{}'),
      pod: '10.0.0.1:8080',
      signal: AbortSignal.timeout(2000),
      maxBodyBytes: 1024,
    });

  it('reports the pod Envoy reached, and keeps the routing headers out of the answer', async () => {
    reply = { 'x-mcp-pin-upstream': '10.0.0.1:8080', 'content-type': 'application/json' };
    const r = await send();
    expect(r.upstream).to.equal('10.0.0.1:8080');
    expect(r.body.toString()).to.equal('pin=10.0.0.1:8080');
    expect(r.headers.map(([k]) => k)).to.not.include('x-mcp-pin-upstream');
  });

  it('reports no pod when Envoy answered itself (the pod refused or reset the connection)', async () => {
    reply = { ':status': '503', 'x-mcp-pin-upstream': '10.0.0.1:8080', [ENVOY_REPLY_HEADER]: 'upstream_reset_before_response_started{connection_failure}' };
    const r = await send();
    expect(r.status).to.equal(503);
    expect(r.upstream).to.equal(undefined);
    expect(r.headers.map(([k]) => k)).to.not.include(ENVOY_REPLY_HEADER);
  });
});
