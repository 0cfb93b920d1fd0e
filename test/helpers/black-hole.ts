import { spawn } from 'node:child_process';
import { once } from 'node:events';

/**
 * A TCP address whose connects never complete: a listener that never
 * accepts, its backlog filled by the helper itself, so the kernel drops
 * every further SYN (as a firewall that drops, or a node gone from the
 * network, does). Node accepts on its own, so the listener is Python's.
 */
export async function startBlackHole(): Promise<{ port: number; stop(): Promise<void> }> {
  const script = [
    'import socket, sys',
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
    'port = s.getsockname()[1]',
    'fill = []',
    'for _ in range(3):',
    '    c = socket.socket(); c.setblocking(False)',
    '    try: c.connect(("127.0.0.1", port))',
    '    except BlockingIOError: pass',
    '    fill.append(c)',
    'print(port, flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  if (!Number.isInteger(port) || port <= 0) throw new Error(`black hole: no port (${line.toString()})`);
  return {
    port,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.stdin.end();
      await once(child, 'exit');
    },
  };
}
