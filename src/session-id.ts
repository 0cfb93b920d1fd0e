/**
 * MCP session ids are visible ASCII (0x21-0x7E). Anything else, or anything
 * longer than the configured bound, is never looked up and never sent to a
 * pod: mcp-pin answers it 404 (-32001) itself, as a pod would an id it does
 * not hold (MCP_PIN_INVALID_SESSION_ID).
 */
export function isValidSessionId(id: string, maxLength: number): boolean {
  if (id.length === 0 || id.length > maxLength) return false;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}
