/**
 * grpc.health.v1 on the ext_proc port. One status for the whole server
 * (service "" and the ext_proc service name): SERVING only while the store
 * answers and the process is not draining. Messages per
 * protos/grpc/health/v1/health.proto: HealthCheckRequest { string service = 1 },
 * HealthCheckResponse { ServingStatus status = 1 }.
 */
import { GrpcStatus, type CallHandlers, type GrpcServer, type ServerCall } from './grpc/server.js';
import { Reader, Writer, WIRE_LEN, tagOf } from './grpc/wire.js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

const KNOWN_SERVICES = new Set(['', 'envoy.service.ext_proc.v3.ExternalProcessor']);
const STATUS_NUMBER = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;

function decodeService(buf: Buffer): string {
  const r = new Reader(buf);
  let service = '';
  while (r.pos < buf.length) {
    const t = r.tag();
    if (t === tagOf(1, WIRE_LEN)) service = r.string(buf.length);
    else r.skip(t & 7, buf.length);
  }
  return service;
}

function encodeStatus(status: keyof typeof STATUS_NUMBER): Buffer {
  const n = STATUS_NUMBER[status];
  return n === 0 ? Buffer.alloc(0) : new Writer().uint(1, n).finish();
}

/** Reads the one request message of a Check or Watch call, then hands it on. */
function oneRequest(call: ServerCall, onRequest: (service: string) => void): CallHandlers {
  let seen = false;
  return {
    message(m) {
      if (seen) return call.end(GrpcStatus.INVALID_ARGUMENT, 'one request message expected');
      seen = true;
      let service: string;
      try {
        service = decodeService(m);
      } catch (err) {
        return call.end(GrpcStatus.INVALID_ARGUMENT, `undecodable HealthCheckRequest: ${(err as Error).message}`);
      }
      onRequest(service);
    },
    halfClose() {
      if (!seen) call.end(GrpcStatus.INVALID_ARGUMENT, 'no request message');
    },
    closed() {},
  };
}

export class Health {
  private status: ServingStatus = 'NOT_SERVING';
  private readonly watchers = new Set<ServerCall>();

  get current(): ServingStatus {
    return this.status;
  }

  set(status: ServingStatus): void {
    if (status === this.status) return;
    this.status = status;
    for (const w of this.watchers) w.write(encodeStatus(status));
  }

  /** Ends Watch streams (at shutdown) so the server can close. */
  endWatches(): void {
    for (const w of this.watchers) w.end();
    this.watchers.clear();
  }

  addTo(server: GrpcServer): void {
    server.add('/grpc.health.v1.Health/Check', (call) =>
      oneRequest(call, (service) => {
        if (!KNOWN_SERVICES.has(service)) return call.end(GrpcStatus.NOT_FOUND, `unknown service ${service}`);
        call.write(encodeStatus(this.status));
        call.end();
      }),
    );
    server.add('/grpc.health.v1.Health/Watch', (call) => {
      const h = oneRequest(call, (service) => {
        call.write(encodeStatus(KNOWN_SERVICES.has(service) ? this.status : 'SERVICE_UNKNOWN'));
        this.watchers.add(call);
      });
      return { ...h, closed: () => void this.watchers.delete(call) };
    });
  }
}
