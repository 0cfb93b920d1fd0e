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
});
