/** Rewrites docs/configuration.md's table from src/config.ts (a test checks they agree). */
import { readFileSync, writeFileSync } from 'node:fs';
import { OPTIONS } from '../src/config.js';

const path = new URL('../docs/configuration.md', import.meta.url);
const readme = readFileSync(path, 'utf8');
const head = '| flag | environment | default | meaning |\n| --- | --- | --- | --- |\n';
const start = readme.indexOf(head);
if (start < 0) throw new Error('docs/configuration.md: configuration table header not found');
const end = readme.indexOf('\n\n', start);
const rows = Object.values(OPTIONS)
  .map((o) => `| \`--${o.flag}\` | \`${o.env}\` | \`${o.default}\` | ${o.doc.replace(/\|/g, '\\|')} |`)
  .join('\n');
writeFileSync(path, readme.slice(0, start) + head + rows + readme.slice(end));
