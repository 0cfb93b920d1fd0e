/**
 * What the benchmark, the profiler and the soak share: the MCP requests they
 * send and how they read a process's CPU time and RSS from /proc.
 */
import { readFileSync } from 'node:fs';

/** An initialize carries no MCP-Protocol-Version (2025 clients send it only afterwards). */
export const INIT_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
export const MCP_HEADERS = { ...INIT_HEADERS, 'mcp-protocol-version': '2025-11-25' };
export const CALL = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'bench' } } });
/** A read, safe to replay after a reset: the replay route (and holdSafeResponses) applies to it. */
export const READ = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'bench://r' } });
/** A request that sets session state (issue 29): read, answered and kept by mcp-pin's session-state filter. */
export const SUBSCRIBE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'bench://r' } });
export const INIT = JSON.stringify({
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
});

/** utime + stime of a process in ms (0 if there is none or it is gone). */
export function cpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // in ticks of 1/100 s
  } catch {
    return 0;
  }
}

/** Resident set size in MB (0 without a pid; throws if the process is gone). */
export function rssMb(pid: number | undefined): number {
  if (!pid) return 0;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** A tools/call of MCP revision 2026-07-28 (no session), as the v2 SDK client sends it. */
export const SESSIONLESS_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2026-07-28',
  'mcp-method': 'tools/call',
  'mcp-name': 'echo',
};
export const SESSIONLESS_CALL = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: {
    name: 'echo',
    arguments: { text: 'bench' },
    _meta: {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': {},
    },
  },
});
