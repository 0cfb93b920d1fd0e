/**
 * Property test of the ext_proc stream handler over real gRPC (in-process
 * mcp-pin gRPC server, @grpc/grpc-js client): random message sequences (any phase, any
 * order, odd headers and bodies) and raw garbage frames. Every stream must
 * end (OK or a gRPC error) without hanging, a well-formed exchange running
 * alongside must be unaffected, and the process must survive.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { message, opensWithMethod, type Msg } from '../helpers/hostile.js';
import { ExtProcService } from '../../src/extproc/server.js';
import { createGrpcServer, listen, shutdown } from '../../src/grpc-server.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import { extProcClient, wireRequestHeaders } from '../helpers/grpc-clients.js';
import { eventually } from '../helpers/net.js';
import { newMetrics, silentLog } from './fakes.js';

describe('ext_proc stream handler under random input', function () {
  this.timeout(120_000);
  let server: grpc.Server;
  let port: number;
  let client: ReturnType<typeof extProcClient>;
  const store = new MemoryStore({ sessionTtlMs: 60_000 });
  let service: ExtProcService;

  before(async () => {
    server = createGrpcServer({ maxMessageBytes: 1024 * 1024 });
    service = new ExtProcService({
      store,
      cfg: { pinHeader: 'x-mcp-pin-dst', maxInitBodyBytes: 1024, maxSessionIdLength: 64, lostSessionStatuses: [404] },
      log: silentLog,
      metrics: newMetrics(),
    });
    service.addTo(server);
    port = await listen(server, { kind: 'tcp', host: '127.0.0.1', port: 0 });
    client = extProcClient(port);
  });
  after(async () => {
    client.close();
    await shutdown(server, 2000);
    await store.close();
  });

  /** Sends the messages, half-closes, and resolves with how the stream ended. */
  function run(messages: Msg[]): Promise<{ replies: Msg[]; code: number }> {
    return new Promise((resolve, reject) => {
      const call = client.Process();
      const replies: Msg[] = [];
      const timer = setTimeout(() => {
        call.cancel();
        reject(new Error(`stream did not end: ${JSON.stringify(messages).slice(0, 500)}`));
      }, 3000);
      call.on('data', (m: Msg) => replies.push(m));
      call.on('error', (e: grpc.ServiceError) => {
        clearTimeout(timer);
        resolve({ replies, code: e.code });
      });
      call.on('end', () => {
        clearTimeout(timer);
        resolve({ replies, code: 0 });
      });
      for (const m of messages) call.write(m);
      call.end();
    });
  }

  const canary = (): Promise<{ replies: Msg[]; code: number }> => run([wireRequestHeaders({ ':method': 'GET', ':path': '/' }) as Msg]);

  it('ends every random sequence with OK or INVALID_ARGUMENT, never hangs, never disturbs a concurrent exchange', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(message, { maxLength: 6 }), async (messages) => {
        const [fuzzed, ok] = await Promise.all([run(messages), canary()]);
        expect([0, grpc.status.INVALID_ARGUMENT], JSON.stringify(fuzzed)).to.include(fuzzed.code);
        // A stream that opens with request headers naming a method is an
        // exchange: its headers get an answer, whatever follows.
        if (opensWithMethod(messages)) expect(fuzzed.replies.length, JSON.stringify(messages).slice(0, 300)).to.be.greaterThan(0);
        expect(ok.code).to.equal(0);
        expect(ok.replies).to.have.length(1);
      }),
      { numRuns: 500 },
    );
    await eventually(async () => service.openStreams === 0, 'every stream accounted as closed');
  });

  it('survives frames that are not protobuf at all', async () => {
    const raw = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), async (bytes) => {
          const code = await new Promise<number>((resolve) => {
            const call = raw.makeBidiStreamRequest(
              '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
              (b: Buffer) => b,
              (b: Buffer) => b,
            );
            call.on('data', () => {});
            call.on('error', (e: grpc.ServiceError) => resolve(e.code));
            call.on('end', () => resolve(0));
            call.write(Buffer.from(bytes));
            call.end();
          });
          // OK (a message Envoy could send), INVALID_ARGUMENT (decoded, but not
          // a valid ext_proc step) or INTERNAL (grpc-js could not decode it).
          expect([0, grpc.status.INVALID_ARGUMENT, grpc.status.INTERNAL]).to.include(code);
          const ok = await canary();
          expect(ok.code).to.equal(0);
        }),
        { numRuns: 100 },
      );
      await eventually(async () => service.openStreams === 0, 'every stream accounted as closed');
    } finally {
      raw.close();
    }
  });
});
