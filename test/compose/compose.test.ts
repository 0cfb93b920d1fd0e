/**
 * The shipped docker-compose.yml and Dockerfile, really run (npm run
 * test:compose, which prepares the engine and the images: see
 * scripts/ensure-docker.sh). The official MCP SDK client on the host talks to
 * the published port; every assertion comes from the pods' own records
 * (GET /_record inside each pod's container) or from Redis, not from timing.
 */
import { expect } from 'chai';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { renderEds, writeFileAtomically } from '../../envoy/eds.js';
import { COMPOSE } from '../../scripts/render-deploy.js';
import { connectClient, type TestClient } from '../helpers/mcp-client.js';
import { eventually, freePort } from '../helpers/net.js';
import type { PodRecord } from '../helpers/pod.js';

const run = promisify(execFile);
const PROJECT = 'mcp-pin-compose-test';
const root = new URL('../../', import.meta.url).pathname;

let env: NodeJS.ProcessEnv;
/** The EDS directory Envoy watches (a copy of deploy/compose/eds): the test takes pods out of it as an orchestrator would. */
let edsDir: string;
const setPods = (names: string[]): void => writeFileAtomically(`${edsDir}/eds.json`, renderEds(COMPOSE.pods.filter((_, i) => names.includes(`pod${i + 1}`))));

/** The pods' addresses Envoy has now in the service cluster, from its admin interface inside its container. */
async function envoyPods(): Promise<string[]> {
  const out = await dc(
    'exec',
    '-T',
    'envoy',
    'bash',
    '-c',
    "exec 3<>/dev/tcp/127.0.0.1/9901; printf 'GET /clusters HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3; cat <&3",
  );
  const pods = [...new Set([...out.matchAll(/^mcp_service::(\d+\.\d+\.\d+\.\d+):\d+::cx_active/gm)].map((m) => m[1]!))];
  // Envoy answered with its clusters (never an empty list by mistake: a pod list is never empty here).
  if (pods.length === 0) throw new Error(`no pods in Envoy's /clusters answer: ${out.slice(0, 200)}`);
  return pods;
}

async function dc(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', ['compose', '-p', PROJECT, '-f', 'docker-compose.yml', ...args], { cwd: root, env, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

async function containerOf(service: string): Promise<string> {
  return (await dc('ps', '-aq', service)).trim();
}

/** What a pod saw since its process started, from inside its container. */
async function record(pod: string): Promise<PodRecord> {
  const out = await dc('exec', '-T', pod, 'node', '-e', "fetch('http://127.0.0.1:8080/_record').then((r) => r.text()).then((t) => process.stdout.write(t))");
  return JSON.parse(out) as PodRecord;
}

async function redis(...args: string[]): Promise<string> {
  return (await dc('exec', '-T', 'redis', 'redis-cli', ...args)).trim();
}

describe('docker compose: the shipped stack, running (issue 22)', function () {
  this.timeout(600_000);
  let url: string;
  const clients: TestClient[] = [];
  const client = async (): Promise<TestClient> => {
    const c = await connectClient(url);
    clients.push(c);
    return c;
  };

  before(async () => {
    const port = await freePort();
    edsDir = mkdtempSync(`${tmpdir()}/mcp-pin-compose-eds-`);
    cpSync(`${root}deploy/compose/eds`, edsDir, { recursive: true });
    // Envoy runs as 101:10001 in the stack: the folder must be readable by it (mkdtemp makes it 0700).
    chmodSync(edsDir, 0o755);
    // A short grace for the demo pods: the graceful-stop scenario waits for it.
    env = { ...process.env, MCP_PIN_PORT: String(port), POD_GRACE_MS: '3000', MCP_PIN_EDS_DIR: edsDir };
    url = `http://127.0.0.1:${port}/mcp`;
    await dc('down', '-v', '--remove-orphans').catch(() => '');
    const t0 = Date.now();
    await dc('up', '-d', '--build', '--wait', '--wait-timeout', '300');
    console.log(`      stack built and up in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    // Envoy takes traffic once its health checks admitted the replicas.
    await eventually(
      async () =>
        (await connectClient(url).then(
          (c) => c.close().then(() => true),
          () => false,
        )) || undefined,
      'an MCP session through the published port',
      60_000,
      500,
    );
  });

  after(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    if (process.env.COMPOSE_KEEP !== '1') await dc('down', '-v', '--remove-orphans').catch(() => '');
    rmSync(edsDir, { recursive: true, force: true });
  });

  it('publishes the listener and the metrics on 127.0.0.1 only, and gives each service a stop grace above its drain', async () => {
    const cfg = JSON.parse(await dc('config', '--format', 'json')) as {
      services: Record<string, { ports?: { host_ip?: string }[]; stop_grace_period?: string; environment?: Record<string, string> }>;
    };
    for (const s of ['envoy', 'mcp-pin-1', 'mcp-pin-2']) for (const p of cfg.services[s]!.ports ?? []) expect(p.host_ip, s).to.equal('127.0.0.1');
    const seconds = (d: string | undefined): number => Number(/^(\d+)s$/.exec(d ?? '')?.[1] ?? NaN);
    // mcp-pin drains for --drain-delay-ms + --drain-grace-ms (defaults 2 s + 10 s); the pods for POD_GRACE_MS.
    expect(seconds(cfg.services['mcp-pin-1']!.stop_grace_period)).to.be.greaterThan(12);
    expect(seconds(cfg.services.pod1!.stop_grace_period) * 1000).to.be.greaterThan(25_000);
    const metrics = (await dc('port', 'mcp-pin-1', '9464')).trim();
    expect(metrics).to.match(/^127\.0\.0\.1:\d+$/);
    expect(await (await fetch(`http://${metrics}/metrics`)).text()).to.contain('mcp_pin_streams_total');
  });

  it('has the mcp-pin command in the image: --version and --help', async () => {
    const version = (JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version: string }).version;
    expect((await dc('exec', '-T', 'mcp-pin-1', 'mcp-pin', '--version')).trim()).to.equal(`mcp-pin ${version}`);
    expect(await dc('exec', '-T', 'mcp-pin-1', 'mcp-pin', '--help')).to.contain('--store-url');
  });

  it("renders Envoy's config from the image (render-envoy), the same as render:envoy in a checkout", async () => {
    const dir = mkdtempSync(`${tmpdir()}/mcp-pin-render-`);
    try {
      chmodSync(dir, 0o755);
      const values = {
        extProc: 'unix:/run/mcp-pin/mcp-pin.sock',
        internalAddress: 'unix:/run/mcp-pin/envoy-internal.sock',
        service: 'eds:/etc/envoy/eds/eds.json',
      };
      writeFileSync(`${dir}/values.json`, JSON.stringify(values), { mode: 0o644 });
      // The image as shipped, run on its own (its entrypoint is mcp-pin): `docker run <image> render-envoy --values ...`.
      const inImage = await dc('run', '--rm', '--no-deps', '-T', '-v', `${dir}:/values:ro`, 'mcp-pin-1', 'render-envoy', '--values', '/values/values.json');
      const inCheckout = execFileSync(process.execPath, ['--import', 'tsx', `${root}scripts/render-envoy.ts`, '--values', `${dir}/values.json`], {
        encoding: 'utf8',
      });
      expect(inImage).to.equal(inCheckout).and.contain('mcp_pin_internal');
      // The pieces for an Envoy of one's own too (written by the image's user into a folder it may write).
      mkdirSync(`${dir}/out`, { mode: 0o777 });
      chmodSync(`${dir}/out`, 0o777);
      await dc(
        'run',
        '--rm',
        '--no-deps',
        '-T',
        '-v',
        `${dir}:/values`,
        'mcp-pin-1',
        'render-envoy',
        '--values',
        '/values/values.json',
        '--pieces',
        '/values/out/pieces',
      );
      execFileSync(process.execPath, ['--import', 'tsx', `${root}scripts/render-envoy.ts`, '--values', `${dir}/values.json`, '--pieces', `${dir}/here`]);
      const names = readdirSync(`${dir}/here`).sort();
      expect(readdirSync(`${dir}/out/pieces`).sort())
        .to.deep.equal(names)
        .and.include('http-filters.yaml');
      for (const name of names) expect(readFileSync(`${dir}/out/pieces/${name}`, 'utf8'), name).to.equal(readFileSync(`${dir}/here/${name}`, 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("closes every control surface to the pods: mcp-pin and Envoy's internal listener are sockets on a volume no pod mounts, Redis is on a network no pod joins", async () => {
    // What a compromised pod would try, from inside its container.
    const probe = `const net = require('node:net');
      const tryIt = (host, port) => new Promise((r) => { const s = net.connect({ host, port, timeout: 3000 }); s.on('connect', () => (s.destroy(), r('connected'))); s.on('timeout', () => (s.destroy(), r('timeout'))); s.on('error', (e) => r(e.code)); });
      Promise.all([tryIt('redis', 6379), tryIt('mcp-pin-1', 50051), tryIt('mcp-pin-2', 50051), tryIt('envoy', 10001), tryIt('envoy', 50051)]).then((r) => console.log(JSON.stringify({ r, sockets: require('node:fs').existsSync('/run/mcp-pin') })));`;
    const seen = JSON.parse(await dc('exec', '-T', 'pod1', 'node', '-e', probe)) as { r: string[]; sockets: boolean };
    // Names of the store network do not even resolve on the pods' network; Envoy has no TCP port but its public one there.
    expect(
      seen.r.slice(0, 3).every((code) => code === 'ENOTFOUND' || code === 'EAI_AGAIN'),
      JSON.stringify(seen.r),
    ).to.equal(true);
    expect(seen.r.slice(3)).to.deep.equal(['ECONNREFUSED', 'ECONNREFUSED']);
    expect(seen.sockets).to.equal(false);
    // The sockets themselves: owner and group (10001) only.
    const listing = await dc('exec', '-T', 'mcp-pin-1', 'ls', '-ln', '/run/mcp-pin');
    for (const name of ['mcp-pin-1.sock', 'mcp-pin-2.sock', 'envoy-internal.sock'])
      expect(listing).to.match(new RegExp(`^srw-rw---- +1 +\\d+ +10001 .* ${name.replace('.', '\\.')}$`, 'm'));
  });

  let c: TestClient;
  let home: string;
  let other: string;
  /** initialize requests both pods saw. */
  const inits = async (): Promise<number> => (await record('pod1')).initialize.length + (await record('pod2')).initialize.length;
  /** Waits until a call of the session is served from its home pod (calls that fail meanwhile are retried). */
  const servedFromHome = (text: string, what: string): Promise<true> =>
    eventually(
      async () =>
        (await c.echo(text).then(
          (r) => r.pod,
          () => null,
        )) === home || undefined,
      what,
      30_000,
      200,
    );

  it("pins initialize and follow-ups to one pod (the pods' records)", async () => {
    c = await client();
    home = (await c.whoami()).pod;
    other = home === 'pod1' ? 'pod2' : 'pod1';
    for (let i = 0; i < 10; i++) expect((await c.echo(`call ${i}`)).pod).to.equal(home);
    const sid = c.sessionId();
    expect((await record(home)).requests.filter((r) => r.sessionId === sid).length, 'on the home pod').to.be.at.least(11);
    expect(
      (await record(other)).requests.filter((r) => r.sessionId === sid),
      'on the other pod',
    ).to.deep.equal([]);
  });

  it('recovers after docker kill + docker start of the pod holding the session: same session id, one re-initialize', async () => {
    const sid = c.sessionId();
    const before = (await record(other)).initialize.length;
    const id = await containerOf(home);
    await run('docker', ['kill', id]);
    await run('docker', ['start', id]);
    await eventually(
      async () =>
        (await record(home).then(
          () => true,
          () => false,
        )) || undefined,
      `${home} answering again`,
      60_000,
      500,
    );
    const r = await c.echo('after kill');
    expect(r.text).to.equal('after kill');
    expect(c.sessionId()).to.equal(sid);
    const reinits = (await record(other)).initialize.length - before + (await record(home)).initialize.length;
    expect(reinits, 're-initializes on the pods').to.equal(1);
    home = r.pod;
    other = home === 'pod1' ? 'pod2' : 'pod1';
    expect((await c.echo('again')).pod).to.equal(home);
  });

  it('docker compose stop of the pod holding sessions during traffic, taken out of discovery first as an orchestrator does: zero client errors', async () => {
    const load = await Promise.all(Array.from({ length: 4 }, () => client()));
    let stop = false;
    let calls = 0;
    const errors: string[] = [];
    const loops = load.map(async (lc, i) => {
      while (!stop) {
        await lc.echo(`load ${i}`).then(
          () => calls++,
          (e: Error) => errors.push(e.message),
        );
      }
    });
    const ipOf = (pod: string): string => COMPOSE.pods[Number(pod.slice(3)) - 1]!.host;
    try {
      await eventually(async () => calls >= 20 || undefined, 'traffic flowing', 30_000);
      // Out of discovery, then SIGTERM (the pod finishes what it has, then exits).
      setPods([other]);
      await eventually(async () => ((await envoyPods()).includes(ipOf(home)) ? undefined : true), `Envoy has dropped ${home}`, 30_000, 250);
      await dc('stop', home);
      const at = calls;
      await eventually(async () => calls >= at + 20 || undefined, 'traffic after the stop', 60_000);
    } finally {
      stop = true;
      await Promise.all(loops);
      setPods(['pod1', 'pod2']);
      await dc('start', home);
      await eventually(
        async () =>
          (await record(home).then(
            () => true,
            () => false,
          )) || undefined,
        `${home} back`,
        60_000,
        500,
      );
      await eventually(async () => (await envoyPods()).length === 2 || undefined, 'Envoy knows both pods again', 30_000, 250);
    }
    expect(errors, `errors in ${calls} calls`).to.deep.equal([]);
    for (const lc of [c, ...load]) expect((await lc.echo('where')).pod, 'every session now on the remaining pod').to.equal(other);
    [home, other] = [other, home];
  });

  it('keeps every session when an mcp-pin replica is killed and restarted', async () => {
    const sid = c.sessionId();
    const before = await inits();
    await run('docker', ['kill', await containerOf('mcp-pin-1')]);
    // Envoy sees the replica gone within its health checks; the session is still where it was.
    await servedFromHome('one replica', 'a call served with one replica');
    await dc('start', 'mcp-pin-1');
    await dc('up', '-d', '--wait', '--wait-timeout', '120', 'mcp-pin-1');
    for (let i = 0; i < 10; i++) expect((await c.echo(`both ${i}`)).pod).to.equal(home);
    expect(c.sessionId()).to.equal(sid);
    expect(await inits(), 'no re-initialize').to.equal(before);
  });

  it('keeps every pin when Redis restarts (append-only file on a volume)', async () => {
    const keys = async (): Promise<string[]> => (await redis('--scan', '--pattern', 'mcp-pin:*')).split('\n').filter(Boolean).sort();
    const before = await keys();
    expect(before).to.include(`mcp-pin:{${c.sessionId()}}`);
    await dc('restart', 'redis');
    await dc('up', '-d', '--wait', '--wait-timeout', '120', 'redis');
    expect(await keys()).to.deep.equal(before);
    const initsBefore = await inits();
    await servedFromHome('after redis', 'a call after Redis came back');
    expect(await inits(), 'no re-initialize').to.equal(initsBefore);
  });

  it('ends a session with DELETE: the pod forgets it and so does the store', async () => {
    const sid = c.sessionId();
    const backend = (await record(home)).requests.find((r) => r.sessionId !== null && r.rpcMethod === 'tools/call')?.sessionId;
    await c.transport.terminateSession();
    expect((await record(home)).deleted.length, `${home} ended a session`).to.be.at.least(1);
    expect(backend).to.be.a('string');
    expect(await redis('exists', `mcp-pin:{${sid}}`)).to.equal('0');
  });

  it("passes the stack's own smoke test service (an SDK client on the compose network)", async () => {
    const out = await dc('--profile', 'test', 'run', '--rm', 'tests');
    expect(out).to.contain('compose smoke: session pinned to');
  });
});
