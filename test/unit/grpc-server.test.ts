/**
 * mcp-pin's gRPC server (src/grpc/server.ts) as @grpc/grpc-js clients see it:
 * message framing over any chunking, status codes, limits, health. The
 * ext_proc service over it is covered by stream-fuzz (random input) and by
 * every integration test (real Envoy).
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { GrpcServer, GrpcStatus, MessageFramer } from '../../src/grpc/server.js';
import { Health } from '../../src/health.js';
import { healthClient } from '../helpers/grpc-clients.js';

/** One gRPC message on the wire: flag 0, 4-byte big-endian length, the bytes. */
function frame(m: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(m.length, 1);
  return Buffer.concat([prefix, m]);
}

describe('gRPC server', function () {
  this.timeout(20_000);

  it('splits any chunking of a byte stream back into the messages that were framed', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }), (msgs, cuts) => {
        const wire = Buffer.concat(msgs.map((m) => frame(Buffer.from(m))));
        const framer = new MessageFramer(1024);
        const got: Buffer[] = [];
        let off = 0;
        for (let i = 0; off < wire.length; i++) {
          const n = cuts[i % cuts.length]!;
          framer.push(wire.subarray(off, off + n), (m) => got.push(Buffer.from(m)));
          off += n;
        }
        expect(got.map((b) => [...b])).to.deep.equal(msgs.map((m) => [...m]));
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a message over the limit and a compressed one', () => {
    expect(() => new MessageFramer(10).push(frame(Buffer.alloc(11)), () => {})).to.throw(/over the 10 byte limit/);
    expect(() => new MessageFramer(10).push(Buffer.from([1, 0, 0, 0, 1, 7]), () => {})).to.throw(/compressed/);
  });

  describe('over the network', () => {
    let server: GrpcServer;
    let port: number;
    const health = new Health();
    before(async () => {
      server = new GrpcServer({ maxMessageBytes: 1000, keepaliveMs: 0, keepaliveTimeoutMs: 0 });
      health.addTo(server);
      server.add('/test.Echo/Bidi', (call) => ({
        message: (m) => call.write(m),
        halfClose: () => call.end(),
        closed: () => {},
      }));
      port = await server.listen('127.0.0.1', 0);
    });
    after(() => server.close());

    const bidi = (path: string, msgs: Buffer[]): Promise<{ replies: Buffer[]; code: number; details: string }> => {
      const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      return new Promise((resolve) => {
        const call = client.makeBidiStreamRequest(path, (b: Buffer) => b, (b: Buffer) => b);
        const replies: Buffer[] = [];
        call.on('data', (b: Buffer) => replies.push(b));
        call.on('status', (s: grpc.StatusObject) => {
          client.close();
          resolve({ replies, code: s.code, details: s.details });
        });
        call.on('error', () => {});
        for (const m of msgs) call.write(m);
        call.end();
      });
    };

    it('echoes messages in order and ends with OK', async () => {
      const msgs = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(900, 7), Buffer.from('z')];
      const r = await bidi('/test.Echo/Bidi', msgs);
      expect(r.code).to.equal(GrpcStatus.OK);
      expect(r.replies.map((b) => b.toString('hex'))).to.deep.equal(msgs.map((b) => b.toString('hex')));
    });

    it('answers UNIMPLEMENTED for an unknown method and RESOURCE_EXHAUSTED over the size limit', async () => {
      expect((await bidi('/test.Echo/Nope', [Buffer.from('x')])).code).to.equal(GrpcStatus.UNIMPLEMENTED);
      const big = await bidi('/test.Echo/Bidi', [Buffer.alloc(1001)]);
      expect(big.code).to.equal(GrpcStatus.RESOURCE_EXHAUSTED);
      expect(big.details).to.match(/1001 bytes/);
    });

    it('serves grpc.health.v1 Check with the current status, NOT_FOUND for unknown services', async () => {
      const c = healthClient(port);
      try {
        expect(await c.check()).to.equal('NOT_SERVING');
        health.set('SERVING');
        expect(await c.check('envoy.service.ext_proc.v3.ExternalProcessor')).to.equal('SERVING');
        const err = await c.check('nope').then(() => null, (e: grpc.ServiceError) => e);
        expect(err?.code).to.equal(GrpcStatus.NOT_FOUND);
      } finally {
        c.close();
      }
    });

    it('refuses plain HTTP/2 requests that are not gRPC', async () => {
      const { connect } = await import('node:http2');
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
  });
});
