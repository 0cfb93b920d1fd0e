import { expect } from 'chai';
import { PinAllowlist } from '../../src/extproc/pin-allowlist.js';

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
  it('allows anything with *', () => {
    expect(new PinAllowlist('*').allows('1.2.3.4:5')).to.equal(true);
  });
  it('refuses specs it cannot read', () => {
    for (const bad of ['', '10.0.0.0', '10.0.0.0/33', '10.0.0.0/8:0', '10.0.0.0/8:9-3', 'host/8', '::1/129']) {
      expect(() => new PinAllowlist(bad), bad).to.throw();
    }
  });
});
