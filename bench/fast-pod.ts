/**
 * A minimal, fast stateful MCP endpoint for the benchmark's throughput rows,
 * so the proxy, not the pod, is measured: JSON responses only, sessions in a
 * Set, 404 for unknown sessions, the session id echoed on every response as
 * the TypeScript SDK server does. (Correctness tests use the real SDK pod.)
 * Env: POD_HOST, POD_PORT, POD_NAME. Prints {"listening":"host:port"}.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

const host = process.env.POD_HOST ?? '127.0.0.1';
const name = process.env.POD_NAME ?? 'fast';
const sessions = new Set<string>();

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const sid = req.headers['mcp-session-id'] as string | undefined;
    const send = (status: number, body: unknown, id?: string): void => {
      const text = body === null ? '' : JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(id ? { 'mcp-session-id': id } : {}) });
      res.end(text);
    };
    if (req.method === 'DELETE') {
      if (sid && sessions.delete(sid)) return send(200, null, sid);
      return send(404, { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
    }
    let msg: { id?: unknown; method?: string; params?: { arguments?: unknown } };
    try {
      msg = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof msg;
    } catch {
      return send(400, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
    }
    if (msg.method === 'initialize') {
      const id = `${name}-${randomUUID()}`;
      sessions.add(id);
      return send(
        200,
        { jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name, version: '1' } } },
        id,
      );
    }
    if (!sid || !sessions.has(sid)) return send(404, { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
    if (msg.id === undefined) return send(202, null, sid);
    return send(
      200,
      { jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: JSON.stringify({ pod: name, args: msg.params?.arguments ?? null }) }] } },
      sid,
    );
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.POD_PORT ?? 0), host, () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ listening: `${host}:${typeof a === 'object' && a ? a.port : 0}`, name })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
