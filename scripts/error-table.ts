/** Writes docs/errors.md's table from src/errors.ts and the client answers of src/extproc/error-responses.ts (a test checks they agree). */
import { readFileSync, writeFileSync } from 'node:fs';
import { errorTable, ERROR_TABLE_HEAD } from '../src/extproc/error-table.js';

const path = new URL('../docs/errors.md', import.meta.url);
const doc = readFileSync(path, 'utf8');
const start = doc.indexOf(ERROR_TABLE_HEAD);
if (start < 0) throw new Error('docs/errors.md: error table header not found');
const end = doc.indexOf('\n\n', start);
writeFileSync(path, doc.slice(0, start) + errorTable() + (end < 0 ? '\n' : doc.slice(end)));
