import { expect } from 'chai';
import { joinHostPort, splitHostPort } from '../../src/host-port.js';
import { parsePodAddress } from '../../src/pod-address.js';
import { parseRedisUrl } from '../../src/sessions/redis-url.js';

describe('host:port (src/host-port.ts)', () => {
  it('splits IPv4, names and bracketed IPv6 at the last colon; the brackets are not part of the host', () => {
    expect(splitHostPort('10.0.0.1:8080')).to.deep.equal({ host: '10.0.0.1', port: 8080 });
    expect(splitHostPort('redis.mcp.svc:6379')).to.deep.equal({ host: 'redis.mcp.svc', port: 6379 });
    expect(splitHostPort('[fd00::1]:443')).to.deep.equal({ host: 'fd00::1', port: 443 });
    expect(splitHostPort('0.0.0.0:0')).to.deep.equal({ host: '0.0.0.0', port: 0 });
  });

  it('refuses what has no host or no digits for a port', () => {
    for (const bad of ['', ':80', 'host', 'host:', 'host:http', 'host:123456', '[]:80', 'host:-1']) expect(splitHostPort(bad), bad).to.equal(undefined);
  });

  it('joins with brackets only for IPv6, and a join splits back to the same parts', () => {
    expect(joinHostPort('10.0.0.1', 80)).to.equal('10.0.0.1:80');
    expect(joinHostPort('::1', 80)).to.equal('[::1]:80');
    for (const [host, port] of [
      ['fd00::2', 9000],
      ['pod-1.mcp', 3000],
      ['127.0.0.2', 1],
    ] as const)
      expect(splitHostPort(joinHostPort(host, port))).to.deep.equal({ host, port });
  });

  it('is what pod addresses and Redis URLs are read with (ports in range, a bare IPv6 host gets the default port)', () => {
    expect(parsePodAddress('[fd00::1]:8080')).to.equal('[fd00::1]:8080');
    expect(parsePodAddress('10.0.0.1:0')).to.equal(null);
    expect(parsePodAddress('pod.local:8080'), 'a name is no pod address').to.equal(null);
    expect(parseRedisUrl('redis-sentinel://[fd00::5],10.0.0.6:26380/mymaster')).to.deep.include({
      sentinels: [
        { host: 'fd00::5', port: 26379 },
        { host: '10.0.0.6', port: 26380 },
      ],
    });
    expect(() => parseRedisUrl('redis-cluster://a:,b:7000')).to.throw('bad host:port "a:"');
    expect(() => parseRedisUrl('redis-cluster://a:x,b:7000')).to.throw('bad host:port "a:x"');
  });
});
