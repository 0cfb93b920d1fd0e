/**
 * A stateful MCP server "pod" built on the official SDK
 * (StreamableHTTPServerTransport, one transport + McpServer per session, kept
 * in memory), as the tests and the local stack run it.
 *
 * Env: POD_NAME, POD_HOST (default 127.0.0.1), POD_PORT (default 0),
 * POD_JSON=1 for JSON responses instead of SSE, POD_LOST_STATUS (default 404:
 * the spec's answer to an unknown session; 400 imitates the SDK example server),
 * POD_FORGE_ENVOY_REPLY=1 adds x-mcp-pin-envoy-reply to every answer (a pod
 * trying to look unreachable to mcp-pin), POD_PATH=/mcp serves MCP at that path only (anything else: 404, as an
 * HTTP framework answers an unknown route), POD_REDIRECT_FROM=/old answers every request
 * to that path with 308 to the same URL at POD_PATH (a route that moved; the
 * client's HTTP library, or Envoy on mcp-pin's pinned routes, follows it), POD_REFUSE_INIT=1 to answer every initialize with 503 (or =<status> with that status), POD_STATELESS=1 for a
 * server that never issues session ids, POD_MODERN=1 for a server on the v2
 * SDK (@modelcontextprotocol/server): MCP revision 2026-07-28, which has no
 * sessions, and 2025 clients served statelessly. POD_INIT_DELAY_MS delays the
 * answer to every initialize (a slow pod). POD_GRACE_MS bounds the graceful
 * shutdown on SIGTERM (see shutdown below).
 *
 * Tools: whoami, echo, big (size bytes), slow (answers after ms), slow-task
 * (a task, 2025-11-25, that completes after ms; tasks live in the pod's
 * memory); resource
 * templates slow://{ms} (a read that takes ms) and big://{size} (size bytes);
 * resources demo://counter (changes on POST /_touch) and demo://other, which
 * a client may subscribe to (resources/subscribe; any other URI is refused:
 * "Resource not found"); logging/setLevel per session.
 *
 * Besides MCP on every path, it serves GET /_record: what it saw, so tests can
 * assert where each request really landed; POST /_notify: sends a log
 * notification to every session's standalone GET stream; POST
 * /_touch?uri=U: notifications/resources/updated to every session
 * subscribed to U; POST /_log?level=L: a log message at level L to every
 * session (each session's level filters it, as the SDK does); POST
 * /_next-session-id: the next initialize hands out the id in the body (a
 * compromised pod taking another session's id).
 * Prints one JSON line {"listening": "host:port"} when ready.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError, SubscribeRequestSchema, UnsubscribeRequestSchema, type LoggingLevel } from '@modelcontextprotocol/sdk/types.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { InMemoryTaskStore } from '@modelcontextprotocol/sdk/experimental/tasks';
import { McpServer as ModernMcpServer, createMcpHandler } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { z } from 'zod';

const name = process.env.POD_NAME ?? 'pod';
const host = process.env.POD_HOST ?? '127.0.0.1';
const port = Number(process.env.POD_PORT ?? 0);
const json = process.env.POD_JSON === '1';
const lostStatus = Number(process.env.POD_LOST_STATUS ?? 404);
const refuseInitStatus = process.env.POD_REFUSE_INIT === '1' ? 503 : Number(process.env.POD_REFUSE_INIT ?? 0);
const stateless = process.env.POD_STATELESS === '1';
const modern = process.env.POD_MODERN === '1';
const initDelayMs = Number(process.env.POD_INIT_DELAY_MS ?? 0);
const onlyPath = process.env.POD_PATH;
const redirectFrom = process.env.POD_REDIRECT_FROM;
const forgeEnvoyReply = process.env.POD_FORGE_ENVOY_REPLY === '1';

interface Seen {
  httpMethod: string;
  sessionId: string | null;
  rpcMethod: string | null;
  /** The MCP-Protocol-Version header, if any. */
  protocolVersion?: string;
  status?: number;
  /** Any x-mcp-pin-* header that reached the pod, as "name: value" (none should, but mcp-pin's own x-mcp-pin-searched on a session search). */
  pinHeaders?: string[];
  traceparent?: string;
  authorization?: string;
}
const record = { name, initialize: [] as string[], initialized: [] as string[], requests: [] as Seen[], deleted: [] as string[], reads: [] as string[] };
const sessions = new Map<string, { transport: StreamableHTTPServerTransport; server: McpServer; subscriptions: Set<string> }>();
/** The resources a client may subscribe to; demo://counter changes on POST /_touch. */
const SUBSCRIBABLE = new Set(['demo://counter', 'demo://other']);
let counter = 0;
let inFlight = 0;
let stopping = false;
/** Set by POST /_next-session-id: the id the next initialize hands out. */
let nextSessionId: string | undefined;
let lastRequestAt = 0;

/** Tasks (2025-11-25) live in this process's memory, as in the SDK's example server: they die with the pod. */
const taskStore = new InMemoryTaskStore();

function newServer(getSessionId: () => string | undefined, subscriptions = new Set<string>()): McpServer {
  const server = new McpServer(
    { name: `demo-${name}`, version: '1.0.0' },
    { capabilities: { logging: {}, resources: { subscribe: true }, tasks: { requests: { tools: { call: {} } } } }, taskStore },
  );
  // A task-augmented tool: the call answers at once with a task that completes after `ms`.
  server.experimental.tasks.registerToolTask(
    'slow-task',
    {
      description: 'Runs as a task that completes after `ms` milliseconds',
      inputSchema: { ms: z.number().int().min(0).max(600_000) },
      execution: { taskSupport: 'required' },
    },
    {
      createTask: async ({ ms }, extra) => {
        const task = await extra.taskStore.createTask({ ttl: 600_000 });
        setTimeout(
          () =>
            void extra.taskStore
              .storeTaskResult(task.taskId, 'completed', { content: [{ type: 'text', text: JSON.stringify({ pod: name, slept: ms }) }] })
              .catch(() => {}),
          ms,
        );
        return { task };
      },
      getTask: async (_args, extra) => extra.taskStore.getTask(extra.taskId),
      getTaskResult: async (_args, extra) => extra.taskStore.getTaskResult(extra.taskId) as never,
    },
  );
  server.registerResource('counter', 'demo://counter', { description: 'A number that changes on POST /_touch' }, async (uri) => ({
    contents: [{ uri: uri.href, text: JSON.stringify({ pod: name, counter }) }],
  }));
  server.registerResource('other', 'demo://other', { description: 'Another resource one may subscribe to' }, async (uri) => ({
    contents: [{ uri: uri.href, text: name }],
  }));
  server.server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    if (!SUBSCRIBABLE.has(req.params.uri)) throw new McpError(ErrorCode.InvalidParams, 'Resource not found');
    subscriptions.add(req.params.uri);
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    subscriptions.delete(req.params.uri);
    return {};
  });
  server.registerTool('whoami', { description: 'Which pod and session answered' }, async () => ({
    content: [{ type: 'text', text: JSON.stringify({ pod: name, session: getSessionId() ?? null }) }],
  }));
  server.registerTool(
    'big',
    {
      description: 'Answers with `size` bytes of text',
      inputSchema: {
        size: z
          .number()
          .int()
          .min(0)
          .max(64 * 1024 * 1024),
      },
    },
    async ({ size }) => ({ content: [{ type: 'text', text: 'x'.repeat(size) }] }),
  );
  server.registerTool('echo', { description: 'Echoes its argument back, with the pod name', inputSchema: { text: z.string() } }, async ({ text }) => ({
    content: [{ type: 'text', text: JSON.stringify({ pod: name, text }) }],
  }));
  server.registerTool(
    'slow',
    {
      description: 'Answers after `ms` milliseconds (a tool with effects, as far as a proxy can tell)',
      inputSchema: { ms: z.number().int().min(0).max(600_000) },
    },
    async ({ ms }) => {
      await new Promise((r) => setTimeout(r, ms));
      return { content: [{ type: 'text', text: JSON.stringify({ pod: name, slept: ms }) }] };
    },
  );
  // A read that takes `ms` milliseconds: resources/read is safe to run twice.
  server.registerResource(
    'slow',
    new ResourceTemplate('slow://{ms}', { list: undefined }),
    { description: 'Read after {ms} milliseconds' },
    async (uri, { ms }) => {
      record.reads.push(uri.href);
      await new Promise((r) => setTimeout(r, Number(ms)));
      return { contents: [{ uri: uri.href, text: JSON.stringify({ pod: name, slept: Number(ms) }) }] };
    },
  );
  // A read of `size` bytes (a large resource).
  server.registerResource(
    'big',
    new ResourceTemplate('big://{size}', { list: undefined }),
    { description: 'A resource of {size} bytes' },
    async (uri, { size }) => ({ contents: [{ uri: uri.href, text: 'r'.repeat(Math.min(Number(size), 64 * 1024 * 1024)) }] }),
  );
  return server;
}

/** The same tools on the v2 SDK, one server per request (2026-07-28 has no sessions). */
const modernHandler = modern
  ? toNodeHandler(
      createMcpHandler(() => {
        const server = new ModernMcpServer({ name: `demo-${name}`, version: '1.0.0' });
        server.registerTool('whoami', { description: 'Which pod answered' }, async () => ({
          content: [{ type: 'text', text: JSON.stringify({ pod: name, session: null }) }],
        }));
        server.registerTool(
          'echo',
          { description: 'Echoes its argument back, with the pod name', inputSchema: z.object({ text: z.string() }) },
          async ({ text }) => ({
            content: [{ type: 'text', text: JSON.stringify({ pod: name, text }) }],
          }),
        );
        return server;
      }),
    )
  : null;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function rpcMethods(body: unknown): string[] {
  const list = Array.isArray(body) ? body : [body];
  return list
    .map((m) => (m && typeof m === 'object' && typeof (m as { method?: unknown }).method === 'string' ? (m as { method: string }).method : null))
    .filter((m): m is string => m !== null);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.url === '/_record' && req.method === 'GET') return sendJson(res, 200, record);
  // A compromised pod, for the tests: the next initialize hands out this id (another client's, say).
  if (req.url === '/_next-session-id' && req.method === 'POST') {
    nextSessionId = (await readBody(req)).toString('utf8');
    return sendJson(res, 200, { nextSessionId });
  }
  const url = new URL(req.url ?? '/', 'http://pod');
  if (url.pathname === '/_touch' && req.method === 'POST') {
    const uri = url.searchParams.get('uri') ?? '';
    counter++;
    let sent = 0;
    for (const s of sessions.values())
      if (s.subscriptions.has(uri))
        await s.server.server.sendResourceUpdated({ uri }).then(
          () => sent++,
          () => {},
        );
    return sendJson(res, 200, { sent });
  }
  if (url.pathname === '/_log' && req.method === 'POST') {
    const level = (url.searchParams.get('level') ?? 'info') as LoggingLevel;
    for (const [id, s] of sessions) await s.server.server.sendLoggingMessage({ level, data: `${level} from ${name}` }, id).catch(() => {});
    return sendJson(res, 200, { sent: sessions.size });
  }
  if (req.url === '/_notify' && req.method === 'POST') {
    let sent = 0;
    for (const { server } of sessions.values()) {
      await server.server.sendLoggingMessage({ level: 'info', data: `hello from ${name}` }).then(
        () => sent++,
        () => {},
      );
    }
    return sendJson(res, 200, { sent });
  }
  const sid = (req.headers['mcp-session-id'] as string | undefined) ?? null;
  let parsed: unknown;
  if (req.method === 'POST') {
    const raw = await readBody(req);
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      // Recorded too: tests count what reached the pod, malformed or not.
      record.requests.push({ httpMethod: req.method ?? '', sessionId: sid, rpcMethod: null, status: 400 });
      return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
    }
  }
  const methods = rpcMethods(parsed);
  const seen: Seen = { httpMethod: req.method ?? '', sessionId: sid, rpcMethod: methods[0] ?? null };
  const version = req.headers['mcp-protocol-version'];
  if (typeof version === 'string') seen.protocolVersion = version;
  const leaked = Object.entries(req.headers)
    .filter(([h]) => h.startsWith('x-mcp-pin'))
    .map(([h, v]) => `${h}: ${String(v)}`);
  if (leaked.length > 0) seen.pinHeaders = leaked;
  // What a proxy in between may change: trace context and credentials (tests check they pass).
  if (typeof req.headers.traceparent === 'string') seen.traceparent = req.headers.traceparent;
  if (typeof req.headers.authorization === 'string') seen.authorization = req.headers.authorization;
  record.requests.push(seen);
  res.on('finish', () => (seen.status = res.statusCode));
  lastRequestAt = Date.now();
  if (stopping) res.setHeader('connection', 'close');
  // Requests that must finish before a graceful exit (the standalone GET stream never finishes by itself).
  if (req.method !== 'GET') {
    inFlight++;
    res.on('close', () => inFlight--);
  }

  if (forgeEnvoyReply) res.setHeader('x-mcp-pin-envoy-reply', 'upstream_reset_before_response_started{connection_failure}');
  if (redirectFrom && onlyPath && (req.url ?? '').split('?')[0] === redirectFrom) {
    res.writeHead(308, { location: `http://${req.headers.host ?? `${host}:${port}`}${onlyPath}` }).end();
    return;
  }
  if (onlyPath && (req.url ?? '').split('?')[0] !== onlyPath) return sendJson(res, 404, { error: 'no such route' });

  if (modernHandler) return modernHandler(req, res, parsed);

  if (stateless) {
    const server = newServer(() => undefined);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: json });
    res.on('close', () => void transport.close());
    await server.connect(transport);
    return transport.handleRequest(req, res, parsed);
  }

  if (sid !== null) {
    const s = sessions.get(sid);
    if (!s) return sendJson(res, lostStatus, { jsonrpc: '2.0', error: { code: lostStatus === 404 ? -32001 : -32000, message: 'Session not found' }, id: null });
    if (methods.includes('notifications/initialized')) record.initialized.push(sid);
    if (req.method === 'DELETE') record.deleted.push(sid);
    return s.transport.handleRequest(req, res, parsed);
  }
  if (req.method === 'POST' && methods.includes('initialize')) {
    if (refuseInitStatus) return sendJson(res, refuseInitStatus, { jsonrpc: '2.0', error: { code: -32603, message: 'refusing initialize' }, id: null });
    if (initDelayMs > 0) await new Promise((r) => setTimeout(r, initDelayMs));
    let id: string | undefined;
    const subscriptions = new Set<string>();
    const server = newServer(() => id, subscriptions);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => {
        const forced = nextSessionId;
        nextSessionId = undefined;
        return forced ?? `${name}-${randomUUID()}`;
      },
      enableJsonResponse: json,
      onsessioninitialized: (newId) => {
        id = newId;
        sessions.set(newId, { transport, server, subscriptions });
        record.initialize.push(newId);
      },
    });
    transport.onclose = () => {
      if (id) sessions.delete(id);
    };
    await server.connect(transport);
    return transport.handleRequest(req, res, parsed);
  }
  return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: no session id' }, id: null });
}

const http = createServer((req, res) => {
  handle(req, res).catch((err: unknown) => {
    if (!res.headersSent) sendJson(res, 500, { jsonrpc: '2.0', error: { code: -32603, message: String(err) }, id: null });
    else res.end();
  });
});
http.listen(port, host, () => {
  const a = http.address();
  const p = typeof a === 'object' && a ? a.port : port;
  process.stdout.write(`${JSON.stringify({ listening: `${host}:${p}`, name })}\n`);
});
/**
 * SIGTERM, the way a well-written server ends: it keeps answering (the proxy
 * may still send a request or two while it learns this pod is gone), with
 * `connection: close` so no connection is reused; once no request is in
 * flight and none has come for POD_QUIET_MS, it closes its sessions (their standalone GET streams end, and the
 * clients reconnect elsewhere) and exits. POD_GRACE_MS bounds the wait
 * (Kubernetes' terminationGracePeriodSeconds plays that part).
 */
const graceMs = Number(process.env.POD_GRACE_MS ?? 25_000);
// Quiet time before closing: the proxy learns of the pod's removal a moment
// after the signal, and a request it sends on a pooled connection that we
// close meanwhile is reset (what a preStop delay is for in Kubernetes).
const quietMs = Number(process.env.POD_QUIET_MS ?? 500);
const shutdown = (): void => {
  if (stopping) return;
  stopping = true;
  lastRequestAt = Date.now();
  const deadline = Date.now() + graceMs;
  const poll = setInterval(() => {
    if ((inFlight > 0 || Date.now() - lastRequestAt < quietMs) && Date.now() < deadline) return;
    clearInterval(poll);
    process.stdout.write(`${JSON.stringify({ exiting: name, inFlight })}\n`);
    void Promise.all([...sessions.values()].map((s) => s.transport.close().catch(() => {}))).then(() => {
      http.closeAllConnections();
      http.close(() => process.exit(0));
    });
  }, 10);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
