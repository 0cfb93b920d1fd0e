/**
 * Issue 28 item 1: the simulations run the Envoy that ships. Every retry,
 * timeout, redirect, health and breaker rule in the config rendered with the
 * shipped values is either read by the model (test/protocol/shipped-envoy.ts)
 * or named below with why the protocol does not depend on it (and, where
 * that rests on a relation between values, the relation is checked). A rule
 * added to the template, or a changed value a reason rests on, fails here
 * until the model reads it or a reason is written.
 */
import { expect } from 'chai';
import { renderEnvoyConfig } from '../../envoy/render.js';
import { ENVOY_DEFAULTS } from '../../envoy/params.js';
import { paramsFromValues } from '../../envoy/values.js';
import { ROUTES, SHIPPED, maxAttempts, readEnvoy, replayedAfterReset, retriesAfter, routeFor, rulesInRendered } from './shipped-envoy.js';

const ms = (d: unknown): number => Math.round(Number(/^(\d+(?:\.\d+)?)s$/.exec(String(d))?.[1] ?? NaN) * 1000);

interface Known {
  where: RegExp;
  key: RegExp;
  /** What must hold of the value for the reason to stand. */
  holds?: (value: unknown, where: string) => boolean;
  why: string;
}

const routeIndex = (where: string): number => Number(/routes\[(\d+)\]/.exec(where)?.[1] ?? -1);
const PUBLIC_ROUTE = /^\.static_resources\.listeners\[mcp\]\..*\.routes\[\d+\]\.route$/;

/** Read by the model: the simulations take these from the rendered config. */
const MODELLED: Known[] = [
  {
    where: PUBLIC_ROUTE,
    key: /^(retry_policy|internal_redirect_policy)$/,
    holds: (_v, w) => ROUTES[routeIndex(w)] !== undefined,
    why: "routeFor/retriesAfter/maxAttempts: each request takes the route its headers and method match, with that route's retries and redirects (recovery-interleavings, session-search)",
  },
  {
    where: PUBLIC_ROUTE,
    key: /^(timeout|idle_timeout)$/,
    holds: (v) => v === '0s',
    why: 'no limit, as the model has none (a non-zero route timeout would cut long calls: not modelled, so it fails here)',
  },
  {
    where: /^\.static_resources\.clusters\[mcp_pinned\]\..*http_filters\[envoy\.filters\.http\.composite\]\..*typed_config$/,
    key: /^(message_timeout|max_message_timeout)$/,
    why: "SHIPPED.messageTimeoutMs / maxMessageTimeoutMs: the upstream ext_proc's per-message timer and the cap on mcp-pin's override",
  },
];

/** Not part of what the simulations decide, each with the reason. */
const NOT_MODELLED: Known[] = [
  {
    where: /grpc_service$/,
    key: /^retry_policy$/,
    why: 'a new ext_proc stream retried on another mcp-pin replica (issue 27 item 2): the model opens each new stream on a live replica (a replica that dies starts again at once, wider-world.test.ts), which that retry gives; an open stream is not retried; tested with real Envoy in replica-loss.test.ts',
  },
  {
    where: /^\.static_resources\.listeners\[mcp\]\..*http_filters\[envoy\.filters\.http\.ext_proc\]\.typed_config$/,
    key: /^(message_timeout|max_message_timeout)$/,
    why: "the public filter's one message is answered from the store within --store-timeout-ms (250 ms), under this timer; only a stall outlasts it, failing the first pass before any pod is chosen (nothing sent, so nothing for I2 to hold)",
  },
  {
    where: /http_filters\[mcp_pin\.session_state\]/,
    key: /^message_timeout$/,
    why: 'the session-state and task filters fail open (failure_mode_allow): a timeout there changes no answer, only leaves a change unrecorded',
  },
  {
    where: /clusters\[mcp_search\]\..*http_filters\[envoy\.filters\.http\.ext_proc\]\.typed_config$/,
    key: /^message_timeout$/,
    why: "the search attempt's filter answers from its header alone (no store, no wait)",
  },
  {
    where: /^\.static_resources\.listeners\[mcp_pin_internal\]\..*\.routes\[0\]\.route$/,
    key: /^timeout$/,
    holds: (v) => ms(v) > SHIPPED.recoveryTimeoutMs,
    why: "the internal listener's route timeout is longer than mcp-pin's own --recovery-timeout-ms, which bounds each recovery step first",
  },
  {
    where: /common_http_protocol_options$|typed_config$/,
    key: /^common_http_protocol_options$/,
    why: 'header counts (the header-room check): no protocol decision',
  },
  { where: /^\.static_resources\.clusters\[[a-z_]+\]$/, key: /^connect_timeout$/, why: 'a connect that fails is modelled as refused, whatever it took' },
  {
    where: /^\.static_resources\.clusters\[(mcp_service|mcp_pinned|mcp_search|mcp_pin)\]$/,
    key: /^circuit_breakers$/,
    holds: (v) => JSON.stringify(v).includes('"max_retries":1000000'),
    why: 'retry budget opened wide: never reached by the model (a few concurrent retries)',
  },
  {
    where: /^\.static_resources\.clusters\[mcp_pin\](\.health_checks\[0\])?$/,
    key: /^(health_checks|timeout)$/,
    why: 'mcp-pin replicas health-checked: in the model new streams go to live replicas only; how soon the checks notice a dead one is not modelled',
  },
  { where: /^\.static_resources\.clusters\[mcp_service\]$/, key: /^outlier_detection$/, why: 'initialize and session-less traffic: no session to keep' },
  {
    where: /^\.static_resources\.listeners\[(mcp|mcp_pin_internal)\]($|\..*http_filters\[envoy\.filters\.http\.buffer\]\.typed_config$|\..*\.routes\[\d+\]$)/,
    key: /^(per_connection_buffer_limit_bytes|max_request_bytes|request_body_buffer_limit)$/,
    holds: (v) => Number(v) >= 64 * 1024,
    why: "bodies Envoy keeps for a retry and the largest request (413 past it: hardening.test.ts): the model's bodies are a few hundred bytes, far below every limit, so a retry always has its body",
  },
];

describe('the simulations run the Envoy that ships (issue 28 item 1)', () => {
  it('every retry, timeout, redirect, health and breaker rule of the rendered config is read by the model or has a written reason', () => {
    const unknown: string[] = [];
    for (const r of rulesInRendered()) {
      const known = [...MODELLED, ...NOT_MODELLED].filter((k) => k.where.test(r.where) && k.key.test(r.key));
      if (known.length === 0) unknown.push(`${r.where} ${r.key}: ${JSON.stringify(r.value)}`);
      for (const k of known) if (k.holds && !k.holds(r.value, r.where)) unknown.push(`${r.where} ${r.key}: ${JSON.stringify(r.value)} breaks "${k.why}"`);
    }
    expect(unknown, 'rules the model does not know').to.deep.equal([]);
  });

  it('reads the routes as Envoy picks them: each kind of request gets the shipped retries', () => {
    const pinned: [string, string][] = [
      [':method', 'POST'],
      ['mcp-session-id', 's'],
      [ENVOY_DEFAULTS.pinHeader, '10.0.0.1:80'],
    ];
    const call = routeFor(pinned, { method: 'tools/call' });
    expect(maxAttempts(call), 'pinned: num_retries 2').to.equal(3);
    for (const status of ENVOY_DEFAULTS.lostSessionStatuses) expect(retriesAfter(call, { status }), `a ${status} is retried`).to.equal(true);
    expect(retriesAfter(call, { status: 500 })).to.equal(false);
    expect(retriesAfter(call, 'connect-failure')).to.equal(true);
    expect(retriesAfter(call, 'reset'), 'a tool call may have run').to.equal(false);
    expect(call.maxInternalRedirects).to.equal(1);
    for (const m of ENVOY_DEFAULTS.replayAfterReset.filter((x) => !x.endsWith('/*') && x !== 'responses')) expect(replayedAfterReset(m), m).to.equal(true);
    expect(replayedAfterReset('notifications/cancelled')).to.equal(true);
    expect(replayedAfterReset('tools/call')).to.equal(false);
    expect(retriesAfter(routeFor([[':method', 'DELETE'], ...pinned.slice(1)], { method: '' }), { status: 404 }), 'DELETE is never retried').to.equal(false);
    expect(SHIPPED.upstreamExtProcOn(1), 'no upstream ext_proc on the first attempt').to.equal(false);
    expect(SHIPPED.upstreamExtProcOn(2)).to.equal(true);
  });

  it('a change to the template values changes the model (read from the rendering, not copied)', () => {
    const changed = readEnvoy(
      renderEnvoyConfig(
        paramsFromValues({
          extProc: '127.0.0.1:50051',
          service: 'eds:/tmp/eds.json',
          replayAfterReset: '',
          lostSessionStatuses: '404',
          replaySafeTools: 'lookup',
        }),
      ),
    );
    const pinned: [string, string][] = [
      [':method', 'POST'],
      ['mcp-session-id', 's'],
      [ENVOY_DEFAULTS.pinHeader, '10.0.0.1:80'],
    ];
    expect(changed.replayedAfterReset('resources/read'), 'replayAfterReset empty').to.equal(false);
    expect(retriesAfter(changed.routeFor(pinned, { method: 'tools/call' }), { status: 400 }), 'lostSessionStatuses 404').to.equal(false);
    expect(retriesAfter(changed.routeFor(pinned, { method: 'tools/call', params: { name: 'lookup' } }), 'reset'), 'a tool named in replaySafeTools').to.equal(
      true,
    );
    expect(retriesAfter(changed.routeFor(pinned, { method: 'tools/call', params: { name: 'other' } }), 'reset')).to.equal(false);
    expect(SHIPPED.lostSessionStatuses, "mcp-pin's default list is the template's").to.deep.equal([...ENVOY_DEFAULTS.lostSessionStatuses]);
  });

  it("reads what Envoy's own replies tell the client from the shipped local-reply mappers: whether the request may have run", () => {
    const says = (status: number, details: string, flags: string[], upstream: boolean) => SHIPPED.localReply(status, { details, flags, upstream });
    // A reset after the pod took the request: it may have run.
    expect(says(503, 'upstream_reset_before_response_started{connection_termination}', ['UC'], true).saysMayHaveRun).to.equal(true);
    // A connection that never opened: nothing ran, and nothing says it may have.
    expect(says(503, 'upstream_reset_before_response_started{connection_failure}', ['UF'], true).saysMayHaveRun).to.equal(false);
    // mcp-pin too slow on a retry (its pod chosen; it may have been relaying): may have run.
    const retry = says(504, 'ext_proc_error_per-message_timeout_exceeded', [], true);
    expect(retry.saysMayHaveRun).to.equal(true);
    expect(retry.status).to.equal(504);
    // The same on the first pass, before any pod was chosen: nothing was sent.
    expect(says(504, 'ext_proc_error_per-message_timeout_exceeded', [], false).saysMayHaveRun).to.equal(false);
    // The header-room refusal keeps its own status.
    expect(says(403, 'rbac_access_denied_matched_policy[mcp-pin-header-room]', [], false).status).to.equal(431);
  });
});
