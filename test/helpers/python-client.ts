/**
 * A user on the Python MCP SDK: demo/python/mcp_client.py (ClientSession over
 * Streamable HTTP) as a child process, one JSON command per line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { pythonFor, type PythonMcpVersion } from './pod.js';

const CLIENT_SCRIPT = new URL('../../demo/python/mcp_client.py', import.meta.url).pathname;

export interface PythonClient {
  sessionId: string;
  whoami(): Promise<{ pod: string; session: string }>;
  echo(text: string): Promise<{ pod: string; text: string }>;
  subscribe(uri: string): Promise<void>;
  unsubscribe(uri: string): Promise<void>;
  setLevel(level: string): Promise<void>;
  /** Resource updates and log messages received so far. */
  heard(): Promise<{ updates: string[]; logs: string[] }>;
  /** Empties what heard() returns. */
  forget(): Promise<void>;
  /** Ends stdin: the client sends DELETE and exits. Resolves with its exit code. */
  close(): Promise<number | null>;
}

export async function connectPythonClient(url: string, version: PythonMcpVersion = '1.30', connectTimeoutMs = 20_000): Promise<PythonClient> {
  const child: ChildProcess = spawn(pythonFor(version), ['-W', 'ignore', CLIENT_SCRIPT, url], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let onConnected: ((sid: string) => void) | undefined;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let msg: { connected?: string; id?: number; ok?: unknown; error?: string };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    if (typeof msg.connected === 'string') return onConnected?.(msg.connected);
    const w = msg.id === undefined ? undefined : waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id!);
    if (msg.error !== undefined) w.reject(new Error(`python client: ${msg.error}`));
    else w.resolve(msg.ok);
  });
  void exited.then((code) => {
    for (const w of waiting.values()) w.reject(new Error(`python client exited (${code}): ${stderr}`));
    waiting.clear();
  });
  const sessionId = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`python client did not connect within ${connectTimeoutMs} ms: ${stderr}`));
    }, connectTimeoutMs);
    onConnected = (sid) => {
      clearTimeout(timer);
      resolve(sid);
    };
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`python client exited (${code}) before connecting: ${stderr}`));
    });
  });
  let next = 1;
  const call = <T>(cmd: Record<string, unknown>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = next++;
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.stdin!.write(`${JSON.stringify({ id, ...cmd })}\n`);
    });
  return {
    sessionId,
    whoami: () => call({ op: 'whoami' }),
    echo: (text) => call({ op: 'echo', text }),
    subscribe: (uri) => call({ op: 'subscribe', uri }),
    unsubscribe: (uri) => call({ op: 'unsubscribe', uri }),
    setLevel: (level) => call({ op: 'setLevel', level }),
    heard: () => call({ op: 'heard' }),
    forget: () => call({ op: 'forget' }),
    close: async () => {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
