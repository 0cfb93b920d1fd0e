/**
 * mcp-pin's gRPC server (src/grpc-server.ts: @grpc/grpc-js with mcp-pin's
 * options, ext_proc and grpc.health.v1 on one port) as @grpc/grpc-js clients
 * see it: limits, unknown methods, non-gRPC requests, health, and the
 * shutdown that lets calls in flight finish while refusing new ones.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { connect } from 'node:http2';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PinError } from '../../src/errors.js';
import { ExtProcService } from '../../src/extproc/server.js';
import { createGrpcServer, listen, shutdown, SOCKET_MODE } from '../../src/grpc-server.js';
import { Health } from '../../src/health.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import { extProcClient, healthClient, healthWatch, wireRequestHeaders, wireResponseHeaders } from '../helpers/grpc-clients.js';
import { newMetrics, silentLog } from './fakes.js';

const GET = wireRequestHeaders({ ':method': 'GET', ':path': '/' });
/** Request headers of a session the store does not know: the exchange then waits for the response phase. */
const UNKNOWN_SESSION = wireRequestHeaders({ ':method': 'GET', ':path': '/mcp', 'mcp-session-id': 'unknown' });

describe('gRPC server (grpc-js)', function () {
  this.timeout(20_000);
  let server: grpc.Server;
  let port: number;
  let service: ExtProcService;
  const health = new Health();
  const store = new MemoryStore({ sessionTtlMs: 60_000 });

  beforeEach(async () => {
    server = createGrpcServer({ maxMessageBytes: 1000 });
    service = new ExtProcService({
      store,
      cfg: { pinHeader: 'x-mcp-pin-dst', maxInitBodyBytes: 1024, maxSessionIdLength: 64, lostSessionStatuses: [404] },
      log: silentLog,
      metrics: newMetrics(),
    });
    service.addTo(server);
    health.addTo(server);
    port = await listen(server, { kind: 'tcp', host: '127.0.0.1', port: 0 });
  });
  afterEach(() => shutdown(server, 1000));
  after(() => store.close());

  const statusOf = (call: NodeJS.EventEmitter): Promise<grpc.StatusObject> => new Promise((resolve) => call.on('status', resolve));

  it('answers an ext_proc exchange and ends the stream with OK once nothing more will come', async () => {
    const client = extProcClient(port);
    try {
      const call = client.Process();
      const replies: Record<string, unknown>[] = [];
      call.on('data', (m: Record<string, unknown>) => replies.push(m));
      const status = statusOf(call);
      call.write(GET);
      expect((await status).code).to.equal(grpc.status.OK);
      expect(replies).to.have.length(1);
      expect(replies[0]!.request_headers).to.not.equal(undefined);
      expect(service.openStreams).to.equal(0);
    } finally {
      client.close();
    }
  });

  it('answers UNIMPLEMENTED for an unknown method and RESOURCE_EXHAUSTED over the message size limit', async () => {
    const raw = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const nope = raw.makeBidiStreamRequest(
        '/test.Echo/Nope',
        (b: Buffer) => b,
        (b: Buffer) => b,
      );
      nope.on('error', () => {});
      const nopeStatus = statusOf(nope);
      nope.write(Buffer.from('x'));
      nope.end();
      expect((await nopeStatus).code).to.equal(grpc.status.UNIMPLEMENTED);

      const big = raw.makeBidiStreamRequest(
        '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
        (b: Buffer) => b,
        (b: Buffer) => b,
      );
      big.on('error', () => {});
      const bigStatus = statusOf(big);
      big.write(Buffer.alloc(1001));
      big.end();
      expect((await bigStatus).code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
    } finally {
      raw.close();
    }
  });

  it('serves grpc.health.v1: Check with the current status, NOT_FOUND for unknown services, Watch follows changes', async () => {
    const c = healthClient(port);
    const w = healthWatch(port, '');
    try {
      health.set('NOT_SERVING');
      expect(await c.check()).to.equal('NOT_SERVING');
      expect(await w.next()).to.equal('NOT_SERVING');
      health.set('SERVING');
      expect(await c.check('envoy.service.ext_proc.v3.ExternalProcessor')).to.equal('SERVING');
      expect(await w.next()).to.equal('SERVING');
      const err = await c.check('nope').then(
        () => null,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code).to.equal(grpc.status.NOT_FOUND);
    } finally {
      w.close();
      c.close();
    }
  });

  it('refuses plain HTTP/2 requests that are not gRPC', async () => {
    const session = connect(`http://127.0.0.1:${port}`);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ':method': 'GET', ':path': '/' });
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', reject);
        req.end();
      });
      expect(status).to.equal(415);
    } finally {
      session.close();
    }
  });

  it('on shutdown refuses new connections and streams at once (GOAWAY) and lets an open exchange finish', async () => {
    const client = extProcClient(port);
    try {
      const open = client.Process();
      const openStatus = statusOf(open);
      open.write(UNKNOWN_SESSION);
      await once(open, 'data');
      let stopped = false;
      const stopping = shutdown(server, 10_000).then(() => (stopped = true));

      // The port takes no new connection (Envoy connects to another replica).
      const refused = await new Promise<string>((resolve) => {
        const sock = netConnect(port, '127.0.0.1');
        sock.on('connect', () => {
          sock.destroy();
          resolve('connected');
        });
        sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      expect(refused).to.equal('ECONNREFUSED');
      const late = client.Process();
      late.on('error', () => {});
      late.on('data', () => {});
      const lateStatus = statusOf(late);
      late.write(GET);
      expect((await lateStatus).code).to.equal(grpc.status.UNAVAILABLE);
      expect(stopped, 'waits for the open exchange').to.equal(false);

      open.write(wireResponseHeaders({ ':status': '200' }));
      const [resp] = (await once(open, 'data')) as [Record<string, unknown>];
      expect(resp.response_headers).to.not.equal(undefined);
      expect((await openStatus).code).to.equal(grpc.status.OK);
      await stopping;
      expect(service.openStreams).to.equal(0);
    } finally {
      client.close();
    }
  });

  describe('on a Unix socket (the shipped deployments: only what can open the file reaches the control plane)', () => {
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'mcp-pin-sock-'))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('serves ext_proc and health there, with mode 0660 (owner and group only)', async () => {
      const path = join(dir, 'grpc.sock');
      const unixServer = createGrpcServer();
      const serving = new Health();
      serving.set('SERVING');
      serving.addTo(unixServer);
      expect(await listen(unixServer, { kind: 'unix', path })).to.equal(0);
      try {
        expect(statSync(path).isSocket()).to.equal(true);
        expect(statSync(path).mode & 0o777)
          .to.equal(SOCKET_MODE)
          .and.to.equal(0o660);
        const h = healthClient(`unix:${path}`);
        try {
          expect(await h.check('')).to.equal('SERVING');
        } finally {
          h.close();
        }
      } finally {
        await shutdown(unixServer, 1000);
      }
    });

    it('replaces a socket left by a process that died, but never one a live process serves, nor a file that is not a socket', async () => {
      const path = join(dir, 'grpc.sock');
      // A dead process's socket: a process that listened there and was killed (SIGKILL unlinks nothing).
      const dead = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await once(dead.stdout!, 'data');
      dead.kill('SIGKILL');
      await once(dead, 'exit');
      expect(statSync(path).isSocket()).to.equal(true);
      const first = createGrpcServer();
      await listen(first, { kind: 'unix', path });
      try {
        const second = createGrpcServer();
        const err = await listen(second, { kind: 'unix', path }).then(
          () => undefined,
          (e: unknown) => e as PinError,
        );
        expect(err?.code).to.equal('MCP_PIN_LISTEN_FAILED');
        expect(err?.message).to.match(/another process serves it/);
        second.forceShutdown();
      } finally {
        await shutdown(first, 1000);
      }
      const file = join(dir, 'not-a-socket');
      writeFileSync(file, 'x');
      const third = createGrpcServer();
      const err = await listen(third, { kind: 'unix', path: file }).then(
        () => undefined,
        (e: unknown) => e as PinError,
      );
      expect(err?.message).to.match(/not a socket is in the way/);
      expect(readFileSync(file, 'utf8')).to.equal('x');
      third.forceShutdown();
    });
  });
});
