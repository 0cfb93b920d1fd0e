/**
 * What a pod's answer says about a session, and which protocol version
 * mcp-pin's own requests in a session speak. A 404 to a request in a session
 * says the session is unknown (the spec's answer); a 400 says it only in the
 * words of the SDKs that use 400 for it (Python `mcp` before 1.26, the TS
 * SDK's example server): a 400 for anything else (an unsupported
 * MCP-Protocol-Version, a malformed request) proves nothing about the session.
 */

/** The SDKs' words for "no such session" in a 400 (seen from the real SDKs in the tests). */
const UNKNOWN_SESSION_WORDS = [/session not found/i, /no valid session id/i, /invalid or expired session/i];

/** Whether a pod's answer (a lost-session status) says the session is unknown there. */
export function saysSessionUnknown(status: number, body: Buffer): boolean {
  if (status !== 400) return true;
  const text = body.subarray(0, 4096).toString('utf8');
  return UNKNOWN_SESSION_WORDS.some((w) => w.test(text));
}

const VERSION = /^\d{4}-\d{2}-\d{2}$/;

/** The protocol version a stored initialize asked for (params.protocolVersion), if it names one. */
export function requestedVersion(initBody: Buffer | null): string | undefined {
  if (!initBody) return undefined;
  try {
    const v = (JSON.parse(initBody.toString('utf8')) as { params?: { protocolVersion?: unknown } })?.params?.protocolVersion;
    return typeof v === 'string' && VERSION.test(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The protocol version an initialize answer settled on (result.protocolVersion; JSON or an SSE `data:` line). */
export function negotiatedVersion(answer: Buffer): string | undefined {
  const text = answer.subarray(0, 64 * 1024).toString('utf8');
  const candidates = [
    text,
    ...text
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5)),
  ];
  for (const c of candidates) {
    try {
      const v = (JSON.parse(c) as { result?: { protocolVersion?: unknown } })?.result?.protocolVersion;
      if (typeof v === 'string' && VERSION.test(v)) return v;
    } catch {
      // not this one
    }
  }
  return undefined;
}
