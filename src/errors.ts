/**
 * One error module: a base class with a stable `code`, subclasses per
 * concern. Callers branch on `code` (or instanceof), never on message text.
 */
export type PinErrorCode =
  | 'MCP_PIN_INVALID_CONFIG'
  | 'MCP_PIN_BAD_CONFIG_VALUE'
  | 'MCP_PIN_LISTEN_FAILED'
  | 'MCP_PIN_STORE_UNAVAILABLE'
  | 'MCP_PIN_STORE_TIMEOUT'
  | 'MCP_PIN_STORE_CORRUPT'
  | 'MCP_PIN_PROTOCOL'
  | 'MCP_PIN_AMBIGUOUS_SESSION_ID'
  | 'MCP_PIN_INVALID_SESSION_ID'
  | 'MCP_PIN_UNKNOWN_SESSION'
  | 'MCP_PIN_NO_UPSTREAM_ADDRESS'
  | 'MCP_PIN_SESSION_ID_TAKEN'
  | 'MCP_PIN_STORE_FULL'
  | 'MCP_PIN_BAD_CURSOR'
  | 'MCP_PIN_RECOVERY_NO_INIT_BODY'
  | 'MCP_PIN_RECOVERY_REINIT_REFUSED'
  | 'MCP_PIN_RECOVERY_UNAVAILABLE'
  | 'MCP_PIN_RECOVERY_TIMEOUT'
  | 'MCP_PIN_RECOVERY_GONE'
  | 'MCP_PIN_RECOVERY_CANCELLED'
  | 'MCP_PIN_RELAY_FAILED'
  | 'MCP_PIN_RELAY_NOT_ALLOWED'
  | 'MCP_PIN_RELAY_BUSY'
  | 'MCP_PIN_RELAY_MAY_HAVE_RUN'
  | 'MCP_PIN_RELAY_TOO_LARGE'
  | 'MCP_PIN_UNEXPECTED';

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
