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
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { renderEnvoyConfig } from '../envoy/render.js';
import { renderEds, writeFileAtomically } from '../envoy/eds.js';
import { TEMPLATE_VALUES, TemplateValuesError, ValueProblem, hostPorts, paramsFromValues } from '../envoy/values.js';

const USAGE = `usage: npm run render:envoy -- [--list] [--values file.json] [--set name=value ...] [--eds host:port,...] [--out file]

  --values file.json   template values, a JSON object (see --list)
  --set name=value     one value, over the file's (repeatable)
  --list               every template value with its default and meaning
  --eds host:port,...  write the EDS file that service=eds:<path> watches, instead of the config
  --out file           write to this file (atomically: a temporary file renamed over it); default: stdout
  --help               this text`;

function usage(problem: string): never {
  process.stderr.write(`render:envoy: ${problem} (see npm run render:envoy -- --help)\n`);
  process.exit(2);
}

const args = (() => {
  try {
    return parseArgs({
      options: {
        help: { type: 'boolean', short: 'h' },
        list: { type: 'boolean' },
        values: { type: 'string' },
        set: { type: 'string', multiple: true },
        eds: { type: 'string' },
        out: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    return usage((err as Error).message);
  }
})();

if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

// A folder that is not there: one line, before any work.
if (args.out !== undefined) {
  const folder = dirname(resolve(args.out));
  if (!existsSync(folder) || !statSync(folder).isDirectory()) usage(`--out ${args.out}: folder ${folder} does not exist`);
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
    text = `${renderEds(hostPorts(args.eds))}\n`;
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
  let params: ReturnType<typeof paramsFromValues> | undefined;
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

if (args.out) {
  try {
    writeFileAtomically(args.out, text);
  } catch (err) {
    process.stderr.write(`render:envoy: cannot write ${args.out}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  process.stderr.write(
    `render:envoy: wrote ${args.eds !== undefined ? 'the EDS file' : 'the Envoy config'} ${resolve(args.out)} (${Buffer.byteLength(text)} bytes)\n`,
  );
} else process.stdout.write(text);
