/**
 * The ext_proc gRPC service: one Envoy stream per HTTP request, handled by
 * one Exchange. Messages of a stream are answered strictly in order. A bad
 * message ends that stream with a gRPC error; no stream can take the process
 * (or another stream) down.
 */
import { GrpcStatus, type CallHandlers, type GrpcServer, type ServerCall } from '../grpc/server.js';
import { PinError, ProtocolError } from '../errors.js';
import { decodeProcessingRequest, encodeProcessingResponse } from './codec.js';
import { Exchange, type ExchangeDeps } from './exchange.js';
import type { ProcessingRequest, ProcessingResponse } from './protocol.js';

export const PROCESS_PATH = '/envoy.service.ext_proc.v3.ExternalProcessor/Process';

export class ExtProcService {
  private readonly open = new Set<ServerCall>();
  private draining = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly deps: ExchangeDeps) {}

  get openStreams(): number {
    return this.open.size;
  }

  addTo(server: GrpcServer): void {
    server.add(PROCESS_PATH, (call) => this.process(call));
  }

  /** Refuse new streams from now on. */
  startDrain(): void {
    this.draining = true;
  }

  /** Resolves when no stream is open, or after graceMs; returns how many were left. */
  async waitIdle(graceMs: number): Promise<number> {
    if (this.open.size === 0) return 0;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, graceMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
    return this.open.size;
  }

  /** Ends every stream still open (after the grace period). */
  cancelAll(): void {
    for (const c of this.open) c.end(GrpcStatus.UNAVAILABLE, 'mcp-pin shutting down');
  }

  private process(call: ServerCall): CallHandlers {
    const { metrics, log } = this.deps;
    if (this.draining) {
      call.end(GrpcStatus.UNAVAILABLE, 'mcp-pin is draining');
      return { message() {}, halfClose() {}, closed() {} };
    }
    this.open.add(call);
    metrics.streams.inc();
    metrics.streamsTotal.inc();
    const write = (r: ProcessingResponse): void => call.write(encodeProcessingResponse(r));
    const exchange = new Exchange(this.deps, write);
    // Messages are answered strictly in order, each after the one before.
    let chain: Promise<void> = Promise.resolve();

    const fail = (err: unknown): void => {
      if (call.ended) return;
      const code = err instanceof ProtocolError ? GrpcStatus.INVALID_ARGUMENT : GrpcStatus.INTERNAL;
      const label = err instanceof PinError ? err.code : 'UNEXPECTED';
      metrics.streamErrors.inc({ code: label });
      log.warn({ code: label, err: (err as Error)?.message }, 'ext_proc stream failed');
      call.end(code, `mcp-pin: ${(err as Error)?.message ?? String(err)}`);
    };
    const handle = async (msg: ProcessingRequest): Promise<void> => {
      if (call.ended) return;
      const end = metrics.timeMessage(msg.request ?? 'unknown');
      try {
        for (const r of await exchange.handle(msg)) write(r);
        // Nothing more will come: close cleanly rather than wait for Envoy.
        if (exchange.complete) call.end();
      } catch (err) {
        fail(err);
      } finally {
        end();
      }
    };

    return {
      message: (bytes) => {
        let msg: ProcessingRequest;
        try {
          msg = decodeProcessingRequest(bytes);
        } catch (err) {
          fail(new ProtocolError(`undecodable ProcessingRequest: ${(err as Error).message}`));
          return;
        }
        chain = chain.then(() => handle(msg));
      },
      halfClose: () => {
        chain = chain.then(() => call.end());
      },
      closed: () => {
        this.open.delete(call);
        metrics.streams.dec();
        if (this.open.size === 0) {
          const w = this.idleWaiters;
          this.idleWaiters = [];
          for (const f of w) f();
        }
      },
    };
  }
}
