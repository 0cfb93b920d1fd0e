import { ConfigValueError } from '../../src/errors.js';
import { expect } from 'chai';
import { PinAllowlist } from '../../src/pin-allowlist.js';

describe('PinAllowlist', () => {
  it('allows pods inside the networks and port ranges, nothing else', () => {
    const a = new PinAllowlist('10.0.0.0/8:8080, 127.0.0.2/31:1024-65535, fd00::/8');
    expect(a.allows('10.1.2.3:8080')).to.equal(true);
    expect(a.allows('10.1.2.3:8081')).to.equal(false);
    expect(a.allows('127.0.0.3:40000')).to.equal(true);
    expect(a.allows('127.0.0.1:6379'), 'Redis on loopback').to.equal(false);
    expect(a.allows('127.0.0.2:22'), 'low port').to.equal(false);
    expect(a.allows('192.168.1.1:8080')).to.equal(false);
    expect(a.allows('[fd00::1]:443')).to.equal(true);
    expect(a.allows('[::1]:443')).to.equal(false);
  });
  it('allows the addresses a dns: name resolves to, follows changes, and keeps the last answer on failure', async () => {
    let answer: string[] | Error = ['10.1.0.7', '10.1.0.8'];
    const errors: string[] = [];
    const a = new PinAllowlist(
      'dns:mcp-server-pods.mcp.svc.cluster.local:8080, 192.168.0.0/16',
      async (name) => {
        expect(name).to.equal('mcp-server-pods.mcp.svc.cluster.local');
        if (answer instanceof Error) throw answer;
        return answer;
      },
      (name) => errors.push(name),
    );
    expect(a.allows('10.1.0.7:8080'), 'nothing before the first lookup').to.equal(false);
    await a.start();
    expect(a.allows('10.1.0.7:8080')).to.equal(true);
    expect(a.allows('10.1.0.8:8080')).to.equal(true);
    expect(a.allows('10.1.0.7:9090'), 'other port').to.equal(false);
    expect(a.allows('10.1.0.9:8080')).to.equal(false);
    expect(a.allows('192.168.3.4:1'), 'CIDR entries still apply').to.equal(true);
    answer = ['10.1.0.9'];
    await a.refresh();
    expect(a.allows('10.1.0.7:8080'), 'pod gone').to.equal(false);
    expect(a.allows('10.1.0.9:8080'), 'pod added').to.equal(true);
    answer = new Error('SERVFAIL');
    await a.refresh();
    expect(a.allows('10.1.0.9:8080'), 'last answer kept').to.equal(true);
    expect(errors).to.deep.equal(['mcp-server-pods.mcp.svc.cluster.local']);
    a.stop();
  });

  it('resolves again at once for a pod missing from the last answer (a pod scaled up since), at most once a second', async () => {
    let answer = ['10.1.0.7'];
    let lookups = 0;
    let now = 0;
    const a = new PinAllowlist(
      'dns:pods:8080',
      async () => {
        lookups++;
        return answer;
      },
      () => {},
      () => now,
    );
    await a.start();
    a.stop();
    expect(lookups).to.equal(1);
    answer = ['10.1.0.7', '10.1.0.8'];
    expect(a.allows('10.1.0.8:8080'), 'not in the last answer').to.equal(false);
    // Concurrent misses share one lookup, and the new pod is allowed.
    expect(await Promise.all([a.allowsFresh('10.1.0.8:8080'), a.allowsFresh('10.1.0.8:8080')])).to.deep.equal([true, true]);
    expect(lookups).to.equal(2);
    // A pod that is in no answer: no more lookups within that second, then one.
    expect(await a.allowsFresh('10.9.9.9:8080')).to.equal(false);
    expect(lookups).to.equal(2);
    now += 1000;
    expect(await a.allowsFresh('10.9.9.9:8080')).to.equal(false);
    expect(await a.allowsFresh('10.9.9.9:8080')).to.equal(false);
    expect(lookups).to.equal(3);
    // Known pods never cost a lookup.
    expect(await a.allowsFresh('10.1.0.7:8080')).to.equal(true);
    expect(lookups).to.equal(3);
  });

  it('allows anything with *', () => {
    expect(new PinAllowlist('*').allows('1.2.3.4:5')).to.equal(true);
  });
  it('refuses specs it cannot read', () => {
    for (const bad of ['', '10.0.0.0', '10.0.0.0/33', '10.0.0.0/8:0', '10.0.0.0/8:9-3', 'host/8', '::1/129', 'dns:', 'dns:a b', 'dns:host:70000']) {
      expect(() => new PinAllowlist(bad), bad)
        .to.throw(ConfigValueError)
        .with.property('code', 'MCP_PIN_BAD_CONFIG_VALUE');
    }
  });
});
