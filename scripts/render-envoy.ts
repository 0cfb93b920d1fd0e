/**
 * Renders envoy/envoy.template.yaml for your own Envoy.
 *
 *   npm run render:envoy -- --list
 *   npm run render:envoy -- --values values.json --set listenPort=8080 --out envoy.yaml
 *   npm run render:envoy -- --eds 10.0.0.11:8080,10.0.0.12:8080 --out eds.json
 *
 * --values reads a JSON object of template values; --set name=value (repeatable)
 * overrides it. Unknown names and bad values are all reported at once (exit 2).
 * --eds writes the EDS file the service=eds:<path> discovery watches.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { renderEds, renderEnvoyConfig, writeFileAtomically } from '../envoy/render.js';
import { TEMPLATE_VALUES, TemplateValuesError, ValueProblem, hostPorts, paramsFromValues } from '../envoy/values.js';

function usage(problem: string): never {
  process.stderr.write(`render:envoy: ${problem}\nusage: npm run render:envoy -- [--list] [--values file.json] [--set name=value ...] [--eds host:port,...] [--out file]\n`);
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: { list: { type: 'boolean' }, values: { type: 'string' }, set: { type: 'string', multiple: true }, eds: { type: 'string' }, out: { type: 'string' } },
    strict: true,
    allowPositionals: false,
  }).values;
} catch (err) {
  usage((err as Error).message);
}

if (args.list) {
  for (const [name, spec] of Object.entries(TEMPLATE_VALUES)) {
    process.stdout.write(`${name} = ${spec.default ?? '(required)'}\n    ${spec.meaning}\n`);
  }
  process.exit(0);
}

let text: string;
if (args.eds !== undefined) {
  try {
    text = renderEds(hostPorts(args.eds)) + '\n';
  } catch (err) {
    if (!(err instanceof ValueProblem)) throw err;
    usage(`--eds: ${err.message}`);
  }
} else {
  const values: Record<string, string | number | string[]> = {};
  const problems: string[] = [];
  if (args.values !== undefined) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(args.values, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('expected a JSON object of template values');
      Object.assign(values, parsed);
    } catch (err) {
      problems.push(`--values ${args.values}: ${(err as Error).message}`);
    }
  }
  for (const pair of args.set ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) problems.push(`--set "${pair}": expected name=value`);
    else values[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  let params;
  try {
    params = paramsFromValues(values);
  } catch (err) {
    if (!(err instanceof TemplateValuesError)) throw err;
    problems.push(...err.problems);
  }
  if (problems.length > 0 || !params) {
    process.stderr.write(`render:envoy: ${problems.length} problem(s):\n  - ${problems.join('\n  - ')}\n`);
    process.exit(2);
  }
  text = renderEnvoyConfig(params);
}

if (args.out) writeFileAtomically(args.out, text);
else process.stdout.write(text);
