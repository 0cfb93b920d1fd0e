/** Reading Envoy's header lists. Envoy sends values in raw_value (bytes). */
import type { HeaderPairs } from '../mcp-headers.js';
import type { WireHeader, WireHttpHeaders, WireValue } from './protocol.js';

export { firstHeader, type HeaderPairs } from '../mcp-headers.js';

export function headerPairs(h: WireHttpHeaders | undefined): HeaderPairs {
  const list: WireHeader[] = h?.headers?.headers ?? [];
  const out: HeaderPairs = [];
  for (const e of list) {
    if (typeof e?.key !== 'string') continue;
    const v = e.raw_value !== undefined ? e.raw_value.toString('latin1') : (e.value ?? '');
    out.push([e.key.toLowerCase(), v]);
  }
  return out;
}

export function attributeString(v: WireValue | undefined): string | undefined {
  if (!v) return undefined;
  if (typeof v.stringValue === 'string') return v.stringValue;
  if (typeof v.numberValue === 'number') return String(v.numberValue);
  return undefined;
}

export function attributeNumber(v: WireValue | undefined): number | undefined {
  if (!v) return undefined;
  if (typeof v.numberValue === 'number') return v.numberValue;
  if (typeof v.stringValue === 'string' && v.stringValue !== '') {
    const n = Number(v.stringValue);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}
