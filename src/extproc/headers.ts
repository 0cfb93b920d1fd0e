/** Reading Envoy's header lists. Envoy sends values in raw_value (bytes). */
import type { HeaderPairs } from '../mcp-headers.js';
import type { WireHeader, WireHttpHeaders, WireValue } from './protocol.js';

export function headerPairs(h: WireHttpHeaders | undefined): HeaderPairs {
  const list: WireHeader[] = h?.headers?.headers ?? [];
  const out: HeaderPairs = [];
  for (const e of list) {
    if (typeof e?.key !== 'string') continue;
    // A decoded message reads an absent raw_value as an empty Buffer (its default).
    const v = e.raw_value !== undefined && e.raw_value.length > 0 ? e.raw_value.toString('latin1') : (e.value ?? '');
    out.push([e.key.toLowerCase(), v]);
  }
  return out;
}

/**
 * Which member of google.protobuf.Value is set. A decoded message reads every
 * member (unset ones as their defaults), so `kind` decides where it is given.
 */
function valueKind(v: WireValue): 'stringValue' | 'numberValue' | undefined {
  if (v.kind !== undefined) return v.kind === 'stringValue' || v.kind === 'numberValue' ? v.kind : undefined;
  if (typeof v.stringValue === 'string') return 'stringValue';
  if (typeof v.numberValue === 'number') return 'numberValue';
  return undefined;
}

export function attributeString(v: WireValue | undefined | null): string | undefined {
  if (!v) return undefined;
  const kind = valueKind(v);
  if (kind === 'stringValue') return v.stringValue;
  if (kind === 'numberValue') return String(v.numberValue);
  return undefined;
}

export function attributeNumber(v: WireValue | undefined | null): number | undefined {
  if (!v) return undefined;
  const kind = valueKind(v);
  if (kind === 'numberValue') return v.numberValue;
  if (kind === 'stringValue' && v.stringValue !== '') {
    const n = Number(v.stringValue);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}
