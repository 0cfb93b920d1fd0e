/**
 * Issue 30 item 3: the Envoy Gateway and Istio recipes (deploy/gateway/).
 * Its manifests are checked against the project's schema subset of those
 * CRDs (test/gateway/crd-schemas.ts); the Envoy configuration Envoy Gateway
 * v1.8.0 generates from them, reproduced by hand with the patches applied
 * (test/gateway/envoy-gateway-xds.ts), runs with real Envoy, the `mcp-pin`
 * command reading the recipe's own values file, SDK pods and the SDK
 * client: a session is pinned, recovered after its pod restarts, ended by
 * DELETE; a client's own pin header routes nothing. No cluster runs here.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { renderEds } from '../../envoy/eds.js';
import { EG_NAMES, ISTIO_NAMES } from '../../scripts/gateway-recipes.js';
import { DeploymentPatch, ISTIO_SCHEMAS, validateManifests } from '../gateway/crd-schemas.js';
import { envoyGatewayXds } from '../gateway/envoy-gateway-xds.js';
import { istioXds } from '../gateway/istio-xds.js';
import { startEnvoyOnFreePorts } from '../helpers/envoy.js';
import { connectClient, type TestClient } from '../helpers/mcp-client.js';
import { freePort } from '../helpers/net.js';
import { startPods, type Pod } from '../helpers/pod.js';
import { ManagedProcess } from '../helpers/process.js';
import { registerForReport } from '../helpers/root-hooks.js';

const root = new URL('../../', import.meta.url).pathname;
const RECIPE = `${root}deploy/gateway/envoy-gateway.yaml`;
const ISTIO_RECIPE = `${root}deploy/gateway/istio.yaml`;
const ISTIO_PATCH = `${root}deploy/gateway/istio-gateway-patch.yaml`;
// biome-ignore lint/suspicious/noExplicitAny: parsed manifests
type Obj = Record<string, any>;
const manifests = (text: string): Obj[] => parseAllDocuments(text).map((d) => d.toJS() as Obj);

describe('Envoy Gateway recipe (issue 30 item 3)', function () {
  this.timeout(120_000);

  describe('its manifests, against the schema subset of Envoy Gateway v1.8.0 and Gateway API v1.5.1', () => {
    const docs = manifests(readFileSync(RECIPE, 'utf8'));
    it('are all valid, every kind checked', () => {
      expect(validateManifests(docs)).to.deep.equal([]);
      expect(new Set(docs.map((d) => d.kind))).to.have.length(9);
    });
    it('refuse what those versions refuse: a misspelt field, a wrong enum, a missing required field, a bad duration', () => {
      const broken = structuredClone(docs);
      const first = (match: (d: Obj) => boolean): Obj => broken.find(match) as Obj;
      first((d) => d.kind === 'BackendTrafficPolicy' && d.spec.loadBalancer?.endpointOverride).spec.loadBalancer.endpointOverride.extractFrom[0] = {
        headers: 'x-mcp-pin-dst',
      };
      first((d) => d.kind === 'EnvoyPatchPolicy').spec.jsonPatches[0].operation.op = 'merge';
      delete first((d) => d.kind === 'HTTPRoute').spec.rules[0].backendRefs[0].name;
      first((d) => d.kind === 'EnvoyExtensionPolicy').spec.extProc[0].messageTimeout = '1 second';
      const problems = validateManifests(broken).join('\n');
      expect(problems).to.contain('extractFrom.0').and.contain('operation.op').and.contain('backendRefs.0.name').and.contain('messageTimeout');
    });
  });

  describe('the Envoy configuration generated from it, with real Envoy', () => {
    runsPinningAndRecovery({
      recipe: () => manifests(readFileSync(RECIPE, 'utf8')),
      build: (docs, env) => envoyGatewayXds(docs, env),
      serviceCluster: EG_NAMES.cluster('mcp'),
    });
  });
});

describe('Istio recipe (issue 30 item 3)', function () {
  this.timeout(120_000);
  const docs = manifests(readFileSync(ISTIO_RECIPE, 'utf8'));
  const patch = parse(readFileSync(ISTIO_PATCH, 'utf8')) as Obj;

  describe("its manifests, against the schema subset of Istio 1.30.3's CRDs", () => {
    it('are all valid, every kind checked, the Deployment patch too', () => {
      expect(validateManifests(docs, ISTIO_SCHEMAS)).to.deep.equal([]);
      expect(new Set(docs.map((d) => d.kind))).to.have.length(6);
      expect(DeploymentPatch.safeParse(patch).success).to.equal(true);
    });
    it('refuse what that version refuses: a wrong applyTo, a string match with two kinds, a misspelt retry field, a server without hosts', () => {
      const broken = structuredClone(docs);
      const first = (kind: string): Obj => broken.find((d) => d.kind === kind) as Obj;
      first('EnvoyFilter').spec.configPatches[0].applyTo = 'HTTP_FILTERS';
      first('VirtualService').spec.http[0].match[0].headers['x-mcp-pin-dst'] = { regex: '.+', exact: 'x' };
      first('VirtualService').spec.http[1].retries.retryOnCodes = '404';
      delete first('Gateway').spec.servers[0].hosts;
      const problems = validateManifests(broken, ISTIO_SCHEMAS).join('\n');
      expect(problems).to.contain('configPatches.0.applyTo').and.contain('exactly one of').and.contain('retryOnCodes').and.contain('servers.0.hosts');
    });
  });

  describe('the Envoy configuration its ingress gateway gets, with real Envoy', () => {
    runsPinningAndRecovery({
      recipe: () => docs,
      build: (recipe, env) => istioXds(recipe, patch, env),
      serviceCluster: ISTIO_NAMES.cluster(''),
    });
  });
});

/**
 * The recipe's generated config with real Envoy, the `mcp-pin` command (the
 * recipe's values file; the test's store and pin allowlist), two SDK pods
 * and the SDK client: pinned, recovered, ended; a forged pin header routes nothing.
 */
function runsPinningAndRecovery(setup: {
  recipe: () => Obj[];
  build: (docs: Obj[], env: { listenPort: number; adminPort: number; edsPath: string }) => Obj;
  serviceCluster: string;
}): void {
  let dir: string;
  let pods: Pod[] = [];
  const procs: ManagedProcess[] = [];
  let client: TestClient | undefined;
  let url = '';
  let metricsPort = 0;
  const streams = async (): Promise<number> => {
    const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text());
    return Number(/^mcp_pin_streams_total (\d+)/m.exec(text)?.[1] ?? Number.NaN);
  };
  const unregister = registerForReport(() => [...procs, ...pods.map((p) => p.proc)]);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-pin-gateway-'));
    // The gateway pod's socket folder (/run/mcp-pin, an emptyDir there) is a folder of the test's here.
    mkdirSync(join(dir, 'run'));
    const docs = manifests(stringifyAll(setup.recipe()).replaceAll('/run/mcp-pin/', `${dir}/run/`));
    pods = await startPods(2);
    const edsPath = join(dir, 'eds', 'eds.json');
    mkdirSync(join(dir, 'eds'));
    writeFileSync(edsPath, renderEds(pods.map((p) => ({ host: p.host, port: p.port }))));
    const values = join(dir, 'values.json');
    writeFileSync(values, (docs.find((d) => d.kind === 'ConfigMap') as Obj).data['values.json']);
    const pin = new ManagedProcess('mcp-pin', process.execPath, [`${root}bin/mcp-pin.js`, '--pin-allow', '127.0.0.0/8', '--metrics-listen', '127.0.0.1:0'], {
      MCP_PIN_CONFIG: values,
      MCP_PIN_STORE_URL: 'memory:',
    }).start();
    procs.push(pin);
    metricsPort = Number((await pin.waitForJson((o) => o.ready === true)).metricsPort);
    const ports = await startEnvoyOnFreePorts({
      ports: async () => ({ listen: await freePort(), admin: await freePort() }),
      configFor: (p) => {
        const env = { listenPort: p.listen, adminPort: p.admin, edsPath };
        writeFileSync(join(dir, 'envoy.yaml'), stringify(setup.build(docs, env), { aliasDuplicateObjects: false }));
        return join(dir, 'envoy.yaml');
      },
      // The pods known to it.
      up: async (p) => {
        const text = await fetch(`http://127.0.0.1:${p.admin}/clusters`).then(
          (r) => r.text(),
          () => '',
        );
        return text.includes(`${setup.serviceCluster}::${pods[0]!.host}:${pods[0]!.port}::`);
      },
      what: 'the generated Envoy up',
      procs,
    });
    url = `http://127.0.0.1:${ports.listen}/mcp`;
  });
  afterEach(async () => {
    await client?.close();
    client = undefined;
  });
  after(async () => {
    await Promise.all(procs.splice(0).map((p) => p.stop()));
    await Promise.all(pods.splice(0).map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
    unregister();
  });

  it('pins a session, and recovers it on another pod after its pod restarts: one re-initialize, the client keeps its id', async () => {
    client = await connectClient(url);
    const home = (await client.whoami()).pod;
    // One ext_proc stream per pinned call: Envoy numbers the attempts (x-envoy-attempt-count), so the
    // recovery filter skips attempt 1.
    const streamsBefore = await streams();
    for (let i = 0; i < 3; i++) expect((await client.echo(`n${i}`)).pod).to.equal(home);
    expect((await streams()) - streamsBefore, 'ext_proc streams for 3 pinned calls').to.equal(3);
    const id = client.sessionId();
    const homePod = pods.find((p) => p.name === home)!;
    await homePod.restartInPlace();
    const before = (await Promise.all(pods.map((p) => p.record()))).flatMap((r) => r.initialize).length;
    const answer = await client.echo('after restart');
    expect(answer.text).to.equal('after restart');
    expect(answer.pod, 'answered by the other pod').to.not.equal(home);
    const after = (await Promise.all(pods.map((p) => p.record()))).flatMap((r) => r.initialize).length;
    expect(after - before, 'one re-initialize').to.equal(1);
    // The pod knows the session by a new id; the client still sees its own.
    expect(client.seen.at(-1)!.sessionId).to.equal(id);
    expect((await client.echo('still pinned')).pod).to.equal(answer.pod);
  });

  it("ends a session with DELETE on its pod, and a client's own pin header routes nothing", async () => {
    // The SDK reads these headers on every request: the forged pin is added once the session is on its pod.
    const headers: Record<string, string> = {};
    client = await connectClient(url, { headers });
    const home = (await client.whoami()).pod;
    const other = pods.find((p) => p.name !== home)!;
    const initializes = async (): Promise<number> => (await Promise.all(pods.map((p) => p.record()))).flatMap((r) => r.initialize).length;
    const before = await initializes();
    headers['x-mcp-pin-dst'] = `${other.host}:${other.port}`;
    // Dropped before routing: the session's own pod answers, nothing is recovered anywhere.
    for (let i = 0; i < 3; i++) expect((await client.whoami()).pod).to.equal(home);
    expect(await initializes()).to.equal(before);
    const id = client.sessionId();
    await client.transport.terminateSession();
    const homePod = pods.find((p) => p.name === home)!;
    expect((await homePod.record()).deleted).to.include(id);
  });
}

const stringifyAll = (docs: Obj[]): string => docs.map((d) => `---\n${stringify(d, { aliasDuplicateObjects: false, lineWidth: 0 })}`).join('');
