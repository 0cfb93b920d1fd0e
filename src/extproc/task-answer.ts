/**
 * A tasks/get, tasks/result or tasks/cancel of a pinned session, as the
 * public listener's session-state filter streams it (Envoy's MCP filter
 * names the method; no other request comes here). The answer passes as the
 * pod gave it, except one: a pod's "Task not found" for a session mcp-pin
 * moved to another pod, which is explained (lost-task.ts) instead of leaving
 * the client to wonder where the task it just saw running went.
 *
 * Never stands in the answer's way: the store is read only for a
 * "Task not found", and whatever fails here, the pod's answer goes on.
 */
import { ProtocolError } from '../errors.js';
import { sessionTag, type Logger } from '../log.js';
import { explainUnknownTask } from '../lost-task.js';
import { clientSessionIdOf, is2xx, firstHeader } from '../mcp-headers.js';
import type { Metrics } from '../metrics.js';
import type { SessionStore } from '../sessions/store.js';
import { headerPairs } from './headers.js';
import type { StreamHandler } from './stream-handler.js';
import type { ProcessingRequest, ProcessingResponse } from './protocol.js';
import {
  continueRequestHeaders,
  continueRequestTrailers,
  continueResponseBody,
  continueResponseHeaders,
  continueResponseTrailers,
  replaceResponseBody,
} from './responses.js';

export interface TaskAnswerDeps {
  store: SessionStore;
  log: Logger;
  metrics: Metrics;
}

type Step =
  | { phase: 'request-headers' }
  | { phase: 'response-headers'; clientSessionId: string | undefined }
  /** Reading the answer piece by piece (streamed): one "Task not found" per answer is explained. */
  | { phase: 'response-body'; clientSessionId: string; contentType: string | undefined; explained: boolean }
  | { phase: 'done' };

const NO_BODY = { response_body_mode: 'NONE' as const };

export class TaskAnswer implements StreamHandler {
  private step: Step = { phase: 'request-headers' };

  constructor(private readonly deps: TaskAnswerDeps) {}

  get complete(): boolean {
    return this.step.phase === 'done';
  }

  async handle(msg: ProcessingRequest): Promise<ProcessingResponse[]> {
    const step = this.step;
    switch (msg.request) {
      case 'request_headers': {
        if (step.phase !== 'request-headers') break;
        const pairs = headerPairs(msg.request_headers);
        // The client's own id: mcp-pin's downstream filter put it here when the pod knows the session by another.
        this.step = { phase: 'response-headers', clientSessionId: clientSessionIdOf(pairs) };
        return [continueRequestHeaders()];
      }
      case 'request_trailers':
        return [continueRequestTrailers()];
      case 'response_headers': {
        if (step.phase !== 'response-headers') break;
        const pairs = headerPairs(msg.response_headers);
        const contentType = firstHeader(pairs, 'content-type')?.toLowerCase();
        const readable = contentType?.includes('application/json') || contentType?.includes('text/event-stream');
        if (!step.clientSessionId || !is2xx(Number(firstHeader(pairs, ':status') ?? 0)) || !readable || msg.response_headers?.end_of_stream) {
          this.step = { phase: 'done' };
          return [{ ...continueResponseHeaders(), mode_override: NO_BODY }];
        }
        this.step = { phase: 'response-body', clientSessionId: step.clientSessionId, contentType, explained: false };
        // The body may change length: the answer goes on chunked.
        return [continueResponseHeaders({ remove: ['content-length'] })];
      }
      case 'response_body': {
        if (step.phase !== 'response-body') break;
        const body = msg.response_body?.body ?? Buffer.alloc(0);
        if (msg.response_body?.end_of_stream) this.step = { phase: 'done' };
        if (step.explained) return [continueResponseBody()];
        const changed = explainUnknownTask(body, step.contentType);
        if (!changed || !(await this.moved(step.clientSessionId))) return [continueResponseBody()];
        step.explained = true;
        this.deps.metrics.lostTasks.inc();
        this.deps.log.info(
          { session: sessionTag(step.clientSessionId) },
          'a task of a moved session was not found on its new pod: the client is told it was lost with its pod',
        );
        return [replaceResponseBody(changed)];
      }
      case 'response_trailers':
        return [continueResponseTrailers()];
      default:
        break;
    }
    throw new ProtocolError(`${msg.request ?? 'no phase'} not expected in a task request's ${step.phase} phase`);
  }

  /** Whether mcp-pin moved the session off the pod it was created on (a recovery): false when unsure. */
  private async moved(clientSessionId: string): Promise<boolean> {
    try {
      const record = await this.deps.store.load(clientSessionId);
      return record !== null && record.generation > 1;
    } catch (err) {
      this.deps.log.warn(
        { session: sessionTag(clientSessionId), err: (err as Error).message },
        "could not read the session to explain a task not found: the pod's answer goes on as it is",
      );
      return false;
    }
  }
}
