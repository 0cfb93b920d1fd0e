#!/usr/bin/env -S node --max-semi-space-size=8
// The mcp-pin command. It runs the compiled build (dist/, from `npm run
// build`; what the image runs); in a checkout where only `npm ci` ran, it
// runs the sources through tsx (a dev dependency) instead, so
// `npx mcp-pin --help` works from a fresh clone.
import { existsSync } from 'node:fs';

const built = new URL('../dist/src/main.js', import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/main.ts', import.meta.url).href);
}
