/** The user: the official MCP SDK client, plus a record of raw response headers. */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernStreamableHTTPClientTransport } from '@modelcontextprotocol/client';

export interface SeenResponse {
  method: string;
  status: number;
  sessionId: string | null;
}

export interface TestClient {
  client: Client;
  transport: StreamableHTTPClientTransport;
  /** Every HTTP response this client received, in order (raw headers, not SDK state). */
  seen: SeenResponse[];
  sessionId(): string;
  /** Calls whoami; returns the pod name that answered. */
  whoami(): Promise<{ pod: string; session: string }>;
  echo(text: string): Promise<{ pod: string; text: string }>;
  close(): Promise<void>;
}

function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  const first = content[0];
  if (first?.type !== 'text' || typeof first.text !== 'string') throw new Error(`unexpected tool result ${JSON.stringify(result)}`);
  return first.text;
}

export async function connectClient(url: string, opts: { headers?: Record<string, string>; name?: string; fetch?: typeof fetch } = {}): Promise<TestClient> {
  const seen: SeenResponse[] = [];
  const recordingFetch: typeof fetch = async (input, init) => {
    const res = await (opts.fetch ?? fetch)(input, init);
    seen.push({ method: init?.method ?? 'GET', status: res.status, sessionId: res.headers.get('mcp-session-id') });
    return res;
  };
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    fetch: recordingFetch,
    requestInit: opts.headers ? { headers: opts.headers } : undefined,
  });
  const client = new Client({ name: opts.name ?? 'mcp-pin-test', version: '1.0.0' });
  await client.connect(transport);
  return {
    client,
    transport,
    seen,
    sessionId: () => {
      if (!transport.sessionId) throw new Error('client has no session id');
      return transport.sessionId;
    },
    whoami: async () => JSON.parse(textOf(await client.callTool({ name: 'whoami', arguments: {} }))) as { pod: string; session: string },
    echo: async (text) => JSON.parse(textOf(await client.callTool({ name: 'echo', arguments: { text } }))) as { pod: string; text: string },
    close: async () => {
      await client.close().catch(() => {});
    },
  };
}

/**
 * A user on the v2 SDK (@modelcontextprotocol/client) with version
 * negotiation 'auto': MCP revision 2026-07-28 (no sessions) where the server
 * speaks it, the 2025 initialize handshake where it does not.
 */
export async function connectModernClient(url: string): Promise<{
  client: ModernClient;
  /** Every HTTP request this client sent: method and MCP-Protocol-Version. */
  sent: { method: string; protocolVersion: string | null }[];
  echo(text: string): Promise<{ pod: string; text: string }>;
  close(): Promise<void>;
}> {
  const sent: { method: string; protocolVersion: string | null }[] = [];
  const recordingFetch: typeof fetch = async (input, init) => {
    sent.push({ method: init?.method ?? 'GET', protocolVersion: new Headers(init?.headers).get('mcp-protocol-version') });
    return fetch(input, init);
  };
  const client = new ModernClient({ name: 'mcp-pin-test-v2', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
  await client.connect(new ModernStreamableHTTPClientTransport(new URL(url), { fetch: recordingFetch }));
  return {
    client,
    sent,
    echo: async (text) => JSON.parse(textOf(await client.callTool({ name: 'echo', arguments: { text } }))) as { pod: string; text: string },
    close: async () => {
      await client.close().catch(() => {});
    },
  };
}
