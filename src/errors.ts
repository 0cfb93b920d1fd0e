/**
 * One error module: a base class with a stable `code`, subclasses per
 * concern. Callers branch on `code` (or instanceof), never on message text.
 */
/**
 * Every error code, with where it shows and what it means: the one list
 * (docs/errors.md is written from it, and a test checks it). What a client
 * gets for each lives in extproc/error-responses.ts.
 */
export const ERROR_CODES = {
  MCP_PIN_INVALID_CONFIG: {
    seen: 'process',
    meaning: 'the configuration (flags, environment, values file) is invalid: mcp-pin exits 2 at start with every problem listed',
  },
  MCP_PIN_BAD_CONFIG_VALUE: { seen: 'process', meaning: 'one setting cannot be read (a store URL, a pin allowlist); gathered into MCP_PIN_INVALID_CONFIG' },
  MCP_PIN_BAD_CONFIG_FILE: {
    seen: 'process',
    meaning: 'the --config values file cannot be read, is not a JSON object, or holds bad template values; gathered into MCP_PIN_INVALID_CONFIG',
  },
  MCP_PIN_BAD_TEMPLATE_VALUE: {
    seen: 'operator',
    meaning: 'one template value cannot be read (npm run render:envoy, mcp-pin --config): its message names the value',
  },
  MCP_PIN_BAD_TEMPLATE_VALUES: {
    seen: 'operator',
    meaning: 'template values with problems (unknown names, bad or missing values, values that contradict each other), every one listed',
  },
  MCP_PIN_TEMPLATE: {
    seen: 'operator',
    meaning:
      'the Envoy template and its values do not fit together (a placeholder without a value, a ' +
      'value never used, no mcp-pin endpoint, no internal client): a bug in a template edit',
  },
  MCP_PIN_LISTEN_FAILED: {
    seen: 'process',
    meaning: 'mcp-pin cannot listen on --listen (address in use, a live process on the socket, a file that is not a socket in the way): it exits 1',
  },
  MCP_PIN_STARTING: {
    seen: 'stream',
    meaning: 'a stream opened before the session store first answered: refused with gRPC UNAVAILABLE, which Envoy retries on another replica',
  },
  MCP_PIN_STORE_UNAVAILABLE: { seen: 'client', meaning: 'the session store is down or refused the call' },
  MCP_PIN_STORE_TIMEOUT: { seen: 'client', meaning: 'the session store did not answer within --store-timeout-ms' },
  MCP_PIN_STORE_CORRUPT: { seen: 'client', meaning: 'a stored record mcp-pin cannot use: dropped, the session is searched for on the pods' },
  MCP_PIN_STORE_FULL: { seen: 'client', meaning: 'the memory store holds --memory-store-max-sessions sessions: a new session is refused' },
  MCP_PIN_PROTOCOL: {
    seen: 'stream',
    meaning: 'Envoy sent something the ext_proc protocol does not allow at that point: that stream ends with gRPC INVALID_ARGUMENT',
  },
  MCP_PIN_AMBIGUOUS_SESSION_ID: { seen: 'client', meaning: 'a request with more than one Mcp-Session-Id header, or one holding several ids' },
  MCP_PIN_INVALID_SESSION_ID: {
    seen: 'client',
    meaning:
      'a session id no pod could have issued (longer than --max-session-id-length, or outside visible ASCII): answered as an unknown session, never looked up',
  },
  MCP_PIN_UNKNOWN_SESSION: {
    seen: 'client',
    meaning: 'a session id searched for on every pod moments ago at this path (--unknown-session-cache-ms) and held by none',
  },
  MCP_PIN_NO_UPSTREAM_ADDRESS: { seen: 'client', meaning: 'Envoy did not say which pod answered an initialize, so the new session cannot be pinned' },
  MCP_PIN_SESSION_ID_TAKEN: {
    seen: 'client',
    meaning: 'a pod answered initialize with a session id another session holds: refused, the other session keeps its pin',
  },
  MCP_PIN_BAD_CURSOR: { seen: 'operator', meaning: 'mcp-pin sessions list --cursor got a cursor the store never returned' },
  MCP_PIN_RECOVERY_NO_INIT_BODY: {
    seen: 'client',
    meaning: 'the session is lost and its initialize was not kept (too large, or adopted without one): it cannot come back',
  },
  MCP_PIN_RECOVERY_REINIT_REFUSED: { seen: 'client', meaning: 'the session is lost and a pod refused its stored initialize: it cannot come back' },
  MCP_PIN_RECOVERY_UNAVAILABLE: {
    seen: 'client',
    meaning:
      'the session could not be recovered just now (no pod took the re-initialize, the store failed mid-way or did not confirm dropping ' +
      'a session that cannot come back); the request did not run, and the next one tries again',
  },
  MCP_PIN_RECOVERY_TIMEOUT: {
    seen: 'client',
    meaning: 'a recovery step took longer than --recovery-timeout-ms; the session is kept and the request did not run',
  },
  MCP_PIN_RECOVERY_GONE: { seen: 'client', meaning: 'the session left the store while it was being recovered (DELETE, TTL)' },
  MCP_PIN_RECOVERY_CANCELLED: {
    seen: 'log',
    meaning: 'Envoy gave up on the request while its session was being recovered (the client left); the recovery goes on',
  },
  MCP_PIN_RELAY_FAILED: { seen: 'client', meaning: "the request could not reach the session's pod for a relay; it did not run" },
  MCP_PIN_RELAY_NOT_ALLOWED: { seen: 'client', meaning: "the session's stored pod is outside --pin-allow: not relayed; it did not run" },
  MCP_PIN_RELAY_BUSY: { seen: 'client', meaning: 'more relayed answers held at once than --relay-budget-bytes allows; the request did not run' },
  MCP_PIN_RELAY_MAY_HAVE_RUN: { seen: 'client', meaning: "a relayed request reached the session's pod but no whole answer came back: it may have run" },
  MCP_PIN_RELAY_TOO_LARGE: { seen: 'client', meaning: 'a relayed request ran but its answer was larger than mcp-pin relays: do not send it again' },
  MCP_PIN_UNEXPECTED: { seen: 'client', meaning: 'a failure mcp-pin has no code for (a bug): logged with its stack' },
} as const satisfies Record<string, { seen: 'client' | 'stream' | 'process' | 'operator' | 'log'; meaning: string }>;

export type PinErrorCode = keyof typeof ERROR_CODES;

export class PinError extends Error {
  readonly code: PinErrorCode;
  constructor(code: PinErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class InvalidConfigError extends PinError {
  constructor(readonly problems: string[]) {
    super('MCP_PIN_INVALID_CONFIG', `invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** One setting's value cannot be parsed (a store URL, a pin allowlist); config.ts gathers these into InvalidConfigError. */
export class ConfigValueError extends PinError {
  constructor(message: string) {
    super('MCP_PIN_BAD_CONFIG_VALUE', message);
  }
}

/** The session store could not answer (down, refused, or over its time bound), or held a record mcp-pin cannot use (corrupt). */
export class StoreError extends PinError {
  constructor(code: 'MCP_PIN_STORE_UNAVAILABLE' | 'MCP_PIN_STORE_TIMEOUT' | 'MCP_PIN_STORE_FULL' | 'MCP_PIN_STORE_CORRUPT', message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

/** The Envoy template and its values do not fit together (envoy/render.ts). */
export class TemplateError extends PinError {
  constructor(message: string) {
    super('MCP_PIN_TEMPLATE', message);
  }
}

/** Envoy sent something the ext_proc protocol does not allow here. */
export class ProtocolError extends PinError {
  constructor(message: string) {
    super('MCP_PIN_PROTOCOL', message);
  }
}

export type RecoveryErrorCode = Extract<PinErrorCode, `MCP_PIN_RECOVERY_${string}`>;

/** A recovery could not finish. Codes that end in _REFUSED or _NO_INIT_BODY are proof the session can never come back. */
export class RecoveryError extends PinError {
  constructor(code: RecoveryErrorCode, message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}
