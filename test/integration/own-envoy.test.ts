/**
 * Issue 20 item 1: the deployment docs/own-envoy.md shows, step by step, from
 * one values file: render Envoy, write EDS, start mcp-pin with --config, start
 * Envoy, check that a session is pinned and recovered. Real Envoy 1.40, the
 * installed `mcp-pin` command, SDK pods and the SDK client. The values file
 * changes shared settings away from their defaults (pin header, upstream
 * header, statuses, the sockets), so only agreement makes it work.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findEnvoy } from '../helpers/envoy.js';
import { connectClient, type TestClient } from '../helpers/mcp-client.js';
import { eventually, freePort } from '../helpers/net.js';
import { startPods, type Pod } from '../helpers/pod.js';
import { ManagedProcess } from '../helpers/process.js';
import { registerForReport } from '../helpers/root-hooks.js';

const root = new URL('../../', import.meta.url).pathname;
const MCP_PIN = `${root}bin/mcp-pin.js`;
const render = (...args: string[]): string =>
  execFileSync(process.execPath, ['--import', 'tsx', `${root}scripts/render-envoy.ts`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('one values file for Envoy and mcp-pin (issue 20)', function () {
  this.timeout(90_000);
  let dir: string;
  let pods: Pod[] = [];
  const procs: ManagedProcess[] = [];
  let client: TestClient | undefined;
  // A failing run prints every process's last output.
  const unregister = registerForReport(() => [...procs, ...pods.map((p) => p.proc)]);
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'mcp-pin-own-envoy-'))));
  afterEach(async () => {
    await client?.close();
    client = undefined;
    await Promise.all(procs.splice(0).map((p) => p.stop()));
    await Promise.all(pods.splice(0).map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  });
  after(() => unregister());

  it('renders Envoy and starts mcp-pin from the same file; a session is pinned and recovered through them', async () => {
    // As the doc: mcp-pin beside Envoy, each reaching the other through a Unix socket.
    const grpcSocket = join(dir, 'mcp-pin.sock');
    const values = join(dir, 'values.json');
    // The doc's values name fixed ports; a port probed free here can still be
    // taken before Envoy binds it, so the values are written again with new
    // ports when Envoy exits on a bind failure (mcp-pin reads no port of them).
    const writeValues = (listenPort: number, adminPort: number): void =>
      writeFileSync(
        values,
        JSON.stringify({
          extProc: `unix:${grpcSocket}`,
          internalAddress: `unix:${dir}/envoy-internal.sock`,
          service: `eds:${dir}/eds.json`,
          listenAddress: '127.0.0.1',
          listenPort,
          adminPort,
          pinHeader: 'x-team-pin',
          upstreamHeader: 'x-team-reached',
          lostSessionStatuses: [404],
          mcpPin: { storeUrl: 'memory:', metricsListen: '127.0.0.1:0', logLevel: 'info' },
        }),
      );
    let [listen, admin] = [await freePort(), await freePort()];
    writeValues(listen, admin);
    // 1. Render Envoy; 2. write the pods into EDS.
    render('--values', values, '--out', join(dir, 'envoy.yaml'));
    pods = await startPods(2);
    render('--eds', pods.map((p) => `${p.host}:${p.port}`).join(','), '--out', join(dir, 'eds.json'));
    // 3. mcp-pin from the same file: a disagreeing flag is refused first.
    const refused = spawnSync(process.execPath, [MCP_PIN, '--config', values, '--pin-header', 'x-mcp-pin-dst'], { encoding: 'utf8' });
    expect(refused.status).to.equal(2);
    expect(refused.stderr).to.contain(`--pin-header=x-mcp-pin-dst disagrees with pinHeader x-team-pin in ${values}`);
    const pin = new ManagedProcess('mcp-pin', process.execPath, [MCP_PIN, '--config', values]).start();
    procs.push(pin);
    const ready = await pin.waitForJson((o) => o.ready === true);
    expect(statSync(grpcSocket).isSocket(), 'listens where Envoy opens ext_proc streams').to.equal(true);
    // 4. Envoy; 5. check: mcp-pin healthy in Envoy, a session pinned, then recovered after its pod restarts.
    for (let attempt = 1; ; attempt++) {
      const envoy = new ManagedProcess('envoy', findEnvoy(), ['-c', join(dir, 'envoy.yaml'), '--disable-hot-restart']).start();
      procs.push(envoy);
      const healthy = await eventually(
        async () => {
          if (!envoy.alive) return 'exited';
          const text = await fetch(`http://127.0.0.1:${admin}/clusters`).then(
            (r) => r.text(),
            () => '',
          );
          return text.includes(`mcp_pin::${grpcSocket}::health_flags::healthy`) && 'healthy';
        },
        'mcp-pin healthy in Envoy',
        30_000,
        100,
      );
      if (healthy === 'healthy') break;
      const bindFailed = /address already in use/i.test(envoy.output);
      expect(bindFailed && attempt < 3, `Envoy exited:\n${envoy.output.slice(-2000)}`).to.equal(true);
      [listen, admin] = [await freePort(), await freePort()];
      writeValues(listen, admin);
      render('--values', values, '--out', join(dir, 'envoy.yaml'));
    }
    client = await connectClient(`http://127.0.0.1:${listen}/mcp`);
    const home = (await client.whoami()).pod;
    for (let i = 0; i < 3; i++) expect((await client.echo(`n${i}`)).pod).to.equal(home);
    const homePod = pods.find((p) => p.name === home)!;
    await homePod.restartInPlace();
    expect((await client.echo('after restart')).text).to.equal('after restart');
    const record = (await Promise.all(pods.map((p) => p.record()))).flatMap((r) => r.initialize);
    expect(record.length, 'one re-initialize reached a pod').to.equal(1);
    const metrics = await fetch(`http://127.0.0.1:${String(ready.metricsPort)}/metrics`).then((r) => r.text());
    expect(metrics).to.match(/mcp_pin_requests_total\{outcome="recovered"\} [1-9]/);
  });

  it("runs docs/own-envoy.md as written (its shell block, with this machine's paths, ports, pods and an in-memory store)", async () => {
    const doc = readFileSync(`${root}docs/own-envoy.md`, 'utf8');
    const block = /```sh\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(block, 'the walk-through block').to.be.a('string');
    pods = await startPods(2);
    let [listen, admin] = [await freePort(), await freePort()];
    // What differs on this machine, and nothing else: its folders for /etc/envoy and
    // /run/mcp-pin, the checkout's commands for npm/npx outside it, the test's pods,
    // free ports, and the memory store for the doc's Redis.
    const here = (text: string): string =>
      text
        .replaceAll('/etc/envoy', `${dir}/etc/envoy`)
        .replaceAll('/run/mcp-pin', `${dir}/run`)
        .replaceAll(' values.json', ` ${dir}/values.json`)
        .replaceAll('npm run render:envoy --', `npm --prefix ${root} run render:envoy --`)
        .replaceAll('npx mcp-pin', `${process.execPath} ${MCP_PIN}`)
        .replace(/^envoy -c (\S+)$/m, `${findEnvoy()} -c $1 --disable-hot-restart`)
        .replace('"extProc":', `"listenAddress": "127.0.0.1", "listenPort": ${listen}, "adminPort": ${admin}, "extProc":`)
        .replace('"mcpPin": { ', '"mcpPin": { "metricsListen": "127.0.0.1:0", ')
        .replace('redis://10.0.1.9:6379', 'memory:')
        .replace('10.0.2.0/24:8080', '127.0.0.0/8')
        .replace('10.0.2.11:8080,10.0.2.12:8080', pods.map((p) => `${p.host}:${p.port}`).join(','))
        .replaceAll('localhost:9901', `127.0.0.1:${admin}`)
        .replaceAll('localhost:10000', `127.0.0.1:${listen}`);
    const steps = (text: string): { setup: string; mcpPin: string; envoy: string; checks: string[] } => {
      const at = (n: number): number => text.indexOf(`# ${n}.`);
      const commands = (from: number, to: number): string[] =>
        text
          .slice(from, to)
          .replace(/\\\n\s*/g, ' ')
          .split('\n')
          .filter((l) => l.trim() && !l.startsWith('#'));
      return {
        setup: text.slice(0, at(4)),
        mcpPin: commands(at(4), at(5)).join('\n'),
        envoy: commands(at(5), at(6)).join('\n'),
        checks: commands(at(6), text.length),
      };
    };
    let s = steps(here(block!));
    const bash = (script: string): string =>
      execFileSync('bash', ['-euo', 'pipefail', '-c', script], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    // 1-3: the values file, Envoy's config, the EDS file.
    bash(s.setup);
    // 4. mcp-pin from the same file; 5. Envoy.
    procs.push(new ManagedProcess('mcp-pin', 'bash', ['-c', `exec ${s.mcpPin}`]).start());
    await procs[0]!.waitForJson((o) => o.ready === true);
    for (let attempt = 1; ; attempt++) {
      const envoy = new ManagedProcess('envoy', 'bash', ['-c', `exec ${s.envoy}`]).start();
      procs.push(envoy);
      // 6. The doc's own checks, as written: mcp-pin healthy in Envoy, then an initialize answered with a session.
      const checked = await eventually(
        async () => {
          if (!envoy.alive) return 'exited';
          if (!bash(s.checks[0]!).includes('health_flags::healthy')) return undefined;
          const answer = bash(s.checks[1]!);
          return /^HTTP\/1\.1 200/m.test(answer) && /^mcp-session-id: \S+/im.test(answer) ? 'served' : undefined;
        },
        "the doc's checks",
        30_000,
        200,
      );
      if (checked === 'served') break;
      // A port probed free can be taken before Envoy binds it: new ports, the steps again.
      expect(/address already in use/i.test(envoy.output) && attempt < 3, `Envoy exited:\n${envoy.output.slice(-2000)}`).to.equal(true);
      [listen, admin] = [await freePort(), await freePort()];
      s = steps(here(block!));
      bash(s.setup);
    }
    // And the deployment does what the doc promises: a session pinned, and recovered after its pod restarts.
    client = await connectClient(`http://127.0.0.1:${listen}/mcp`);
    const home = (await client.whoami()).pod;
    for (let i = 0; i < 3; i++) expect((await client.echo(`n${i}`)).pod).to.equal(home);
    await pods.find((p) => p.name === home)!.restartInPlace();
    expect((await client.echo('after restart')).text).to.equal('after restart');
  });
});
