/**
 * The ext_proc gRPC service on @grpc/grpc-js. Envoy opens one stream per
 * client request (the public listener's filter: an Exchange) and one per
 * retry attempt of a pinned request (the pinned cluster's upstream filter,
 * marked by its x-mcp-pin-role metadata: an AttemptExchange), and one per
 * attempt of a session search (the search cluster's: a SearchAttempt),
 * and, by the public listener's session-state filter, one per request that
 * sets session state (a StateRecorder) and one per task request (tasks/get,
 * tasks/result, tasks/cancel: a TaskAnswer). Messages of a
 * stream are answered strictly in order. A bad message ends that stream with
 * a gRPC error; no stream can take the process (or another stream) down.
 */
import * as grpc from '@grpc/grpc-js';
import { PinError, ProtocolError } from '../errors.js';
import { extProcServiceDefinition } from '../protos.js';
import type { Recoverer, StateCatchUp } from '../recovery/http-recoverer.js';
import { AttemptExchange } from './attempt.js';
import { Exchange, type ExchangeDeps } from './exchange.js';
import { SearchAttempt } from './search-attempt.js';
import { StateRecorder } from './state-recorder.js';
import { TaskAnswer } from './task-answer.js';
import type { ProcessingRequest, ProcessingResponse } from './protocol.js';
import { ROLE_METADATA, streamRole, type StreamHandler, type StreamRole } from './stream-handler.js';

type ProcessCall = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

export interface ExtProcDeps extends ExchangeDeps {
  /** Plans retry attempts; without it, attempts go as Envoy built them. */
  recoverer?: Recoverer & StateCatchUp;
  /** Refuse streams until startAccepting() (the app: until its store first answers). */
  startClosed?: boolean;
}

export class ExtProcService {
  private readonly open = new Set<ProcessCall>();
  /**
   * Streams are refused (UNAVAILABLE) until the app opens the gate: the
   * first time its store answered. Envoy sends streams to a replica it has
   * not yet seen healthy when no replica is healthy (panic routing); those
   * get a clear refusal, never a lookup against a store not yet there.
   */
  private accepting: boolean;

  constructor(private readonly deps: ExtProcDeps) {
    this.accepting = deps.startClosed !== true;
  }

  /** Opens the gate for good (a later store outage is handled per request). */
  startAccepting(): void {
    this.accepting = true;
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  get openStreams(): number {
    return this.open.size;
  }

  addTo(server: grpc.Server): void {
    server.addService(extProcServiceDefinition(), { Process: (call: ProcessCall) => this.process(call) });
  }

  private process(call: ProcessCall): void {
    const { metrics, log } = this.deps;
    if (!this.accepting) {
      metrics.streamErrors.inc({ code: 'MCP_PIN_STARTING' });
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'mcp-pin: starting: the session store has not answered yet' });
      return;
    }
    this.open.add(call);
    metrics.openStreams++;
    metrics.streamAccepted();
    /** We sent our status (or the peer went away): nothing more is written. */
    let ended = false;
    const write = (r: ProcessingResponse): void => {
      if (!ended) call.write(r);
    };
    const end = (status?: { code: grpc.status; details: string }): void => {
      if (ended) return;
      ended = true;
      // grpc-js: an 'error' event on a server stream ends it with that status.
      if (status) call.emit('error', status);
      else call.end();
    };
    // Only a retry attempt has waits and relays to stop once Envoy gives up
    // on its stream (a shared recovery goes on regardless); a client
    // request's stream gets no AbortController (creating and aborting one per
    // request was measurable in profiles).
    const role = streamRole(call.metadata.get(ROLE_METADATA)[0]);
    const gone = role === 'attempt' && this.deps.recoverer ? new AbortController() : undefined;
    const exchange = this.handlerFor(role, write, gone);
    // Messages are answered strictly in order, each after the one before.
    let chain: Promise<void> = Promise.resolve();

    const fail = (err: unknown): void => {
      if (ended) return;
      const code = err instanceof ProtocolError ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL;
      const label = err instanceof PinError ? err.code : 'MCP_PIN_UNEXPECTED';
      metrics.streamErrors.inc({ code: label });
      log.warn({ code: label, err: (err as Error)?.message }, 'ext_proc stream failed');
      end({ code, details: `mcp-pin: ${(err as Error)?.message ?? String(err)}` });
    };
    const handle = async (msg: ProcessingRequest): Promise<void> => {
      if (ended) return;
      const started = performance.now();
      try {
        for (const r of await exchange.handle(msg)) write(r);
        // Nothing more will come: close cleanly rather than wait for Envoy.
        if (exchange.complete) end();
      } catch (err) {
        fail(err);
      } finally {
        metrics.messageAnswered(msg.request, (performance.now() - started) / 1000);
      }
    };

    let closed = false;
    const onClosed = (): void => {
      ended = true;
      gone?.abort();
      if (closed) return;
      closed = true;
      this.open.delete(call);
      metrics.openStreams--;
    };
    call.on('data', (msg: ProcessingRequest) => {
      chain = chain.then(() => handle(msg));
    });
    call.on('end', () => {
      chain = chain.then(() => end());
    });
    // grpc-js emits 'cancelled' once for every call that is over: after its
    // status went out (ours, or its own for a message it could not read) and
    // when the peer reset it.
    call.on('cancelled', onClosed);
    // No 'error' listener of ours: grpc-js listens on every server stream
    // itself and turns an 'error' (ours above, or a write racing a cancelled
    // call) into that call's status, so none goes unhandled.
  }

  /** The handler for one stream, by its role. */
  private handlerFor(role: StreamRole, write: (r: ProcessingResponse) => void, gone: AbortController | undefined): StreamHandler {
    const { recoverer } = this.deps;
    switch (role) {
      case 'attempt':
        // Without a recoverer (tests of the client filter alone), attempts go as Envoy built them.
        return recoverer && gone ? new AttemptExchange({ ...this.deps, recoverer }, write, gone.signal) : new Exchange(this.deps);
      case 'search':
        return new SearchAttempt(this.deps);
      case 'state':
        return new StateRecorder(this.deps);
      case 'task':
        return new TaskAnswer(this.deps);
      case 'request':
        return new Exchange(this.deps);
    }
  }
}
