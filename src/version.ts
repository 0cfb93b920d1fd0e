/** mcp-pin's version: package.json's, found from here in a checkout (src/) and in the build (dist/src/). */
import { existsSync, readFileSync } from 'node:fs';

export function version(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    const url = new URL(rel, import.meta.url);
    if (!existsSync(url)) continue;
    const pkg = JSON.parse(readFileSync(url, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'mcp-pin' && pkg.version) return pkg.version;
  }
  return 'unknown';
}
