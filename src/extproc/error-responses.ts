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

const UNEXPECTED: ClientError = { status: 502, jsonRpcCode: JSONRPC_INTERNAL_ERROR, message: 'mcp-pin: internal error', details: 'mcp_pin_unexpected' };

export const CLIENT_ERRORS: Record<PinErrorCode, ClientError> = {
  MCP_PIN_STORE_UNAVAILABLE: STORE_DOWN,
  MCP_PIN_STORE_TIMEOUT: STORE_DOWN,
  MCP_PIN_AMBIGUOUS_SESSION_ID: {
    status: 400,
    jsonRpcCode: JSONRPC_INVALID_REQUEST,
    message: 'mcp-pin: one Mcp-Session-Id header with one session id expected',
    details: 'mcp_pin_ambiguous_session_id',
  },
  MCP_PIN_NO_UPSTREAM_ADDRESS: { status: 502, jsonRpcCode: JSONRPC_INTERNAL_ERROR, message: 'mcp-pin: could not pin the new session', details: 'mcp_pin_no_upstream_address' },
  MCP_PIN_RECOVERY_NO_INIT_BODY: SESSION_GONE,
  MCP_PIN_RECOVERY_REINIT_FAILED: SESSION_GONE,
  MCP_PIN_RECOVERY_GONE: SESSION_GONE,
  MCP_PIN_RECOVERY_TIMEOUT: { status: 504, jsonRpcCode: JSONRPC_INTERNAL_ERROR, message: 'mcp-pin: session recovery timed out', details: 'mcp_pin_recovery_timeout' },
  MCP_PIN_RELAY_FAILED: { status: 502, jsonRpcCode: JSONRPC_INTERNAL_ERROR, message: "mcp-pin: could not reach the session's pod", details: 'mcp_pin_relay_failed' },
  // The pod ran it: say so, so that the client does not run it twice.
  MCP_PIN_RELAY_TOO_LARGE: {
    status: 502,
    jsonRpcCode: JSONRPC_INTERNAL_ERROR,
    message: "mcp-pin: the request ran on the session's pod, but its answer was too large to relay; do not send it again",
    details: 'mcp_pin_relay_too_large',
  },
  MCP_PIN_UNEXPECTED: UNEXPECTED,
  // Never a client's answer (they end the process or the gRPC stream), listed so the table is whole.
  MCP_PIN_INVALID_CONFIG: UNEXPECTED,
  MCP_PIN_BAD_CONFIG_VALUE: UNEXPECTED,
  MCP_PIN_PROTOCOL: UNEXPECTED,
};

export function errorResponse(code: PinErrorCode): ProcessingResponse {
  const e = CLIENT_ERRORS[code];
  return jsonRpcError(e.status, e.jsonRpcCode, e.message, e.details, e.headers);
}
