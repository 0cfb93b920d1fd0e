/** The README's stack command comes up and an SDK client initializes and calls a tool through it. */
import { expect } from 'chai';
import { ManagedProcess } from '../helpers/process.js';

describe('npm run stack (README)', function () {
  this.timeout(90_000);
  it('brings up Envoy + 2 mcp-pin + Redis + 2 pods, and the demo client calls a tool', async () => {
    const p = new ManagedProcess('stack', process.execPath, ['--import', 'tsx', new URL('../../scripts/stack.ts', import.meta.url).pathname, '--once', '--port', '0']).start();
    const code = await p.waitExit(80_000);
    expect(code, p.output.slice(-3000)).to.equal(0);
    expect(p.output).to.match(/MCP endpoint \(connect your client here\): http:\/\/127\.0\.0\.1:\d+\/mcp/);
    expect(p.output).to.match(/demo client: session pod\d-\S+ is pinned to (pod\d); echo answered by \1/);
  });
});
