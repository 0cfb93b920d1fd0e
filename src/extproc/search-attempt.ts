/**
 * One attempt of a session search, as the mcp_search cluster's upstream
 * ext_proc filter streams it (every attempt, request headers only). A search
 * is a request for a session mcp-pin has no pin for: Envoy tries pod after
 * pod (previous_hosts) until one answers other than "session lost". Envoy
 * repeats pods once it has tried them all; mcp-pin stops that: the pods
 * asked so far ride along in x-mcp-pin-searched (the next attempt starts
 * from the request this one changed), and an attempt bound for a pod already
 * asked is answered 404 here and reaches no pod. So an id no pod holds costs
 * one request per pod, whatever the pod count, with no re-render.
 */
import { ProtocolError } from '../errors.js';
import { SESSION_HEADER, firstHeader } from '../mcp-headers.js';
import type { Metrics } from '../metrics.js';
import { errorResponse } from './error-responses.js';
import { headerPairs } from './headers.js';
import type { StreamHandler } from './stream-handler.js';
import type { ProcessingRequest, ProcessingResponse } from './protocol.js';
import { continueRequestHeaders } from './responses.js';
import { parsePodAddress } from '../pod-address.js';
import { upstreamReport } from './upstream.js';

/** The pods one search has asked, comma-separated ip:port. */
export const SEARCHED_HEADER = 'x-mcp-pin-searched';

export class SearchAttempt implements StreamHandler {
  private done = false;

  constructor(private readonly deps: { metrics: Metrics }) {}

  get complete(): boolean {
    return this.done;
  }

  handle(msg: ProcessingRequest): ProcessingResponse[] {
    if (this.done || msg.request !== 'request_headers') throw new ProtocolError(`${msg.request ?? 'no phase'} not expected in a session search attempt`);
    this.done = true;
    const pairs = headerPairs(msg.request_headers);
    const pod = parsePodAddress(upstreamReport(msg).address);
    // Without a pod or a session id there is nothing to keep track of: the attempt goes as Envoy built it.
    if (!pod || firstHeader(pairs, SESSION_HEADER) === undefined) return [continueRequestHeaders()];
    const asked = (firstHeader(pairs, SEARCHED_HEADER) ?? '').split(',').filter((p) => p.length > 0);
    if (asked.includes(pod)) {
      // Every pod Envoy could find was asked: the session is nowhere.
      this.deps.metrics.outcome('search_ended');
      return [errorResponse('MCP_PIN_UNKNOWN_SESSION')];
    }
    return [continueRequestHeaders({ set: [[SEARCHED_HEADER, [...asked, pod].join(',')]] })];
  }
}
