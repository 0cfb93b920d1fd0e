/**
 * The ext_proc gRPC service: one Envoy stream per HTTP request, handled by
 * one Exchange. Messages of a stream are answered strictly in order. A bad
 * message ends that stream with a gRPC error; no stream can take the process
 * (or another stream) down.
 */
import * as grpc from '@grpc/grpc-js';
import { PinError, ProtocolError } from '../errors.js';
import { Exchange, type ExchangeDeps } from './exchange.js';
import { loadExternalProcessorService, type ProcessingRequest, type ProcessingResponse } from './protocol.js';

type Stream = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

export class ExtProcService {
  private readonly open = new Set<Stream>();
  private draining = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly deps: ExchangeDeps) {}

  get openStreams(): number {
    return this.open.size;
  }

  addTo(server: grpc.Server): void {
    server.addService(loadExternalProcessorService(), { Process: (call: Stream) => this.process(call) });
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
    for (const s of this.open) s.emit('error', { code: grpc.status.UNAVAILABLE, details: 'mcp-pin shutting down' });
  }

  private process(call: Stream): void {
    const { metrics, log } = this.deps;
    if (this.draining) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'mcp-pin is draining' });
      return;
    }
    this.open.add(call);
    metrics.streams.inc();
    metrics.streamsTotal.inc();
    // 'open' until we end the stream (cleanly or with an error); set at the
    // moment we do, so a late message can never write after the end.
    let state: 'open' | 'ended' | 'failed' = 'open';
    let done = false;
    const write = (r: ProcessingResponse): void => {
      if (state === 'open') call.write(r);
    };
    const endCleanly = (): void => {
      if (state !== 'open') return;
      state = 'ended';
      call.end();
    };
    const exchange = new Exchange(this.deps, write);
    let chain: Promise<void> = Promise.resolve();

    const fail = (err: unknown): void => {
      if (state !== 'open') return;
      state = 'failed';
      const code = err instanceof ProtocolError ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL;
      const label = err instanceof PinError ? err.code : 'UNEXPECTED';
      metrics.streamErrors.inc({ code: label });
      log.warn({ code: label, err: (err as Error)?.message }, 'ext_proc stream failed');
      call.emit('error', { code, details: `mcp-pin: ${(err as Error)?.message ?? String(err)}` });
    };
    const finish = (): void => {
      if (done) return;
      done = true;
      this.open.delete(call);
      metrics.streams.dec();
      if (this.open.size === 0) {
        const w = this.idleWaiters;
        this.idleWaiters = [];
        for (const f of w) f();
      }
    };

    call.on('data', (msg: ProcessingRequest) => {
      chain = chain.then(async () => {
        if (state !== 'open' || done) return;
        const end = metrics.timeMessage(msg.request ?? 'unknown');
        try {
          for (const r of await exchange.handle(msg)) write(r);
          // Nothing more will come: close cleanly rather than wait for Envoy.
          if (exchange.complete) endCleanly();
        } catch (err) {
          fail(err);
        } finally {
          end();
        }
      });
    });
    call.on('end', () => {
      chain = chain.then(() => endCleanly());
    });
    call.on('error', () => finish());
    call.on('cancelled', () => finish());
    call.on('close', () => finish());
    call.on('finish', () => finish());
  }
}
