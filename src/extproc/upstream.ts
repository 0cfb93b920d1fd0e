/** What Envoy reported about the upstream: which pod, and whether connecting failed. */
import { attributeNumber, attributeString } from './headers.js';
import { EXT_PROC_ATTRIBUTES_KEY, type ProcessingRequest } from './protocol.js';

/** Envoy's ResponseFlag bit for UF (upstream connection failure). */
const UPSTREAM_CONNECTION_FAILURE_FLAG = 0x20;

export interface UpstreamReport {
  /** "ip:port" of the host Envoy connected to, when it did. */
  address?: string;
  flags?: number;
  codeDetails?: string;
}

export function upstreamReport(msg: ProcessingRequest): UpstreamReport {
  const f = msg.attributes?.[EXT_PROC_ATTRIBUTES_KEY]?.fields;
  if (!f) return {};
  const r: UpstreamReport = {};
  const address = attributeString(f['upstream.address']);
  if (address) r.address = address;
  const flags = attributeNumber(f['response.flags']);
  if (flags !== undefined) r.flags = flags;
  const details = attributeString(f['response.code_details']);
  if (details) r.codeDetails = details;
  return r;
}

/** Envoy answered 503 itself because it could not connect to the host (flag UF). */
export function isConnectFailure(status: number, r: UpstreamReport): boolean {
  if (status !== 503) return false;
  if (r.flags !== undefined && (r.flags & UPSTREAM_CONNECTION_FAILURE_FLAG) !== 0) return true;
  return r.codeDetails?.includes('connection_failure') === true;
}
