import { expect } from 'chai';
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
    expect(cfg).to.include({ listen: '0.0.0.0:50051', storeUrl: 'memory:', pinHeader: 'x-mcp-pin-dst', sessionTtlMs: 7_200_000, storeTimeoutMs: 250 });
    expect(cfg.lostSessionStatuses).to.deep.equal([404, 400]);
  });

  it('takes environment, and flags over environment', () => {
    const cfg = loadConfig(['--store-url', 'redis://flag:6379'], { MCP_PIN_STORE_URL: 'redis://env:6379', MCP_PIN_LOST_SESSION_STATUSES: '404, 400', MCP_PIN_SESSION_TTL_MS: '60000' });
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
    expect(p.join('\n')).to.match(/--listen="nope": expected host:port/);
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
    expect(both[1]).to.match(/--listen="x": expected host:port/);
    expect(problems(['--listen'])).to.deep.equal(["option '--listen' needs a value"]);
    expect(problems(['--listen', '0.0.0.0:70000']).join()).to.match(/port must be 0-65535/);
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
    expect(rows.map((l) => /^\| `--([a-z-]+)`/.exec(l)![1]).sort()).to.deep.equal(Object.values(OPTIONS).map((o) => o.flag).sort());
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
