/**
 * Child processes for tests: output captured (for the failure report), a
 * wait on a stdout JSON line instead of sleeps, and teardown that always
 * runs (every process is registered and killed after the run).
 */
import { appendFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';

const running = new Set<ManagedProcess>();
/** Sees every process's output as it comes (npm run stack -- --logs). */
let tee: ((name: string, text: string) => void) | undefined;
export function teeOutput(fn: ((name: string, text: string) => void) | undefined): void {
  tee = fn;
}
const KEEP_LOG_CHARS = 60_000;

export class ManagedProcess {
  child: ChildProcess | null = null;
  private log = '';
  private lineWaiters: { match: (obj: Record<string, unknown>) => boolean; resolve: (o: Record<string, unknown>) => void }[] = [];
  private exitWaiters: ((code: number | null) => void)[] = [];
  exitCode: number | null | undefined = undefined;

  constructor(
    readonly name: string,
    private readonly cmd: string,
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv = {},
  ) {}

  start(): this {
    this.exitCode = undefined;
    const child = spawn(this.cmd, this.args, { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    running.add(this);
    let pending = '';
    child.stdout!.on('data', (d: Buffer) => {
      const text = d.toString();
      this.append(text);
      pending += text;
      for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        if (!line.startsWith('{')) continue;
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        this.lineWaiters = this.lineWaiters.filter((w) => {
          if (!w.match(obj)) return true;
          w.resolve(obj);
          return false;
        });
      }
    });
    child.stderr!.on('data', (d: Buffer) => this.append(d.toString()));
    child.on('exit', (code) => {
      this.exitCode = code;
      running.delete(this);
      this.append(`\n[${this.name} exited with ${code}]\n`);
      for (const w of this.exitWaiters.splice(0)) w(code);
    });
    return this;
  }

  private append(s: string): void {
    tee?.(this.name, s);
    // PROCESS_LOG_DIR keeps every process's whole output (the soak's post-mortems).
    if (process.env.PROCESS_LOG_DIR) appendFileSync(`${process.env.PROCESS_LOG_DIR}/${this.name.replace(/[^\w.-]/g, '_')}.log`, s);
    this.log += s;
    if (this.log.length > KEEP_LOG_CHARS * 2) this.log = this.log.slice(-KEEP_LOG_CHARS);
  }

  get output(): string {
    return this.log;
  }

  get alive(): boolean {
    return this.child !== null && this.exitCode === undefined;
  }

  /** Resolves with the first JSON stdout line that matches, or rejects after timeoutMs / on exit. */
  waitForJson(match: (o: Record<string, unknown>) => boolean, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: no matching line within ${timeoutMs} ms\n${this.log.slice(-3000)}`)), timeoutMs);
      const w = {
        match,
        resolve: (o: Record<string, unknown>) => {
          clearTimeout(t);
          resolve(o);
        },
      };
      this.lineWaiters.push(w);
      this.exitWaiters.push((code) => {
        clearTimeout(t);
        reject(new Error(`${this.name} exited (${code}) before it was ready\n${this.log.slice(-3000)}`));
      });
    });
  }

  waitExit(timeoutMs = 10_000): Promise<number | null> {
    if (!this.alive) return Promise.resolve(this.exitCode ?? null);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms`)), timeoutMs);
      this.exitWaiters.push((code) => {
        clearTimeout(t);
        resolve(code);
      });
    });
  }

  /** SIGTERM, then SIGKILL if it has not exited after graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.alive) return;
    this.child!.kill('SIGTERM');
    try {
      await this.waitExit(graceMs);
    } catch {
      await this.kill();
    }
  }

  async kill(): Promise<void> {
    if (!this.alive) return;
    this.child!.kill('SIGKILL');
    await this.waitExit(5000).catch(() => {});
  }
}

export function runningProcesses(): ManagedProcess[] {
  return [...running];
}

export async function killAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill()));
}

process.on('exit', () => {
  for (const p of running) p.child?.kill('SIGKILL');
});
