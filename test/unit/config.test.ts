import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { paramsFromValues } from '../../envoy/values.js';
import { helpText, loadConfig, OPTIONS } from '../../src/config.js';
import { InvalidConfigError } from '../../src/errors.js';

function problems(argv: string[], env: Record<string, string> = {}): string[] {
  try {
    loadConfig(argv, env);
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidConfigError);
    expect((err as InvalidConfigError).code).to.equal('MCP_PIN_INVALID_CONFIG');
    return (err as InvalidConfigError).problems;
  }
  return [];
}

describe('config', () => {
  it('has a default for everything', () => {
    const cfg = loadConfig([], {});
    expect(cfg).to.include({
      listen: '127.0.0.1:50051',
      networkIsClosed: false,
      storeUrl: 'memory:',
      pinHeader: 'x-mcp-pin-dst',
      sessionTtlMs: 7_200_000,
      storeTimeoutMs: 250,
    });
    expect(cfg.lostSessionStatuses).to.deep.equal([404, 400]);
  });

  it('takes environment, and flags over environment', () => {
    const cfg = loadConfig(['--store-url', 'redis://flag:6379'], {
      MCP_PIN_STORE_URL: 'redis://env:6379',
      MCP_PIN_LOST_SESSION_STATUSES: '404, 400',
      MCP_PIN_SESSION_TTL_MS: '60000',
    });
    expect(cfg.storeUrl).to.equal('redis://flag:6379');
    expect(cfg.lostSessionStatuses).to.deep.equal([404, 400]);
    expect(cfg.sessionTtlMs).to.equal(60_000);
  });

  it('reports every bad value at once, naming where it came from', () => {
    const p = problems(['--listen', 'nope', '--store-url', 'mysql://x'], {
      MCP_PIN_SESSION_TTL_MS: '5',
      MCP_PIN_LOST_SESSION_STATUSES: '200',
      MCP_PIN_PIN_HEADER: 'X-Bad Header',
      MCP_PIN_LOG_LEVEL: 'loud',
      MCP_PIN_RECOVERY_URL: 'not a url',
    });
    expect(p).to.have.length(7);
    expect(p.join('\n')).to.match(/--listen="nope": expected unix:\/absolute\/path or host:port/);
    expect(p.join('\n')).to.match(/--store-url="mysql:\/\/x": expected memory:, redis:\/\//);
    expect(p.join('\n')).to.match(/MCP_PIN_SESSION_TTL_MS="5"/);
    expect(p.join('\n')).to.match(/MCP_PIN_LOST_SESSION_STATUSES="200"/);
    expect(p.join('\n')).to.match(/MCP_PIN_PIN_HEADER=.*lowercase HTTP header name/);
    expect(p.join('\n')).to.match(/MCP_PIN_LOG_LEVEL="loud"/);
  });

  it('parses Redis, Sentinel and Cluster URLs, and explains a broken one', () => {
    expect(loadConfig(['--store-url', 'redis-cluster://10.0.0.1:7000,10.0.0.2:7000'], {}).storeUrl).to.equal('redis-cluster://10.0.0.1:7000,10.0.0.2:7000');
    expect(problems(['--store-url', 'redis-sentinel://10.0.0.1:26379']).join()).to.match(/needs the master name/);
    expect(problems(['--store-url', 'redis-cluster://a:99999']).join()).to.match(/bad host:port "a:99999"/);
  });

  it('refuses unknown flags and out-of-range ports', () => {
    expect(problems(['--colour', 'blue']).join()).to.match(/unknown option '--colour'/);
    // Every problem at once: an unknown flag does not hide a bad value.
    const both = problems(['--bogus', '--listen', 'x']);
    expect(both).to.have.length(2);
    expect(both[0]).to.match(/unknown option '--bogus'/);
    expect(both[1]).to.match(/--listen="x": expected unix:\/absolute\/path or host:port/);
    expect(problems(['--listen'])).to.deep.equal(["option '--listen' needs a value"]);
    expect(problems(['--listen', '0.0.0.0:70000']).join()).to.match(/--listen="0.0.0.0:70000": expected unix:\/absolute\/path or host:port/);
  });

  it('documents every option with its env name and default in --help', () => {
    const text = helpText();
    for (const o of Object.values(OPTIONS)) {
      expect(text).to.contain(`--${o.flag}`);
      expect(text).to.contain(o.env);
      expect(text).to.contain(`default: ${o.default}`);
    }
  });
});

describe('the configuration table (docs/configuration.md)', () => {
  it('lists every option with its env name and default', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    for (const o of Object.values(OPTIONS)) {
      expect(readme, o.flag).to.contain(`| \`--${o.flag}\` | \`${o.env}\` | \`${o.default}\` | ${o.doc} |`);
    }
    // And nothing else: no row for an option that is gone.
    const rows = readme.split('\n').filter((l) => l.startsWith('| `--'));
    expect(rows.map((l) => /^\| `--([a-z-]+)`/.exec(l)![1]).sort()).to.deep.equal(
      Object.values(OPTIONS)
        .map((o) => o.flag)
        .sort(),
    );
  });
  it('never shows a store password in a problem it reports', () => {
    let err: unknown;
    try {
      loadConfig([], { MCP_PIN_STORE_URL: 'redis-sentinel://:s3cret-pass@h1:1,h2:x/master', MCP_PIN_LISTEN: 'nope' });
    } catch (e) {
      err = e;
    }
    const text = (err as Error).message;
    expect(text).to.contain('MCP_PIN_STORE_URL');
    expect(text).to.contain('redis-sentinel://:***@h1:1,h2:x/master');
    expect(text).to.not.contain('s3cret-pass');
  });
});

describe('config: one values file for Envoy and mcp-pin (--config)', () => {
  let dir: string;
  const write = (values: Record<string, unknown>): string => {
    const path = join(dir, `values-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(path, JSON.stringify(values));
    return path;
  };
  const base = { extProc: 'unix:/run/mcp-pin/mcp-pin.sock', service: 'eds:/etc/envoy/eds/eds.json' };
  before(() => (dir = mkdtempSync(join(tmpdir(), 'mcp-pin-config-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('takes every setting both sides use from the template values, and its own from "mcpPin"', () => {
    const path = write({
      ...base,
      pinHeader: 'x-route-to',
      upstreamHeader: 'x-reached',
      lostSessionStatuses: [404],
      internalAddress: '0.0.0.0',
      internalPort: 11001,
      mcpPin: { storeUrl: 'redis://redis:6379', keyPrefix: 'team-a:', pinCacheMs: 0 },
    });
    const cfg = loadConfig(['--config', path], {});
    expect(cfg).to.include({
      pinHeader: 'x-route-to',
      upstreamHeader: 'x-reached',
      recoveryUrl: 'http://127.0.0.1:11001',
      listen: 'unix:/run/mcp-pin/mcp-pin.sock',
      storeUrl: 'redis://redis:6379',
      keyPrefix: 'team-a:',
      pinCacheMs: 0,
    });
    expect(cfg.lostSessionStatuses).to.deep.equal([404]);
    // The same file renders Envoy ("mcpPin" is skipped there).
    expect(paramsFromValues(JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>).pinHeader).to.equal('x-route-to');
  });

  it('lets flags and the environment override (mcp-pin-only settings) and repeat (shared ones)', () => {
    const path = write({ ...base, mcpPin: { keyPrefix: 'from-file:' } });
    const cfg = loadConfig(['--config', path, '--key-prefix', 'from-flag:', '--pin-header', 'x-mcp-pin-dst'], { MCP_PIN_STORE_URL: 'redis://env:6379' });
    expect(cfg).to.include({ keyPrefix: 'from-flag:', storeUrl: 'redis://env:6379', pinHeader: 'x-mcp-pin-dst' });
    expect(loadConfig([], { MCP_PIN_CONFIG: path }).keyPrefix).to.equal('from-file:');
  });

  it('refuses every disagreement with the Envoy the file renders, one line each', () => {
    const path = write({ ...base, healthCheckIntervalMs: 2000, maxMessageTimeoutMs: 5000 });
    const found = problems(['--config', path, '--pin-header', 'x-other', '--listen', 'unix:/run/other.sock', '--recovery-url', 'http://envoy:9999'], {
      MCP_PIN_LOST_SESSION_STATUSES: '404',
      MCP_PIN_UPSTREAM_HEADER: 'x-up',
    });
    expect(found).to.have.length(7);
    expect(found.join('\n')).to.contain(`--pin-header=x-other disagrees with pinHeader x-mcp-pin-dst in ${path}`);
    expect(found.join('\n')).to.contain(`--upstream-header=x-up disagrees with upstreamHeader x-mcp-pin-upstream`);
    expect(found.join('\n')).to.contain('--lost-session-statuses=404 disagrees with lostSessionStatuses 400,404');
    expect(found.join('\n')).to.contain('--recovery-url port=9999 disagrees with internalPort 10001');
    expect(found.join('\n')).to.contain('--listen=unix:/run/other.sock: Envoy opens ext_proc streams on unix:/run/mcp-pin/mcp-pin.sock');
    expect(found.join('\n')).to.contain('--recovery-timeout-ms=10000: Envoy waits at most maxMessageTimeoutMs 5000');
    expect(found.join('\n')).to.contain('--drain-delay-ms=2000: Envoy needs two failed health checks (healthCheckIntervalMs 2000');
    // "mcpPin" can disagree too.
    const own = write({ ...base, mcpPin: { pinHeader: 'x-own' } });
    expect(problems(['--config', own])).to.deep.equal([
      `--pin-header=x-own disagrees with pinHeader x-mcp-pin-dst in ${own} (Envoy is rendered from it): change one, or leave --pin-header unset`,
    ]);
  });

  it('refuses TLS on one side only', () => {
    const tcp = { ...base, extProc: '10.0.0.5:50051,10.0.0.6:50051' };
    expect(problems(['--config', write({ ...tcp, extProcTls: '/etc/envoy/c.pem,/etc/envoy/k.pem,/etc/envoy/ca.pem' })])).to.have.length(1);
    expect(problems(['--config', write({ ...tcp, extProcTls: '/etc/envoy/c.pem,/etc/envoy/k.pem,/etc/envoy/ca.pem' })])[0]).to.match(
      /extProcTls in .*: Envoy talks TLS to mcp-pin; give mcp-pin --tls-cert-file/,
    );
    // TLS is for TCP: a Unix socket is guarded by its file mode.
    expect(problems(['--config', write({ ...base, extProcTls: '/etc/envoy/c.pem,/etc/envoy/k.pem,/etc/envoy/ca.pem' })]).join()).to.contain(
      'extProcTls: TLS is for host:port replicas',
    );
  });

  it("closes the control plane: Unix sockets from the values (one per replica), loopback by default, a network address only with mutual TLS or the operator's word", () => {
    // One socket: listen there; the internal listener's socket is the recovery URL.
    const one = loadConfig(['--config', write({ ...base, internalAddress: 'unix:/run/mcp-pin/envoy-internal.sock' })], {});
    expect(one).to.include({ listen: 'unix:/run/mcp-pin/mcp-pin.sock', recoveryUrl: 'unix:/run/mcp-pin/envoy-internal.sock' });
    // Several (compose): each replica names its own, and only one of them.
    const two = write({ ...base, extProc: 'unix:/run/mcp-pin/a.sock,unix:/run/mcp-pin/b.sock' });
    expect(loadConfig(['--config', two, '--listen', 'unix:/run/mcp-pin/b.sock'], {}).listen).to.equal('unix:/run/mcp-pin/b.sock');
    expect(problems(['--config', two, '--listen', 'unix:/run/mcp-pin/c.sock']).join()).to.contain(
      'Envoy opens ext_proc streams on unix:/run/mcp-pin/a.sock or unix:/run/mcp-pin/b.sock',
    );
    // Replicas on loopback: derived on loopback, served as is.
    expect(loadConfig(['--config', write({ ...base, extProc: '127.0.0.1:7001' })], {}).listen).to.equal('127.0.0.1:7001');
    // On a network: refused, unless the operator says the network is closed (flag, environment or "mcpPin").
    const tcp = write({ ...base, extProc: '10.0.0.5:50051' });
    expect(problems(['--config', tcp]).join()).to.contain("--listen=0.0.0.0:50051: the gRPC port is mcp-pin's control plane");
    expect(loadConfig(['--config', tcp, '--network-is-closed', 'true'], {}).networkIsClosed).to.equal(true);
    expect(loadConfig(['--config', write({ ...base, extProc: '10.0.0.5:50051', mcpPin: { networkIsClosed: true } })], {}).listen).to.equal('0.0.0.0:50051');
    expect(problems(['--network-is-closed', 'yes']).join()).to.contain('expected true or false');
    expect(problems(['--listen', 'unix:relative.sock']).join()).to.contain('expected unix:/absolute/path or host:port');
    expect(problems(['--recovery-url', 'unix:relative']).join()).to.contain('expected http://host:port or unix:/absolute/path');
    expect(loadConfig(['--listen', '[::1]:50051'], {}).listen).to.equal('[::1]:50051');
    expect(loadConfig(['--listen', 'localhost:50051'], {}).listen).to.equal('localhost:50051');
  });

  it('reports a missing file, bad JSON, bad template values and unknown mcp-pin settings, all at once', () => {
    expect(problems(['--config', join(dir, 'missing.json')])).to.deep.equal([`--config ${join(dir, 'missing.json')}: no such file`]);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"extProc": ');
    expect(problems(['--config', bad])[0]).to.match(/^--config .*bad\.json: .*JSON/);
    const found = problems(['--config', write({ service: 'eds:relative.json', listenPort: 'x', mcpPin: { storUrl: 'redis://x:1' } })]);
    expect(found.join('\n')).to.contain('unknown mcp-pin setting mcpPin.storUrl');
    expect(found.join('\n')).to.contain('extProc is required');
    expect(found.join('\n')).to.contain('the EDS path must be absolute');
    expect(found.join('\n')).to.contain('listenPort');
  });
});
