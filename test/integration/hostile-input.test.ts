/**
 * Hostile input through the public listener (issue 32, items 2-4): headers
 * that belong to Envoy and mcp-pin never reach a pod, a request's headers
 * never push mcp-pin's own additions over Envoy's limits into an opaque 500,
 * and a pod that answers initialize with another session's id takes nothing
 * from that session. Real Envoy 1.40, redis-server, SDK pods and client.
 */
import { expect } from 'chai';
import { request } from 'node:http';
import { Redis } from 'ioredis';
import type { Pod } from '../helpers/pod.js';
import { stackPerTest } from '../helpers/stack-fixture.js';

const MCP = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const INIT =
  '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}';

/** Every header Envoy and mcp-pin use between themselves, as a client would forge them. */
const FORGED = {
  'x-mcp-pin-dst': '127.0.0.1:6379',
  'x-mcp-pin-upstream': '127.0.0.1:6379',
  'x-mcp-pin-role': 'attempt',
  'x-mcp-pin-envoy-reply': 'upstream_reset_before_response_started{connection_failure}',
  'x-mcp-pin-client-session': 'someone-else',
  'x-mcp-pin-searched': 'forged',
  'x-mcp-pin-anything-new': 'forged',
};

async function rawSession(url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(url, { method: 'POST', headers: { ...MCP, ...headers }, body: INIT });
  await res.text();
  const sid = res.headers.get('mcp-session-id');
  if (res.status !== 200 || !sid) throw new Error(`initialize: ${res.status}`);
  const ack = await fetch(url, {
    method: 'POST',
    headers: { ...MCP, ...headers, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
    body: '{"jsonrpc":"2.0","method":"notifications/initialized"}',
  });
  await ack.text();
  return sid;
}

async function ping(url: string, sid: string, extra: Record<string, string>): Promise<{ status: number; body: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...MCP, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25', ...extra },
    body: '{"jsonrpc":"2.0","id":7,"method":"ping"}',
  });
  return { status: res.status, body: await res.text() };
}

async function leakedTo(pods: Pod[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of pods)
    for (const r of (await p.record()).requests) for (const h of r.pinHeaders ?? []) out.push(`${p.name} ${r.httpMethod} ${r.rpcMethod ?? ''}: ${h}`);
  return out;
}

describe('hostile input through the public listener (issue 32)', function () {
  this.timeout(120_000);
  const f = stackPerTest();

  it('strips every header of Envoy and mcp-pin a client sends, on every route and method, before any pod sees it', async () => {
    const stack = await f.start({ pods: 2, envoy: { upstreamHeader: 'x-reached-pod' }, pinEnv: { MCP_PIN_UPSTREAM_HEADER: 'x-reached-pod' } });
    const url = stack.mcpUrl;
    const forged = { ...FORGED, 'x-reached-pod': '127.0.0.1:6379' };
    // An SDK client with the forged headers on every request it sends (initialize, GET stream, calls, DELETE).
    const c = await f.client({ headers: forged });
    const home = stack.podByName((await c.whoami()).pod);
    await c.echo('pinned');
    // Raw requests: pinned POST, GET, an unknown session (the search route), session-less, and DELETE.
    const sid = await rawSession(url, forged);
    expect((await ping(url, sid, forged)).status).to.equal(200);
    const get = new AbortController();
    const stream = await fetch(url, {
      method: 'GET',
      headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25', ...forged },
      signal: get.signal,
    });
    expect(stream.status).to.equal(200);
    get.abort();
    expect((await ping(url, 'made-up-session', forged)).status).to.equal(404);
    const sessionless = await fetch(url, {
      method: 'POST',
      headers: { ...MCP, 'mcp-protocol-version': '2026-07-28', ...forged },
      body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
    });
    await sessionless.text();
    // A recovery (the retry attempt, the re-initialize and the relay paths) with the headers on.
    await home.restartInPlace();
    expect((await c.echo('recovered')).text).to.equal('recovered');
    const del = await fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25', ...forged } });
    expect(del.status).to.equal(200);
    // What reached the pods: only mcp-pin's own bookkeeping (the pods a search asked; a rewritten
    // session's client id, which a retry needs), never a value a client sent.
    const leaked = await leakedTo(stack.pods);
    const own = (l: string): boolean =>
      / x-mcp-pin-searched: 127\.0\.0\.\d+:\d+(,127\.0\.0\.\d+:\d+)*$/.test(l) || l.endsWith(` x-mcp-pin-client-session: ${c.sessionId()}`);
    expect(leaked.filter((l) => !own(l))).to.deep.equal([]);
    const requests = (await Promise.all(stack.pods.map((p) => p.record()))).flatMap((r) => r.requests);
    expect(requests.length, 'the requests reached the pods').to.be.greaterThan(8);
  });

  it("never answers 500 for the room mcp-pin's headers take: what Envoy's usual limits accept passes, past them a clear 431", async () => {
    const stack = await f.start({ pods: 2 });
    const url = stack.mcpUrl;
    const plain = await rawSession(url);
    // A session whose pod id differs from the client's (after a recovery): mcp-pin rewrites it and adds the client's id.
    const c = await f.client();
    await stack.podByName((await c.whoami()).pod).restartInPlace();
    await c.echo('recovered');
    const rewritten = c.sessionId();
    // Requests with exactly `total` headers as sent (node:http adds host and connection only).
    const send = (total: number, sid: string | undefined, big = 0, version?: string): Promise<{ status: number; body: string }> => {
      const body = sid ? '{"jsonrpc":"2.0","id":7,"method":"ping"}' : INIT;
      const headers: Record<string, string> = { ...MCP, 'content-length': String(Buffer.byteLength(body)) };
      if (sid) Object.assign(headers, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
      if (version) headers['mcp-protocol-version'] = version;
      if (big > 0) headers['x-big'] = 'a'.repeat(big);
      for (let i = 0; Object.keys(headers).length + 2 < total; i++) headers[`x-extra-${i}`] = 'v';
      const u = new URL(url);
      return new Promise((resolve, reject) => {
        const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers, agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        // Past Envoy's codec limit the connection is closed (no answer to read): recorded as status 0.
        req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve({ status: 0, body: '' }) : reject(err)));
        req.end(body);
      });
    };
    const paths: Record<string, string | undefined> = { pinned: plain, rewritten, initialize: undefined, 'unknown session': 'made-up-id' };
    const seen: Record<string, Record<number, number>> = {};
    for (const [path, sid] of Object.entries(paths)) {
      seen[path] = {};
      for (let total = 90; total <= 121; total++) {
        const r = await send(total, sid);
        seen[path]![total] = r.status;
        if (r.status === 431 && total <= 120)
          expect(JSON.parse(r.body).error.message, `${path} ${total}`).to.match(/^mcp-pin: request headers too large: at most 100 headers and 60 KiB/);
      }
    }
    for (const [path, byTotal] of Object.entries(seen)) {
      expect(
        Object.values(byTotal).filter((s) => s >= 500),
        `${path}: ${JSON.stringify(byTotal)}`,
      ).to.deep.equal([]);
      // Within Envoy's usual 100 headers: the pod's own answer (the old failures were here, at 91-100).
      for (let total = 90; total <= 100; total++) expect(byTotal[total], `${path} with ${total} headers`).to.be.oneOf([200, 404]);
      // Past it: mcp-pin's clear 431 (JSON-RPC, above), and far past it Envoy's codec refuses the request itself (431, connection closed).
      for (let total = 101; total <= 120; total++) expect(byTotal[total], `${path} with ${total} headers`).to.equal(431);
      expect(byTotal[121], `${path} with 121 headers`).to.be.oneOf([0, 431]);
    }
    // The session-less route (no mcp-pin on it) skips the check: the raised capacity is its limit.
    const mcpPinRefusedCount = (r: { status: number; body: string }): boolean => r.status === 431 && r.body.includes('mcp-pin: request headers too large');
    for (let total = 101; total <= 120; total++) {
      const r = await send(total, undefined, 0, '2026-07-28');
      expect(r.status, `session-less with ${total} headers`).to.be.below(500);
      expect(mcpPinRefusedCount(r), `session-less with ${total} headers`).to.equal(false);
    }
    expect((await send(121, undefined, 0, '2026-07-28')).status, 'session-less past the capacity: the codec').to.be.oneOf([0, 431]);
    // Bytes: one large header across the 60 KiB boundary. (The SDK pods' Node server takes
    // 16 KiB of headers at most: its own 431 is the pod's answer, not mcp-pin's.)
    const mcpPinRefused = (r: { status: number; body: string }): boolean => r.status === 431 && r.body.includes('mcp-pin: request headers too large');
    for (const [path, sid] of Object.entries(paths)) {
      for (let kb = 56; kb <= 64; kb++) {
        const r = await send(12, sid, kb * 1024 - 300);
        expect(r.status, `${path}, ${kb} KiB of headers`).to.be.below(500);
        if (kb <= 60) expect(mcpPinRefused(r), `${path}, ${kb} KiB of headers`).to.equal(false);
        if (kb >= 62) expect(mcpPinRefused(r), `${path}, ${kb} KiB of headers`).to.equal(true);
      }
    }
  });

  it('answers a session whose record was corrupted in Redis by finding it on its pod again: no raw error, no 500, a log line and a metric', async () => {
    // Every request reads the store (no pin cache), so the garbage is met at once.
    const stack = await f.start({ pods: 2, pinEnv: { MCP_PIN_PIN_CACHE_MS: '0' } });
    const c = await f.client();
    const home = (await c.whoami()).pod;
    const redis = new Redis(stack.redis!.url);
    const key = `${stack.keyPrefix}{${c.sessionId()}}`;
    const garbage: [string, () => Promise<unknown>][] = [
      ['wrong type', () => redis.del(key).then(() => redis.set(key, 'garbage'))],
      ['no backend id', () => redis.hdel(key, 'bsid')],
      ['empty backend id', () => redis.hset(key, 'bsid', '')],
      ['CR LF in the backend id', () => redis.hset(key, 'bsid', `${c.sessionId()}\r\nx-evil: 1`)],
      ['a generation that is no number', () => redis.hset(key, 'gen', 'NaN')],
    ];
    try {
      for (const [what, corrupt] of garbage) {
        await corrupt();
        const r = await c.echo(what);
        expect(r.pod, what).to.equal(home);
        expect(r.text).to.equal(what);
        // Found on its pod and adopted again: a clean record.
        expect(await redis.hget(key, 'bsid'), what).to.equal(c.sessionId());
      }
    } finally {
      redis.disconnect();
    }
    expect(await stack.pins[0]!.metric('mcp_pin_requests_total{outcome="corrupt_record"}')).to.equal(garbage.length);
    expect(await stack.pins[0]!.metric('mcp_pin_store_errors_total{op="lookup",code="MCP_PIN_STORE_CORRUPT"}')).to.equal(garbage.length);
    expect(stack.pins[0]!.proc.output).to.contain('session record unreadable: dropped; the session is searched for on the pods');
    expect(stack.pins[0]!.proc.output).to.not.match(/TypeError|unhandled/);
  });

  it("refuses a pod's initialize answer that takes another session's id: 502 for that client, the other session untouched", async () => {
    const stack = await f.start({ pods: 2 });
    const victim = await f.client();
    const home = (await victim.whoami()).pod;
    const victimId = victim.sessionId();
    // A compromised pod (the other one, say) hands out the victim's id to the next initialize it answers.
    for (const p of stack.pods) await fetch(`http://${p.host}:${p.port}/_next-session-id`, { method: 'POST', body: victimId });
    const res = await fetch(stack.mcpUrl, { method: 'POST', headers: MCP, body: INIT });
    const body = await res.text();
    expect(res.status).to.equal(502);
    expect(JSON.parse(body).error.message).to.match(/session id that another session already holds/);
    expect(await stack.pins[0]!.metric('mcp_pin_requests_total{outcome="session_id_taken"}')).to.equal(1);
    // The victim keeps its pod, and its stored initialize: its calls land where they did.
    for (let i = 0; i < 4; i++) expect((await victim.echo(`still mine ${i}`)).pod).to.equal(home);
  });
});
