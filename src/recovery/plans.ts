/**
 * What recovery and the ext_proc layer say to each other about a retry
 * attempt: the attempt, the plan for it, and a relay's request and outcome.
 */
import type { PinErrorCode } from '../errors.js';
import type { HeaderPairs } from '../mcp-headers.js';
import type { Pin } from '../sessions/store.js';

export interface RetryAttempt {
  clientSessionId: string;
  /** The session id the failed attempt carried: the backend id of the pin it used. */
  failedSessionId: string;
  /** The pod ("ip:port") this attempt goes to. */
  pod: string;
  path: string;
  /** The request's headers (end-to-end ones are reused for a re-initialize). */
  headers: HeaderPairs;
}

/**
 * Why a retry goes to the session's pod by relay: it moved there; that pod
 * proved it still holds it; or the request is not at the session's MCP path
 * (the pod's router answered it, not its MCP transport: nothing to recover).
 */
export type RelayPlan = { kind: 'relay'; pin: Pin; why: 'moved' | 'not-lost' | 'off-path' };

/** How to send a retry attempt. */
export type RetryPlan =
  /**
   * Send it on this attempt's pod under pin.backendSessionId. onPath: the
   * request is at the session's MCP path, so a lost-session status from that
   * pod means the session is gone from it (not a wrong path).
   */
  | { kind: 'send'; pin: Pin; reinitialized: boolean; onPath: boolean }
  /** mcp-pin sends it to pin.pod itself (relay()): the session moved there, or that pod still holds it (not lost). */
  | RelayPlan
  /** The store does not know the session (deleted, expired): send it untouched. */
  | { kind: 'unknown' }
  /** Not sent anywhere; the code says what the client gets (error-responses.ts). */
  | { kind: 'failed'; code: PinErrorCode };

/** A retry attempt that a plan said to relay, with its body once Envoy sent it. */
export interface RelayRequest {
  attempt: RetryAttempt;
  plan: RelayPlan;
  /** The HTTP method of the request. */
  method: string;
  body: Buffer | null;
}

export type RelayOutcome =
  /** The pod's own answer, to hand to the client as it is (with the client's session id). */
  | { kind: 'answered'; status: number; headers: HeaderPairs; body: Buffer }
  /** A standalone GET stream cannot be relayed into one answer: end it; the client's reconnect goes to the session's pod. */
  | { kind: 'reconnect' }
  | { kind: 'failed'; code: PinErrorCode };

/** What a catch-up of a state change did: the session's pod already had it, it was sent, the pod refused it, or it could not be sent. */
export type CatchUpOutcome = 'current' | 'sent' | 'refused' | 'failed';
