/**
 * What a stored record must look like to be used (src/sessions/stored-record.ts):
 * the store is shared and may hold records mcp-pin did not write.
 */
import { expect } from 'chai';
import { checkInitPath, checkPin, MAX_STORED_SESSION_ID_LENGTH } from '../../src/sessions/stored-record.js';
import { MAX_INIT_PATH_LENGTH } from '../../src/sessions/store.js';

describe('stored records: what may route a request', () => {
  it('takes a pin with an ip:port pod, a visible-ASCII backend id and a positive generation', () => {
    expect(checkPin('10.0.0.1:8080', 'abc-123', '7')).to.deep.equal({ ok: true, value: { pod: '10.0.0.1:8080', backendSessionId: 'abc-123', generation: 7 } });
    expect(checkPin('[fd00::1]:80', 'x', '1')).to.deep.include({ ok: true });
    expect(checkPin('10.0.0.1:8080', 'x'.repeat(MAX_STORED_SESSION_ID_LENGTH), '999999999999999')).to.deep.include({ ok: true });
  });

  it('names every missing field, and only those', () => {
    expect(checkPin(null, null, null)).to.deep.equal({ ok: false, reason: 'missing field pod bsid gen' });
    expect(checkPin(null, 'b', '1')).to.deep.equal({ ok: false, reason: 'missing field pod' });
    expect(checkPin('10.0.0.1:1', null, '1')).to.deep.equal({ ok: false, reason: 'missing field bsid' });
    expect(checkPin('10.0.0.1:1', 'b', null)).to.deep.equal({ ok: false, reason: 'missing field gen' });
  });

  it('refuses a pod that is not exactly ip:port', () => {
    for (const pod of ['pod-1:8080', '10.0.0.1', '10.0.0.1:8080 ', ' 10.0.0.1:8080', '10.0.0.1:99999', '', '010.0.0.1:80'])
      expect(checkPin(pod, 'b', '1'), pod).to.deep.equal({ ok: false, reason: 'pod is not ip:port' });
  });

  it('refuses a backend id that is empty, too long or not visible ASCII (it becomes a header)', () => {
    for (const bsid of ['', 'x'.repeat(MAX_STORED_SESSION_ID_LENGTH + 1), 'a b', 'a\r\nx-evil: 1', 'é'])
      expect(checkPin('10.0.0.1:1', bsid, '1'), JSON.stringify(bsid)).to.deep.equal({
        ok: false,
        reason: 'backend session id is empty, too long or not visible ASCII',
      });
  });

  it('refuses a generation that is not a positive integer of at most 15 digits', () => {
    for (const gen of ['0', '-1', '01', '1.5', '', ' 1', '1 ', '1e3', '1234567890123456', 'x'])
      expect(checkPin('10.0.0.1:1', 'b', gen), gen).to.deep.equal({ ok: false, reason: 'generation is not a positive integer' });
  });

  it('takes an empty initialize path as none kept, and a request path as it is', () => {
    expect(checkInitPath('')).to.deep.equal({ ok: true, value: null });
    expect(checkInitPath('/mcp')).to.deep.equal({ ok: true, value: '/mcp' });
    expect(checkInitPath('/')).to.deep.equal({ ok: true, value: '/' });
    expect(checkInitPath(`/${'a'.repeat(MAX_INIT_PATH_LENGTH - 1)}`)).to.deep.include({ ok: true });
  });

  it('refuses an initialize path that is not a request path', () => {
    for (const path of ['mcp', `/${'a'.repeat(MAX_INIT_PATH_LENGTH)}`, '/m cp', '/mcp\r\nx: 1', '/é', '/\x7f'])
      expect(checkInitPath(path), JSON.stringify(path)).to.deep.equal({ ok: false, reason: 'initialize path is not a request path' });
  });
});
