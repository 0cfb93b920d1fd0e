/** Just enough JSON-RPC reading to spot an MCP initialize request. */

/** True when the body is a JSON-RPC request (or batch holding one) with method "initialize". */
export function isInitializeRequest(body: Buffer): boolean {
  // Cheap guard before parsing: an initialize body names its method.
  if (body.length === 0 || body.indexOf('initialize') < 0) return false;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return false;
  }
  const isInit = (m: unknown): boolean => typeof m === 'object' && m !== null && (m as { method?: unknown }).method === 'initialize';
  return Array.isArray(parsed) ? parsed.some(isInit) : isInit(parsed);
}

export function isJsonContentType(ct: string | undefined): boolean {
  if (!ct) return false;
  const base = (ct.split(';', 1)[0] ?? '').trim().toLowerCase();
  return base === 'application/json' || base.endsWith('+json');
}
