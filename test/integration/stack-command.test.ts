/**
 * The README's stack command: it comes up and an SDK client initializes and
 * calls a tool through it; it shows every process (PID, log file), streams
 * their logs with --logs, lets a user kill and restore the pod holding a
 * session (npm run stack:pod) and watch the recovery, and leaves no
 * temporary folder behind after Ctrl-C.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connectClient } from '../helpers/mcp-client.js';
import { eventually } from '../helpers/net.js';
import { ManagedProcess } from '../helpers/process.js';

const STACK = new URL('../../scripts/stack.ts', import.meta.url).pathname;
const STACK_POD = new URL('../../scripts/stack-pod.ts', import.meta.url).pathname;
const BIN = new URL('../../bin/mcp-pin.js', import.meta.url).pathname;
const stackPod = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', STACK_POD, ...args], { encoding: 'utf8' });

describe('npm run stack (README)', function () {
  this.timeout(120_000);
  it('fails at once on a busy public port, naming it', async () => {
    const { createServer } = await import('node:net');
    const busy = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    try {
      const port = (busy.address() as { port: number }).port;
      const started = Date.now();
      const r = spawnSync(process.execPath, ['--import', 'tsx', STACK, '--once', '--port', String(port)], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status).to.equal(1);
      expect(r.stderr).to.contain(`port ${port} is not free (EADDRINUSE)`);
      expect(Date.now() - started, 'at once, not after Envoy timed out').to.be.below(10_000);
    } finally {
      busy.close();
    }
  });

  it('brings up Envoy + 2 mcp-pin + Redis + 2 pods, and the demo client calls a tool', async () => {
    const p = new ManagedProcess('stack', process.execPath, ['--import', 'tsx', STACK, '--once', '--port', '0']).start();
    const code = await p.waitExit(80_000);
    expect(code, p.output.slice(-3000)).to.equal(0);
    expect(p.output).to.match(/MCP endpoint \(connect your client here\): http:\/\/127\.0\.0\.1:\d+\/mcp/);
    expect(p.output).to.match(/demo client: session pod\d-\S+ is pinned to (pod\d); echo answered by \1/);
  });

  it('shows each process with its PID and log, streams the logs (--logs), kills and restores a pod on request, and leaves nothing behind after Ctrl-C', async () => {
    const p = new ManagedProcess('stack', process.execPath, ['--import', 'tsx', STACK, '--port', '0', '--logs']).start();
    await eventually(async () => p.output.includes('Ctrl-C to stop.') || !p.alive, 'the stack up', 80_000);
    expect(p.alive, p.output.slice(-3000)).to.equal(true);
    const out = p.output;
    const url = /MCP endpoint \(connect your client here\): (\S+)/.exec(out)![1]!;
    const envoyDir = /Envoy config: {2}(\S+)\/envoy\.yaml/.exec(out)![1]!;
    const redisDir = /\(data in (\S+)\)/.exec(out)![1]!;
    expect(existsSync(redisDir)).to.equal(true);
    const processes = [...out.matchAll(/^ {2}(\S+)\s+pid (\d+)\s+(\S+\.log)$/gm)].map((m) => ({ name: m[1]!, pid: Number(m[2]), log: m[3]! }));
    expect(processes.map((x) => x.name)).to.include.members(['envoy', 'mcp-pin-1', 'mcp-pin-2', 'pod:pod1', 'pod:pod2']);
    for (const x of processes) {
      expect(() => process.kill(x.pid, 0), `${x.name} runs`).to.not.throw();
      expect(existsSync(x.log), x.log).to.equal(true);
    }
    // --logs: every process's lines, each with its name.
    expect(out)
      .to.match(/^\[mcp-pin-1\] \{/m)
      .and.match(/^\[pod:pod1\] /m);
    expect(readFileSync(processes.find((x) => x.name === 'mcp-pin-1')!.log, 'utf8')).to.contain('"msg":"mcp-pin listening"');

    // The walk-through: a session, its pod killed, the next call recovered elsewhere.
    const c = await connectClient(url);
    try {
      const home = (await c.whoami()).pod;
      const killed = stackPod('kill', home);
      expect(killed.status, killed.stderr).to.equal(0);
      expect(killed.stdout).to.contain(`${home} killed`);
      const after = await c.echo('after the kill');
      expect(after.text).to.equal('after the kill');
      expect(after.pod).to.not.equal(home);
      await eventually(async () => p.output.includes('session re-initialized'), 'the recovery in the streamed log', 10_000);
      // The commands the stack printed work as printed: every replica's counters show the recovery,
      // and the sessions command (its own store URL and key prefix) finds the session.
      const metricsLine = /^ {2}(for p in [\d ]+; do curl .*; done)$/m.exec(out)![1]!;
      const counters = spawnSync('bash', ['-c', metricsLine], { encoding: 'utf8' }).stdout;
      expect(counters).to.match(/^mcp_pin_requests_total\{outcome="recovered"\} [1-9]/m);
      const getLine = /^ {2}npx mcp-pin sessions get <session id> (.*)$/m.exec(out)![1]!;
      const got = spawnSync('bash', ['-c', `node ${BIN} sessions get ${c.sessionId()} ${getLine}`], { encoding: 'utf8' });
      expect(got.status, got.stderr).to.equal(0);
      expect(got.stdout).to.contain('generation   2');
      const restored = stackPod('restore', home);
      expect(restored.status, restored.stderr).to.equal(0);
      expect(restored.stdout).to.contain(`${home} started again`);
      expect(stackPod('kill', 'no-such-pod').status).to.equal(2);
      expect(stackPod('explode', home).status).to.equal(2);
    } finally {
      await c.close();
    }

    p.child!.kill('SIGINT');
    expect(await p.waitExit(30_000), p.output.slice(-2000)).to.equal(0);
    expect(p.output).to.contain('stack stopped');
    expect(existsSync(envoyDir), "Envoy's temporary folder").to.equal(false);
    expect(existsSync(redisDir), "Redis's temporary folder").to.equal(false);
    expect(existsSync(new URL('../../.stack/control.json', import.meta.url)), 'the control file').to.equal(false);
    for (const x of processes) expect(() => process.kill(x.pid, 0), `${x.name} stopped`).to.throw();
    const after = stackPod('kill', 'pod1');
    expect(after.status).to.equal(2);
    expect(after.stderr).to.contain('no stack is running');
  });
});
