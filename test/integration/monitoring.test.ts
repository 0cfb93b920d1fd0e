/**
 * Alerts and the dashboard against a real Prometheus (Debian's package,
 * scripts/ensure-prometheus.sh) scraping a real stack: mcp-pin's /metrics and
 * Envoy's own stats. promtool checks the rules and runs their unit tests;
 * after traffic and a recovery every dashboard panel's query returns data;
 * when recoveries fail, the recovery alert's expression fires and Prometheus
 * holds the alert (pending for its `for`).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parse } from 'yaml';
import { connectClient } from '../helpers/mcp-client.js';
import { eventually, freePort } from '../helpers/net.js';
import { ManagedProcess } from '../helpers/process.js';
import { stackPerTest } from '../helpers/stack-fixture.js';

const root = new URL('../../', import.meta.url).pathname;
const promDir = execFileSync('bash', [`${root}scripts/ensure-prometheus.sh`], { encoding: 'utf8' }).trim();
const RULES = `${root}deploy/prometheus/mcp-pin.rules.yaml`;
const DASHBOARD = `${root}deploy/grafana/mcp-pin-dashboard.json`;

interface Rules {
  groups: { name: string; rules: { alert: string; expr: string; for: string }[] }[];
}

describe('alerts and dashboard against a real Prometheus (issue 19)', function () {
  this.timeout(120_000);
  const fx = stackPerTest();
  let prom: ManagedProcess | undefined;
  let promUrl = '';
  let dir = '';

  async function query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error}`);
    return body.data.result;
  }

  afterEach(async () => {
    await prom?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('promtool: the rules are valid and each alert passes its unit tests', () => {
    expect(execFileSync(`${promDir}/promtool`, ['check', 'rules', RULES], { encoding: 'utf8' })).to.contain('SUCCESS: 6 rules found');
    expect(execFileSync(`${promDir}/promtool`, ['test', 'rules', `${root}deploy/prometheus/mcp-pin.rules.test.yaml`], { encoding: 'utf8' })).to.contain(
      'SUCCESS',
    );
  });

  it('every dashboard panel returns data after traffic and a recovery; the recovery alert fires when recoveries fail', async () => {
    await fx.start({ pods: 2, pinEnv: { MCP_PIN_PIN_CACHE_MS: '1000' } });
    const pin = fx.stack.pins[0]!;
    const admin = new URL(fx.stack.envoy.adminUrl).host;
    dir = mkdtempSync(`${tmpdir()}/mcp-pin-prom-`);
    const port = await freePort();
    writeFileSync(
      `${dir}/prometheus.yml`,
      JSON.stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [RULES],
        scrape_configs: [
          { job_name: 'mcp-pin', static_configs: [{ targets: [`127.0.0.1:${pin.metricsPort}`] }] },
          { job_name: 'envoy', metrics_path: '/stats/prometheus', static_configs: [{ targets: [admin] }] },
        ],
      }),
    );
    prom = new ManagedProcess('prometheus', `${promDir}/prometheus`, [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
    ]).start();
    promUrl = `http://127.0.0.1:${port}`;
    await eventually(
      async () => {
        const res = await fetch(`${promUrl}/api/v1/targets`).catch(() => null);
        const t = res?.ok ? ((await res.json()) as { data: { activeTargets: { health: string }[] } }).data.activeTargets : [];
        return t.length === 2 && t.every((x) => x.health === 'up');
      },
      'Prometheus scraping mcp-pin and Envoy',
      30_000,
      250,
    );

    // Traffic, and a recovery: the pod holding the session restarts.
    const c = await connectClient(fx.stack.mcpUrl);
    fx.clients.push(c);
    const home = fx.stack.podByName((await c.whoami()).pod);
    for (let i = 0; i < 20; i++) await c.echo(`call ${i}`);
    await home.restartInPlace();
    await c.echo('recovered');
    await eventually(
      async () => (await query('sum(mcp_pin_recovery_seconds_count{result="recovered"})'))[0]?.value[1] === '1',
      'the recovery scraped',
      30_000,
      250,
    );
    await eventually(
      async () => Number((await query('sum(envoy_cluster_upstream_rq_retry{envoy_cluster_name="mcp_pinned"})'))[0]?.value[1] ?? 0) > 0,
      "Envoy's retry scraped",
      30_000,
      250,
    );

    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    expect(dashboard.panels.length).to.be.at.least(6);
    for (const p of dashboard.panels) {
      for (const t of p.targets) {
        const r = await eventually(
          async () => {
            const got = await query(t.expr);
            return got.length > 0 ? got : undefined;
          },
          `data for panel "${p.title}"`,
          15_000,
          250,
        );
        expect(r.length, `${p.title}: ${t.expr}`).to.be.greaterThan(0);
      }
    }

    // Recoveries fail: every pod refuses the stored initialize.
    const rules = parse(readFileSync(RULES, 'utf8')) as Rules;
    const alert = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === 'McpPinRecoveryFailing')!;
    expect(await query(alert.expr), 'quiet before').to.deep.equal([]);
    await Promise.all(fx.stack.pods.map((p) => p.restartInPlace({ POD_REFUSE_INIT: '400' })));
    const failed = await c.echo('lost').then(
      () => null,
      (e: Error) => e.message,
    );
    expect(failed).to.match(/404|Session not found/);
    await eventually(async () => (await query(alert.expr)).length > 0 || undefined, 'the recovery alert expression fires', 30_000, 250);
    // Prometheus itself evaluates the rule: the alert is pending for its `for` (5m).
    await eventually(
      async () => {
        const res = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as { data: { alerts: { labels: { alertname: string }; state: string }[] } };
        return res.data.alerts.some((a) => a.labels.alertname === 'McpPinRecoveryFailing' && a.state === 'pending') || undefined;
      },
      'McpPinRecoveryFailing pending in Prometheus',
      30_000,
      250,
    );
  });
});
