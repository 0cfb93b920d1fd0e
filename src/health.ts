/**
 * grpc.health.v1 on the ext_proc port. One status for the whole server
 * (service "" and the ext_proc service name): SERVING only while the store
 * answers and the process is not draining.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS } from './extproc/protocol.js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

const KNOWN_SERVICES = new Set(['', 'envoy.service.ext_proc.v3.ExternalProcessor']);

export class Health {
  private status: ServingStatus = 'NOT_SERVING';
  private readonly watchers = new Set<grpc.ServerWritableStream<{ service?: string }, { status: string }>>();

  get current(): ServingStatus {
    return this.status;
  }

  set(status: ServingStatus): void {
    if (status === this.status) return;
    this.status = status;
    for (const w of this.watchers) w.write({ status });
  }

  /** Ends Watch streams (at shutdown) so the server can close. */
  endWatches(): void {
    for (const w of this.watchers) w.end();
    this.watchers.clear();
  }

  addTo(server: grpc.Server): void {
    const def = protoLoader.loadSync('grpc/health/v1/health.proto', LOADER_OPTIONS);
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    server.addService(pkg.grpc.health.v1.Health.service, {
      Check: (call: grpc.ServerUnaryCall<{ service?: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const svc = call.request.service ?? '';
        if (!KNOWN_SERVICES.has(svc)) return cb({ code: grpc.status.NOT_FOUND, details: `unknown service ${svc}` });
        cb(null, { status: this.status });
      },
      Watch: (call: grpc.ServerWritableStream<{ service?: string }, { status: string }>) => {
        const svc = call.request.service ?? '';
        call.write({ status: KNOWN_SERVICES.has(svc) ? this.status : 'SERVICE_UNKNOWN' });
        this.watchers.add(call);
        call.on('cancelled', () => this.watchers.delete(call));
        call.on('close', () => this.watchers.delete(call));
      },
    });
  }
}
