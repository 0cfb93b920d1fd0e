/**
 * EnvoyForwarder against a local HTTP server playing Envoy's internal
 * listener: which pod answered is read from the upstream header, and an
 * answer Envoy made itself (x-mcp-pin-envoy-reply) is no pod's answer.
 */
import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ByteBudget } from '../../src/recovery/byte-budget.js';
import { EnvoyForwarder, ENVOY_REPLY_HEADER, neverSent, ResponseTooLargeError } from '../../src/recovery/forwarder.js';
import { startBlackHole } from '../helpers/black-hole.js';

describe('EnvoyForwarder', () => {
  let server: Server;
  let forwarder: EnvoyForwarder;
  let reply: Record<string, string> = {};
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  afterEach(() => {
    handler = undefined;
  });
  before(async () => {
    server = createServer((req, res) => {
      if (handler) return void handler(req, res);
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

  it('sends the method, path, headers and body it is given, and the pin header only when it names a pod', async () => {
    handler = (req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () =>
        res.end(
          JSON.stringify({
            method: req.method,
            url: req.url,
            a: req.headers['x-a'],
            sid: req.headers['mcp-session-id'],
            pin: req.headers['x-mcp-pin-dst'] ?? null,
            body,
          }),
        ),
      );
    };
    const base = {
      path: '/mcp?x=1',
      headers: [
        ['x-a', '1'],
        ['mcp-session-id', 's-1'],
      ] as [string, string][],
      signal: AbortSignal.timeout(2000),
      maxBodyBytes: 1024,
    };
    const pinned = await forwarder.send({ ...base, method: 'POST', body: Buffer.from('hello'), pod: '10.0.0.1:8080' });
    expect(JSON.parse(pinned.body.toString())).to.deep.equal({ method: 'POST', url: '/mcp?x=1', a: '1', sid: 's-1', pin: '10.0.0.1:8080', body: 'hello' });
    const routed = await forwarder.send({ ...base, method: 'GET', body: null });
    expect(JSON.parse(routed.body.toString())).to.deep.equal({ method: 'GET', url: '/mcp?x=1', a: '1', sid: 's-1', pin: null, body: '' });
  });

  it('gives back every header of the answer, a repeated one as one pair per value', async () => {
    handler = (_req, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.setHeader('mcp-session-id', 'backend-9');
      res.end('{}');
    };
    const r = await send();
    expect(r.headers.filter(([k]) => k === 'set-cookie' || k === 'mcp-session-id')).to.deep.equal([
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
      ['mcp-session-id', 'backend-9'],
    ]);
  });

  it('reads an answer of maxBodyBytes exactly; one byte more, or more than the shared budget has left, fails as too large', async () => {
    let size = 1024;
    handler = (_req, res) => {
      res.write(Buffer.alloc(size - 1, 0x61));
      setImmediate(() => res.end(Buffer.alloc(1, 0x62)));
    };
    expect((await send()).body.length).to.equal(1024);
    size = 1025;
    const over = await send().then(
      () => null,
      (e: unknown) => e,
    );
    expect(over).to.be.instanceOf(ResponseTooLargeError);
    expect((over as Error).message).to.equal('response body over 1024 bytes (or over the shared relay budget)');
    size = 100;
    const budget = new ByteBudget(99);
    const lease = budget.lease();
    const short = await forwarder
      .send({ method: 'POST', path: '/mcp', headers: [], body: null, signal: AbortSignal.timeout(2000), maxBodyBytes: 1024, lease })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(short).to.be.instanceOf(ResponseTooLargeError);
    expect(budget.inUse, 'what was read before the refusal stays leased until the relay releases it').to.be.at.most(99);
    lease.release();
    expect(budget.inUse).to.equal(0);
    const room = new ByteBudget(100);
    const enough = room.lease();
    const ok = await forwarder.send({
      method: 'POST',
      path: '/mcp',
      headers: [],
      body: null,
      signal: AbortSignal.timeout(2000),
      maxBodyBytes: 1024,
      lease: enough,
    });
    expect(ok.body.length).to.equal(100);
    expect(room.inUse, 'held until the relay hands the answer on').to.equal(100);
    enough.release();
  });

  it('sends nothing more once closed (mcp-pin shutting down)', async () => {
    const closing = new EnvoyForwarder(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'x-mcp-pin-dst', 'x-mcp-pin-upstream', 2000);
    await closing.close();
    const err = await closing.send({ method: 'POST', path: '/mcp', headers: [], body: null, signal: AbortSignal.timeout(2000), maxBodyBytes: 1024 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as { code?: string })?.code).to.equal('UND_ERR_DESTROYED');
  });

  it('gives up connecting after 2 s, whatever the recovery deadline: a connect that hangs is "never sent", not a deadline spent', async function () {
    this.timeout(20_000);
    const hole = await startBlackHole();
    const slow = new EnvoyForwarder(`http://127.0.0.1:${hole.port}`, 'x-mcp-pin-dst', 'x-mcp-pin-upstream', 10_000);
    // undici does not end a connect in progress when the signal aborts: its own connect timeout is what ends it.
    const deadline = AbortSignal.timeout(7_000);
    try {
      const err = await slow.send({ method: 'POST', path: '/mcp', headers: [], body: null, pod: undefined, signal: deadline, maxBodyBytes: 1024 }).then(
        () => new Error('answered'),
        (e: unknown) => e,
      );
      expect(deadline.aborted, 'failed before the deadline').to.equal(false);
      expect((err as { code?: string }).code, String(err)).to.equal('UND_ERR_CONNECT_TIMEOUT');
      expect(neverSent(err)).to.equal(true);
    } finally {
      await slow.close();
      await hole.stop();
    }
  });

  it('speaks HTTP over a Unix socket when the recovery URL is unix:/path (the shipped deployments)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-pin-fwd-'));
    const path = join(dir, 'internal.sock');
    const unixServer = createServer((req, res) => res.end(`over the socket: ${req.url}`));
    await new Promise<void>((r) => unixServer.listen(path, r));
    const viaSocket = new EnvoyForwarder(`unix:${path}`, 'x-mcp-pin-dst', 'x-mcp-pin-upstream', 2000);
    try {
      const r = await viaSocket.send({ method: 'GET', path: '/mcp', headers: [], body: null, signal: AbortSignal.timeout(2000), maxBodyBytes: 1024 });
      expect(r.body.toString()).to.equal('over the socket: /mcp');
    } finally {
      await viaSocket.close();
      await new Promise((r) => unixServer.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
