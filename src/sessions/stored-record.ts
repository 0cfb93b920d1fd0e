/**
 * What a stored record must look like to be used. The store is shared (Redis
 * can be written by others, and restored from old or foreign data): a record
 * mcp-pin did not write as it writes them can route nothing safely, so it is
 * refused here with a reason, never half used (a missing backend id would
 * crash a request; one with CR LF would break Envoy's header mutation).
 */
import { parsePodAddress } from '../pod-address.js';
import { isValidSessionId } from '../session-id.js';
import { MAX_INIT_PATH_LENGTH, type Pin } from './store.js';

/** The longest backend session id a record may hold (--max-session-id-length allows up to this). */
export const MAX_STORED_SESSION_ID_LENGTH = 1024;

export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

/** A pin from its stored fields (strings as the store returns them; null when absent). */
export function checkPin(pod: string | null, bsid: string | null, gen: string | null): Checked<Pin> {
  if (pod === null || bsid === null || gen === null)
    return { ok: false, reason: `missing field${pod === null ? ' pod' : ''}${bsid === null ? ' bsid' : ''}${gen === null ? ' gen' : ''}` };
  if (parsePodAddress(pod) !== pod) return { ok: false, reason: 'pod is not ip:port' };
  if (!isValidSessionId(bsid, MAX_STORED_SESSION_ID_LENGTH)) return { ok: false, reason: 'backend session id is empty, too long or not visible ASCII' };
  if (!/^[1-9][0-9]{0,14}$/.test(gen)) return { ok: false, reason: 'generation is not a positive integer' };
  return { ok: true, value: { pod, backendSessionId: bsid, generation: Number(gen) } };
}

/** The initialize path of a record: empty means none kept; anything else must be a request path. */
export function checkInitPath(path: string): Checked<string | null> {
  if (path.length === 0) return { ok: true, value: null };
  if (path.length > MAX_INIT_PATH_LENGTH || !path.startsWith('/') || /[^\x21-\x7e]/.test(path))
    return { ok: false, reason: 'initialize path is not a request path' };
  return { ok: true, value: path };
}
