/**
 * mcp-pin's gRPC port is a control plane: whoever opens a stream there can
 * play Envoy and rewrite any session whose id it knows. What ships closes
 * it: a Unix socket beside Envoy (compose and Kubernetes), loopback by
 * default, and a refusal to serve a network address without mutual TLS
 * unless the operator states the network is closed. Real Envoy 1.40, Redis,
 * SDK pods and client; mcp-pin as the real process.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { McpPinProcess } from '../helpers/mcp-pin.js';
import { eventually } from '../helpers/net.js';
import { stackPerTest } from '../helpers/stack-fixture.js';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;

describe('a closed control plane: only Envoy can open a stream to mcp-pin', function () {
  this.timeout(120_000);
  const f = stackPerTest();

  it('runs over Unix sockets (ext_proc and the internal listener, mode 0660): pinning and a recovery on 2 replicas', async () => {
    const stack = await f.start({ pods: 2, replicas: 2, transport: 'unix' });
    const dir = stack.socketDir!;
    for (const name of ['mcp-pin-1.sock', 'mcp-pin-2.sock', 'envoy-internal.sock']) {
      const st = statSync(`${dir}/${name}`);
      expect(st.isSocket(), name).to.equal(true);
      expect(st.mode & 0o777, name).to.equal(0o660);
    }
    // No TCP port of mcp-pin's own carries ext_proc.
    for (const pin of stack.pins) expect(pin.port).to.equal(0);
    const c = await f.client();
    const home = stack.podByName((await c.whoami()).pod);
    for (let i = 0; i < 4; i++) expect((await c.echo(`pinned ${i}`)).pod).to.equal(home.name);
    // A recovery: the retry's ext_proc stream and the re-initialize through
    // Envoy's internal listener both go over the sockets.
    await home.restartInPlace();
    expect((await c.echo('recovered')).text).to.equal('recovered');
    const reinitialized = await Promise.all(stack.pins.map((p) => p.metric('mcp_pin_recovery_seconds_count{result="recovered"}')));
    expect(reinitialized.reduce((a, b) => a + b, 0)).to.equal(1);
    expect(await stack.envoy.stat('cluster.mcp_pin.upstream_cx_total')).to.be.greaterThan(0);
    expect(await stack.envoy.stat('http.mcp_pin_internal.downstream_rq_total')).to.be.greaterThan(0);
  });

  it('refuses to serve plaintext on a network address, unless told the network is closed', async () => {
    const run = (env: Record<string, string>) =>
      spawnSync(process.execPath, ['--import', 'tsx', MAIN], {
        encoding: 'utf8',
        env: { ...process.env, MCP_PIN_METRICS_LISTEN: 'off', ...env },
        timeout: 20_000,
      });
    const refused = run({ MCP_PIN_LISTEN: '0.0.0.0:0' });
    expect(refused.status).to.equal(2);
    expect(refused.stderr).to.match(/--listen=0\.0\.0\.0:0: the gRPC port is mcp-pin's control plane/);
    expect(refused.stderr).to.match(/--network-is-closed true/);
    // TLS without a client CA lets anyone connect: refused too.
    const serverOnlyTls = run({ MCP_PIN_LISTEN: '[::]:0', MCP_PIN_TLS_CERT_FILE: MAIN, MCP_PIN_TLS_KEY_FILE: MAIN });
    expect(serverOnlyTls.status).to.equal(2);
    expect(serverOnlyTls.stderr).to.match(/--listen=\[::\]:0: the gRPC port is mcp-pin's control plane/);

    // The operator's explicit word: it starts, and says what it serves.
    const open = await new McpPinProcess('mcp-pin-open', 0, { MCP_PIN_NETWORK_IS_CLOSED: 'true' }).start({ MCP_PIN_LISTEN: '0.0.0.0:0' });
    try {
      await eventually(
        async () => open.proc.output.includes('gRPC port serves plaintext on a network address (--network-is-closed true)'),
        'the warning',
        5000,
      );
    } finally {
      await open.stop();
    }
  });
});
