/** Structured JSON logs (pino). Bodies are never logged; session ids only as a short hash. */
import { createHash } from 'node:crypto';
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { svc: 'mcp-pin' },
    redact: { paths: ['authorization', '*.authorization', 'headers.authorization', 'body', '*.body'], censor: '[redacted]' },
  });
}

/** Stable, short, non-reversible handle for a session id in logs. */
export function sessionTag(sessionId: string): string {
  return createHash('sha256').update(sessionId).digest('base64url').slice(0, 10);
}
