/**
 * MCP session ids are visible ASCII (0x21-0x7E). Anything else, or anything
 * longer than the configured bound, is never looked up: it goes to the
 * service route and the pod answers it as it would without mcp-pin.
 */
export function isValidSessionId(id: string, maxLength: number): boolean {
  if (id.length === 0 || id.length > maxLength) return false;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}
