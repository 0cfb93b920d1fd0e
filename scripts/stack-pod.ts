/**
 * `npm run stack:pod -- kill|restore NAME`: kills a demo pod of the running
 * `npm run stack` (SIGKILL, its sessions are gone: watch mcp-pin recover
 * them on the other pod) or starts it again at its address. Talks to the
 * stack's control endpoint named in .stack/control.json.
 */
import { existsSync, readFileSync } from 'node:fs';

const [action, name] = process.argv.slice(2);
const fail = (why: string): never => {
  process.stderr.write(`stack:pod: ${why}\n`);
  process.exit(2);
};
if ((action !== 'kill' && action !== 'restore') || !name) fail('usage: npm run stack:pod -- kill|restore NAME (pod1, pod2)');
const file = new URL('../.stack/control.json', import.meta.url);
if (!existsSync(file)) fail('no stack is running (start it with npm run stack)');
const { url } = JSON.parse(readFileSync(file, 'utf8')) as { url: string };
const res = await fetch(`${url}/pods/${encodeURIComponent(name ?? '')}/${action}`, { method: 'POST' }).catch(() =>
  fail(`the stack at ${url} does not answer (did it stop?)`),
);
const text = (await res.text()).trim();
if (!res.ok) fail(text);
process.stdout.write(`${text}\n`);
