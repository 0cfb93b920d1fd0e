import { expect } from 'chai';
import { ConfigValueError } from '../../src/errors.js';
import { parseRedisUrl } from '../../src/sessions/redis-url.js';

describe('parseRedisUrl', () => {
  it('passes single-server URLs through to ioredis', () => {
    expect(parseRedisUrl('redis://u:p@h:6380/2')).to.deep.equal({ kind: 'single', url: 'redis://u:p@h:6380/2' });
    expect(parseRedisUrl('rediss://h:6380')).to.deep.equal({ kind: 'single', url: 'rediss://h:6380' });
  });
  it('reads sentinels, master name and credentials', () => {
    expect(parseRedisUrl('redis-sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2/mymaster')).to.deep.equal({
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26379 },
      ],
      name: 'mymaster',
      password: 's@cret',
    });
  });
  it('reads cluster seed nodes', () => {
    expect(parseRedisUrl('redis-cluster://[::1]:7000,10.0.0.2:7001')).to.deep.equal({
      kind: 'cluster',
      nodes: [
        { host: '::1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
      ],
    });
  });
  it('refuses what it cannot read, without echoing credentials', () => {
    expect(() => parseRedisUrl('redis-cluster://'))
      .to.throw(ConfigValueError)
      .with.property('code', 'MCP_PIN_BAD_CONFIG_VALUE');
    expect(() => parseRedisUrl('redis-sentinel://h:1')).to.throw(/master name/);
    expect(() => parseRedisUrl('http://u:secret@h')).to.throw(/not a Redis URL: http:\/\/\*\*\*@h/);
  });
  it('takes ports 1 to 65535 and the default port where none is given, a bare [v6] included; refuses a host without a name or a port out of range', () => {
    expect(parseRedisUrl('redis-cluster://a:1,b:65535,[fd00::1],c')).to.deep.equal({
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 1 },
        { host: 'b', port: 65535 },
        { host: 'fd00::1', port: 6379 },
        { host: 'c', port: 6379 },
      ],
    });
    expect(parseRedisUrl('redis-sentinel://[fd00::2]/m')).to.deep.include({ sentinels: [{ host: 'fd00::2', port: 26379 }] });
    for (const bad of ['a:0', 'a:65536', 'a:x', ':7000', '[]:7000', 'a:1,,b:2', 'a:-1', '[y]x', 'x[y]', '[::1]x', '[::1]x:7000', 'a]:1']) {
      expect(() => parseRedisUrl(`redis-cluster://${bad}`), bad).to.throw(ConfigValueError, /bad host:port/);
    }
  });
  it('reads a user name, and only a whole URL of a known scheme', () => {
    expect(parseRedisUrl('redis-cluster://ops%20team:pw@h:1')).to.deep.equal({
      kind: 'cluster',
      nodes: [{ host: 'h', port: 1 }],
      username: 'ops team',
      password: 'pw',
    });
    expect(parseRedisUrl('redis-cluster://ops@h:1')).to.deep.equal({ kind: 'cluster', nodes: [{ host: 'h', port: 1 }], username: 'ops' });
    for (const bad of ['xredis://h:1', 'redis://h:1 trailing?x#y/', 'redis-cluster://h:1/x?y', ' redis://h:1']) {
      expect(() => parseRedisUrl(bad), bad).to.throw(ConfigValueError, /not a Redis URL/);
    }
  });
});
