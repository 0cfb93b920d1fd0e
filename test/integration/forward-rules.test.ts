/**
 * The public ext_proc filter sends mcp-pin only the headers it reads
 * (forward_rules in envoy/envoy.template.yaml: fewer bytes to encode, send
 * and decode per request), while the pod still gets the whole request. Real
 * Envoy and an SDK pod; the ext_proc server is a recorder serving mcp-pin's
 * own codec, so what Envoy sent is seen as mcp-pin would see it.
 */
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { headerPairs } from '../../src/extproc/headers.js';
import type { ProcessingRequest, ProcessingResponse } from '../../src/extproc/protocol.js';
import { HeaderReplies, continueResponseHeaders } from '../../src/extproc/responses.js';
import { extProcServiceDefinition } from '../../src/protos.js';
import { ENVOY_DEFAULTS } from '../../envoy/params.js';
import { startEnvoy, type EnvoyHandle } from '../helpers/envoy.js';
import { Pod } from '../helpers/pod.js';

describe('forward_rules: mcp-pin gets only the headers it reads', function () {
  this.timeout(60_000);
  let server: grpc.Server;
  let envoy: EnvoyHandle;
  let pod: Pod;
  after(async () => {
    await envoy?.stop();
    await pod?.stop();
    server?.forceShutdown();
  });

  it('request and response headers reduced to the read set; the pod still receives every header', async () => {
    pod = await new Pod({ name: 'pod1', host: '127.0.0.2' }).start();
    const seen: { phase: string; keys: string[] }[] = [];
    server = new grpc.Server();
    const replies = HeaderReplies.for(ENVOY_DEFAULTS.pinHeader);
    server.addService(extProcServiceDefinition(), {
      Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
        call.on('data', (msg: ProcessingRequest) => {
          if (msg.request === 'request_headers') {
            seen.push({ phase: 'request', keys: headerPairs(msg.request_headers).map(([k]) => k) });
            call.write(replies.pinnedTo(`${pod.host}:${pod.port}`, true));
          } else if (msg.request === 'response_headers') {
            seen.push({ phase: 'response', keys: headerPairs(msg.response_headers).map(([k]) => k) });
            call.write(continueResponseHeaders());
            call.end();
          }
        });
        call.on('end', () => call.end());
        call.on('error', () => {});
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    envoy = await startEnvoy({ extProc: [{ host: '127.0.0.1', port }], pods: [pod.address] });

    const extra = { authorization: 'Bearer secret', cookie: 'a=b', 'x-extra': 'yes' };
    const init = await fetch(envoy.mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...extra },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      }),
    });
    await init.arrayBuffer();
    const sid = init.headers.get('mcp-session-id');
    expect(init.status, 'initialize').to.equal(200);
    const call = await fetch(envoy.mcpUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': sid!,
        'mcp-protocol-version': '2025-11-25',
        ...extra,
      },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    await call.arrayBuffer();
    expect(call.status).to.equal(202);

    const requests = seen.filter((s) => s.phase === 'request');
    const responses = seen.filter((s) => s.phase === 'response');
    expect(requests).to.have.length(2);
    for (const r of requests)
      expect(
        r.keys.every((k) => [':method', ':path', 'content-type', 'mcp-session-id'].includes(k)),
        r.keys.join(','),
      ).to.equal(true);
    expect(requests[0]!.keys).to.include.members([':method', ':path', 'content-type']);
    expect(requests[1]!.keys).to.include.members([':method', ':path', 'content-type', 'mcp-session-id']);
    for (const r of responses)
      expect(
        r.keys.every((k) => [':status', 'content-type', 'mcp-session-id'].includes(k)),
        r.keys.join(','),
      ).to.equal(true);
    expect(responses[0]!.keys).to.include.members([':status', 'mcp-session-id']);
    // The pod saw the headers mcp-pin did not.
    const record = await pod.record();
    expect(record.requests.find((r) => r.sessionId === sid && r.rpcMethod === 'notifications/initialized')?.protocolVersion).to.equal('2025-11-25');
  });
});
