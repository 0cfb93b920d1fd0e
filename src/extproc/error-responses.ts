/**
 * The one table from an error code to what the client gets when mcp-pin
 * answers instead of a pod: an HTTP status with a JSON-RPC error body, as MCP
 * clients expect. Every path that fails a request goes through here.
 */
import type { PinErrorCode } from '../errors.js';
import type { ProcessingResponse } from './protocol.js';
import { jsonRpcError } from './responses.js';

/** JSON-RPC error codes mcp-pin answers with. */
export const JSONRPC_SESSION_NOT_FOUND = -32001;
export const JSONRPC_INTERNAL_ERROR = -32603;
export const JSONRPC_INVALID_REQUEST = -32600;

interface ClientError {
  status: number;
  jsonRpcCode: number;
  message: string;
  /** Envoy's response code details (access log %RESPONSE_CODE_DETAILS%). */
  details: string;
  headers?: [string, string][];
}

const STORE_DOWN: ClientError = {
  status: 503,
  jsonRpcCode: JSONRPC_INTERNAL_ERROR,
  message: 'mcp-pin: session store unavailable, retry shortly',
  details: 'mcp_pin_store_unavailable',
  headers: [['retry-after', '1']],
};
// The session cannot come back: the spec's answer, so the client starts a new one.
const SESSION_GONE: ClientError = { status: 404, jsonRpcCode: JSONRPC_SESSION_NOT_FOUND, message: 'Session not found', details: 'mcp_pin_recovery_failed' };
// The session is kept and the request never reached a pod: the client may send it again.
const RECOVERY_LATER: ClientError = {
  status: 503,
  jsonRpcCode: JSONRPC_INTERNAL_ERROR,
  message: 'mcp-pin: the session could not be recovered just now; the request did not run and the session is kept, retry shortly',
  details: 'mcp_pin_recovery_unavailable',
  headers: [['retry-after', '1']],
};
// Sent to the session's pod, and then a limit or a broken connection ended it: it may have run there.
const MAY_HAVE_RUN: ClientError = {
  status: 502,
  jsonRpcCode: JSONRPC_INTERNAL_ERROR,
  message: "mcp-pin: the request was sent to the session's pod but no whole answer came back; it may have run there, so do not assume it did not",
  details: 'mcp_pin_relay_may_have_run',
};

const UNEXPECTED: ClientError = { status: 502, jsonRpcCode: JSONRPC_INTERNAL_ERROR, message: 'mcp-pin: internal error', details: 'mcp_pin_unexpected' };

/**
 * Every code with what the client gets. `mayHaveRun` says whether the request
 * can have reached a pod's MCP server before the failure: the message says so,
 * and the interleaving test checks it against what the pods really ran.
 */
export const CLIENT_ERRORS: Record<PinErrorCode, ClientError & { mayHaveRun: boolean }> = {
  MCP_PIN_STORE_UNAVAILABLE: { ...STORE_DOWN, mayHaveRun: false },
  MCP_PIN_STORE_TIMEOUT: { ...STORE_DOWN, mayHaveRun: false },
  // Met by a retry attempt (the request's own lookup finds the session on the pods instead): the record is dropped, the next request searches.
  MCP_PIN_STORE_CORRUPT: {
    status: 502,
    jsonRpcCode: JSONRPC_INTERNAL_ERROR,
    message: "mcp-pin: this session's stored record was unreadable and has been dropped; the request did not run, send it again",
    details: 'mcp_pin_store_corrupt',
    mayHaveRun: false,
  },
  MCP_PIN_STORE_FULL: {
    status: 503,
    jsonRpcCode: JSONRPC_INTERNAL_ERROR,
    message: 'mcp-pin: the session store is full (--memory-store-max-sessions); the session was not created',
    details: 'mcp_pin_store_full',
    headers: [['retry-after', '5']],
    mayHaveRun: false,
  },
  MCP_PIN_AMBIGUOUS_SESSION_ID: {
    status: 400,
    jsonRpcCode: JSONRPC_INVALID_REQUEST,
    message: 'mcp-pin: one Mcp-Session-Id header with one session id expected',
    details: 'mcp_pin_ambiguous_session_id',
    mayHaveRun: false,
  },
  // No pod could hold it (over --max-session-id-length, or characters outside visible ASCII): the spec's answer to an unknown session.
  MCP_PIN_INVALID_SESSION_ID: { ...SESSION_GONE, details: 'mcp_pin_invalid_session_id', mayHaveRun: false },
  // Searched for moments ago and no pod held it (--unknown-session-cache-ms).
  MCP_PIN_UNKNOWN_SESSION: { ...SESSION_GONE, details: 'mcp_pin_unknown_session', mayHaveRun: false },
  MCP_PIN_NO_UPSTREAM_ADDRESS: {
    status: 502,
    jsonRpcCode: JSONRPC_INTERNAL_ERROR,
    message: 'mcp-pin: could not pin the new session',
    details: 'mcp_pin_no_upstream_address',
    mayHaveRun: true,
  },
  // A pod answered initialize with a session id another session already holds: never overwritten (that would hand one client's session to another).
  MCP_PIN_SESSION_ID_TAKEN: {
    status: 502,
    jsonRpcCode: JSONRPC_INTERNAL_ERROR,
    message: 'mcp-pin: the MCP server answered initialize with a session id that another session already holds; no session was created, initialize again',
    details: 'mcp_pin_session_id_taken',
    mayHaveRun: true,
  },
  MCP_PIN_RECOVERY_NO_INIT_BODY: { ...SESSION_GONE, mayHaveRun: false },
  MCP_PIN_RECOVERY_REINIT_REFUSED: { ...SESSION_GONE, mayHaveRun: false },
  MCP_PIN_RECOVERY_GONE: { ...SESSION_GONE, mayHaveRun: false },
  MCP_PIN_RECOVERY_UNAVAILABLE: { ...RECOVERY_LATER, mayHaveRun: false },
  MCP_PIN_RECOVERY_TIMEOUT: {
    ...RECOVERY_LATER,
    status: 504,
    message: 'mcp-pin: session recovery timed out; the request did not run and the session is kept, retry shortly',
    details: 'mcp_pin_recovery_timeout',
    mayHaveRun: false,
  },
  // Nobody is left to read it (Envoy gave up on the request); listed so the table is whole.
  MCP_PIN_RECOVERY_CANCELLED: { ...RECOVERY_LATER, details: 'mcp_pin_recovery_cancelled', mayHaveRun: false },
  MCP_PIN_RELAY_FAILED: {
    status: 502,
    jsonRpcCode: JSONRPC_INTERNAL_ERROR,
    message: "mcp-pin: could not reach the session's pod; the request did not run",
    details: 'mcp_pin_relay_failed',
    mayHaveRun: false,
  },
  MCP_PIN_RELAY_NOT_ALLOWED: {
    status: 502,
    jsonRpcCode: JSONRPC_INTERNAL_ERROR,
    message: "mcp-pin: the session's stored pod is outside --pin-allow; the request did not run",
    details: 'mcp_pin_relay_not_allowed',
    mayHaveRun: false,
  },
  MCP_PIN_RELAY_BUSY: {
    ...RECOVERY_LATER,
    message: 'mcp-pin: too many relayed answers held at once (--relay-budget-bytes); the request did not run, retry shortly',
    details: 'mcp_pin_relay_busy',
    mayHaveRun: false,
  },
  MCP_PIN_RELAY_MAY_HAVE_RUN: { ...MAY_HAVE_RUN, mayHaveRun: true },
  // The pod ran it: say so, so that the client does not run it twice.
  MCP_PIN_RELAY_TOO_LARGE: {
    status: 502,
    jsonRpcCode: JSONRPC_INTERNAL_ERROR,
    message: "mcp-pin: the request ran on the session's pod, but its answer was too large to relay; do not send it again",
    details: 'mcp_pin_relay_too_large',
    mayHaveRun: true,
  },
  MCP_PIN_UNEXPECTED: { ...UNEXPECTED, mayHaveRun: true },
  // Never a client's answer (they end the process or the gRPC stream), listed so the table is whole.
  MCP_PIN_INVALID_CONFIG: { ...UNEXPECTED, mayHaveRun: true },
  MCP_PIN_BAD_CONFIG_VALUE: { ...UNEXPECTED, mayHaveRun: true },
  MCP_PIN_LISTEN_FAILED: { ...UNEXPECTED, mayHaveRun: true },
  MCP_PIN_PROTOCOL: { ...UNEXPECTED, mayHaveRun: true },
  // An operator's command (mcp-pin sessions list --cursor), never a request's.
  MCP_PIN_BAD_CURSOR: { ...UNEXPECTED, mayHaveRun: true },
  MCP_PIN_BAD_CONFIG_FILE: { ...UNEXPECTED, mayHaveRun: true },
  MCP_PIN_BAD_TEMPLATE_VALUE: { ...UNEXPECTED, mayHaveRun: true },
  MCP_PIN_BAD_TEMPLATE_VALUES: { ...UNEXPECTED, mayHaveRun: true },
  MCP_PIN_TEMPLATE: { ...UNEXPECTED, mayHaveRun: true },
  MCP_PIN_STARTING: { ...UNEXPECTED, mayHaveRun: true },
};

export function errorResponse(code: PinErrorCode): ProcessingResponse {
  const e = CLIENT_ERRORS[code];
  return jsonRpcError(e.status, e.jsonRpcCode, e.message, e.details, e.headers);
}
