/**
 * A session lives at one MCP path (where it was initialized, or found when
 * adopted). A request in the session at another path (a typo, another
 * route of the server) is answered by the pod's router, not its MCP
 * transport: its 404 says nothing about the session, and it must change no
 * stored state. Paths compare without their query.
 */
export const pathOnly = (p: string): string => {
  const q = p.indexOf('?');
  return q < 0 ? p : p.slice(0, q);
};

/** True or false when the session's MCP path is known; undefined when it is not. */
export function onSessionPath(requestPath: string, sessionPath: string | null): boolean | undefined {
  return sessionPath === null ? undefined : pathOnly(requestPath) === pathOnly(sessionPath);
}
