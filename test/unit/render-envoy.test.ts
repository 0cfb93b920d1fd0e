/**
 * The render command for people who run their own Envoy: every template value
 * listed with its default and meaning, unknown or bad ones refused all at once,
 * and what it renders is accepted by real Envoy 1.40.
 */
import { expect } from 'chai';
import { spawnSync, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { parse } from 'yaml';
import { ENVOY_DEFAULTS } from '../../envoy/params.js';
import { TEMPLATE_VALUES, TemplateValuesError, paramsFromValues } from '../../envoy/values.js';
import { findEnvoy } from '../helpers/envoy.js';

const root = new URL('../../', import.meta.url);
const render = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'scripts/render-envoy.ts', ...args], { cwd: root, encoding: 'utf8' });

describe('npm run render:envoy (your own Envoy)', () => {
  it("documents every value the renderer takes, with the renderer's defaults", () => {
    const documented = Object.keys(TEMPLATE_VALUES).sort();
    const settable = [...Object.keys(ENVOY_DEFAULTS), 'extProc', 'extProcDiscovery', 'service'].sort();
    expect(documented).to.deep.equal(settable);
    const list = render('--list');
    expect(list.status).to.equal(0);
    for (const [name, spec] of Object.entries(TEMPLATE_VALUES)) expect(list.stdout).to.contain(`${name} = ${spec.default ?? '(required)'}\n`);
    expect(list.stdout).to.match(/sessionSearchRetries = 63\n.*only bounds it/);
    // The values table of docs/own-envoy.md is this list.
    const readme = readFileSync(new URL('docs/own-envoy.md', root), 'utf8');
    for (const [name, spec] of Object.entries(TEMPLATE_VALUES)) {
      expect(readme).to.contain(`| \`${name}\` | ${spec.default === undefined ? 'required' : `\`${spec.default}\``} | ${spec.meaning} |`);
    }
  });

  it('refuses unknown and bad values, naming every problem at once', () => {
    let err: unknown;
    try {
      paramsFromValues({ bogus: 1, listenPort: 'x', internalClients: '10.0.0.0', extProc: '127.0.0.1:50051', service: 'eds:/x/eds.json' });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(TemplateValuesError);
    expect((err as TemplateValuesError).problems).to.have.length(3);
    const r = render('--set', 'bogus=1', '--set', 'listenPort=0');
    expect(r.status).to.equal(2);
    expect(r.stderr)
      .to.contain('unknown template value "bogus"')
      .and.contain('listenPort')
      .and.contain('extProc is required')
      .and.contain('service is required');
    expect(r.stdout).to.equal('');
  });

  it('takes envoyVersion 1.37 to 1.40 (any patch), and refuses older (and unknown newer) Envoys with what was measured on them', () => {
    const base = { extProc: '127.0.0.1:50051', service: 'eds:/tmp/eds.json' };
    for (const [given, kept] of [
      ['1.40.0', '1.40'],
      ['1.39.3', '1.39'],
      ['1.38', '1.38'],
      ['1.37.0', '1.37'],
    ] as const)
      expect(paramsFromValues({ ...base, envoyVersion: given }).envoyVersion, given).to.equal(kept);
    for (const other of ['1.36.2', '1.35', '1.41', '2.0'])
      expect(() => paramsFromValues({ ...base, envoyVersion: other }), other).to.throw(
        TemplateValuesError,
        /Envoy 1\.37 to 1\.40 are supported: Envoy 1\.36's MCP filter cannot clear the route cache/,
      );
  });

  it('renders a values file plus --set overrides into a config real Envoy accepts', () => {
    const dir = mkdtempSync(`${tmpdir()}/render-envoy-`);
    writeFileSync(
      `${dir}/values.json`,
      JSON.stringify({ extProc: ['10.0.0.5:50051', '10.0.0.6:50051'], service: `eds:${dir}/eds.json`, sessionSearchRetries: 7 }),
    );
    const eds = render('--eds', '10.0.1.1:8080,10.0.1.2:8080', '--out', `${dir}/eds.json`);
    expect(eds.status, eds.stderr).to.equal(0);
    expect(JSON.parse(readFileSync(`${dir}/eds.json`, 'utf8')).resources[0].endpoints[0].lb_endpoints).to.have.length(2);
    const r = render('--values', `${dir}/values.json`, '--set', 'lostSessionStatuses=404,400', '--set', 'listenPort=8080', '--out', `${dir}/envoy.yaml`);
    expect(r.status, r.stderr).to.equal(0);
    const text = readFileSync(`${dir}/envoy.yaml`, 'utf8');
    const cfg = parse(text) as { static_resources: { listeners: { address: { socket_address: { port_value: number } } }[] } };
    expect(cfg.static_resources.listeners[0]!.address.socket_address.port_value).to.equal(8080);
    expect(text).to.contain('num_retries: 7').and.contain('retriable_status_codes: [404, 400]').and.contain('10.0.0.6');
    const out = execFileSync(findEnvoy(), ['--mode', 'validate', '-c', `${dir}/envoy.yaml`, '--disable-hot-restart'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(out).to.contain('OK');
    // Each write says what it wrote.
    expect(eds.stderr).to.equal(`render:envoy: wrote the EDS file ${dir}/eds.json (${readFileSync(`${dir}/eds.json`).length} bytes)\n`);
    expect(r.stderr).to.equal(`render:envoy: wrote the Envoy config ${dir}/envoy.yaml (${text.length} bytes)\n`);
  });

  it('answers --help, and refuses a missing --out folder and a relative EDS path in one line each (exit 2)', () => {
    const help = render('--help');
    expect(help.status).to.equal(0);
    expect(help.stdout).to.contain('usage: npm run render:envoy').and.contain('--values file.json').and.contain('--eds host:port');
    const missing = render('--eds', '10.0.1.1:8080', '--out', '/nonexistent-folder/eds.json');
    expect(missing.status).to.equal(2);
    expect(missing.stderr).to.equal(
      'render:envoy: --out /nonexistent-folder/eds.json: folder /nonexistent-folder does not exist (see npm run render:envoy -- --help)\n',
    );
    const relative = render('--set', 'extProc=10.0.0.5:50051', '--set', 'service=eds:eds/eds.json');
    expect(relative.status).to.equal(2);
    expect(relative.stderr.trim().split('\n')).to.deep.equal([
      'render:envoy: 1 problem(s):',
      '  - service: "eds:eds/eds.json": the EDS path must be absolute (Envoy reads it from its own working directory, not yours), e.g. eds:/etc/envoy/eds/eds.json',
    ]);
  });
});

describe('the mcp-pin command (bin/mcp-pin.js)', () => {
  // A checkout as `npm ci` leaves it: no dist/ (this one may have a build of any age).
  const fresh = mkdtempSync(`${tmpdir()}/mcp-pin-fresh-`);
  mkdirSync(`${fresh}/bin`);
  copyFileSync(new URL('bin/mcp-pin.js', root), `${fresh}/bin/mcp-pin.js`);
  copyFileSync(new URL('package.json', root), `${fresh}/package.json`);
  for (const d of ['src', 'protos', 'node_modules']) symlinkSync(fileURLToPath(new URL(d, root)), `${fresh}/${d}`);
  after(() => rmSync(fresh, { recursive: true, force: true }));
  const cli = (...args: string[]) => spawnSync(process.execPath, [`${fresh}/bin/mcp-pin.js`, ...args], { cwd: fresh, encoding: 'utf8' });

  it('answers --version and --help without a build (npm ci alone), and exits 2 with the problems on a bad flag', () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string; bin: Record<string, string> };
    expect(pkg.bin['mcp-pin']).to.equal('bin/mcp-pin.js');
    const v = cli('--version');
    expect(v.status, v.stderr).to.equal(0);
    expect(v.stdout).to.equal(`mcp-pin ${pkg.version}\n`);
    const h = cli('--help');
    expect(h.status).to.equal(0);
    expect(h.stdout).to.contain('mcp-pin --help | --version').and.contain('--store-url');
    const bad = cli('--bogus', 'x');
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.contain("unknown option '--bogus'");
  });

  it('renders Envoy as render:envoy does (mcp-pin render-envoy: what the image runs), and says its problems the same way', () => {
    const args = ['--set', 'service=dns:mcp.example:8080', '--set', 'extProc=unix:/run/mcp-pin/mcp-pin.sock', '--set', 'listenPort=8081'];
    const viaCommand = cli('render-envoy', ...args);
    expect(viaCommand.status, viaCommand.stderr).to.equal(0);
    expect(viaCommand.stdout)
      .to.equal(render(...args).stdout)
      .and.contain('port_value: 8081');
    const bad = cli('render-envoy', ...args, '--set', 'listenPort=x');
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.contain('render:envoy: 1 problem(s):');
    expect(cli('render-envoy', '--help').stdout).to.contain('usage: mcp-pin render-envoy [--list]');
    expect(cli('--help').stdout).to.contain('mcp-pin render-envoy --values file.json');
  });
});
