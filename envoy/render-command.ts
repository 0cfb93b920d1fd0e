/**
 * The render command: `npm run render:envoy -- ...` in a checkout and
 * `mcp-pin render-envoy ...` in the image (so the config can be rendered
 * from the very build that runs). Renders envoy/envoy.template.yaml from
 * template values, lists them, or writes an EDS file.
 *
 * --values reads a JSON object of template values; --set name=value
 * (repeatable) overrides it. Unknown names and bad values are all reported
 * at once (exit 2). --eds writes the EDS file the service=eds:<path>
 * discovery watches.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { TemplateError } from '../src/errors.js';
import { renderEds, writeFileAtomically } from './eds.js';
import { cutPieces, type Pieces } from './pieces.js';
import { renderEnvoyConfig } from './render.js';
import { TEMPLATE_VALUES, TemplateValuesError, ValueProblem, hostPorts, paramsFromValues } from './values.js';

export interface RenderIo {
  out(text: string): void;
  err(text: string): void;
  /** How the user ran it, for the usage line: 'npm run render:envoy --' or 'mcp-pin render-envoy'. */
  command: string;
}

const usageText = (command: string): string => `usage: ${command} [--list] [--values file.json] [--set name=value ...] [--eds host:port,...] [--out file]
       ${command} --values file.json [--set ...] --pieces folder [--route-prefix /path]

  --values file.json   template values, a JSON object (see --list)
  --set name=value     one value, over the file's (repeatable)
  --list               every template value with its default and meaning
  --eds host:port,...  write the EDS file that service=eds:<path> watches, instead of the config
  --out file           write to this file (atomically: a temporary file renamed over it); default: stdout
  --pieces folder      write the pieces to merge into an Envoy config of your own instead (docs/own-envoy.md)
  --route-prefix path  with --pieces: mcp-pin's routes match paths under this prefix (default /)
  --help               this text`;

/** Runs the command; returns its exit code (0 done, 2 a usage or value problem, said on err). */
export function runRenderCommand(argv: string[], io: RenderIo): number {
  const usage = (problem: string): number => {
    io.err(`render:envoy: ${problem} (see ${io.command} --help)\n`);
    return 2;
  };
  let args: {
    help?: boolean;
    list?: boolean;
    values?: string;
    set?: string[];
    eds?: string;
    out?: string;
    pieces?: string;
    'route-prefix'?: string;
  };
  try {
    args = parseArgs({
      args: argv,
      options: {
        help: { type: 'boolean', short: 'h' },
        list: { type: 'boolean' },
        values: { type: 'string' },
        set: { type: 'string', multiple: true },
        eds: { type: 'string' },
        out: { type: 'string' },
        pieces: { type: 'string' },
        'route-prefix': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    return usage((err as Error).message);
  }

  if (args.help) {
    io.out(`${usageText(io.command)}\n`);
    return 0;
  }
  // A folder that is not there: one line, before any work.
  if (args.out !== undefined) {
    const folder = dirname(resolve(args.out));
    if (!existsSync(folder) || !statSync(folder).isDirectory()) return usage(`--out ${args.out}: folder ${folder} does not exist`);
  }
  if (args.pieces !== undefined && (args.out !== undefined || args.eds !== undefined)) return usage('--pieces writes a folder: not with --out or --eds');
  if (args['route-prefix'] !== undefined && args.pieces === undefined) return usage('--route-prefix goes with --pieces');
  if (args.list) {
    for (const [name, spec] of Object.entries(TEMPLATE_VALUES)) io.out(`${name} = ${spec.default ?? '(required)'}\n    ${spec.meaning}\n`);
    return 0;
  }

  let text: string;
  if (args.eds !== undefined) {
    try {
      text = `${renderEds(hostPorts(args.eds))}\n`;
    } catch (err) {
      if (!(err instanceof ValueProblem)) throw err;
      return usage(`--eds: ${err.message}`);
    }
  } else {
    const rendered = renderFromValues(args.values, args.set ?? []);
    if ('problems' in rendered) {
      io.err(`render:envoy: ${rendered.problems.length} problem(s):\n  - ${rendered.problems.join('\n  - ')}\n`);
      return 2;
    }
    text = rendered.text;
    if (args.pieces !== undefined) return writePieces(text, args.pieces, args['route-prefix'] ?? '/', io, usage);
  }

  if (!args.out) {
    io.out(text);
    return 0;
  }
  try {
    writeFileAtomically(args.out, text);
  } catch (err) {
    io.err(`render:envoy: cannot write ${args.out}: ${(err as Error).message}\n`);
    return 2;
  }
  io.err(`render:envoy: wrote ${args.eds !== undefined ? 'the EDS file' : 'the Envoy config'} ${resolve(args.out)} (${Buffer.byteLength(text)} bytes)\n`);
  return 0;
}

/** Writes each piece into the folder (made if missing), naming each on err. */
function writePieces(config: string, folder: string, routePrefix: string, io: RenderIo, usage: (problem: string) => number): number {
  let pieces: Pieces;
  try {
    pieces = cutPieces(config, { routePrefix });
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    return usage(err.message);
  }
  try {
    mkdirSync(folder, { recursive: true });
    for (const [name, text] of pieces) writeFileAtomically(join(folder, name), text);
  } catch (err) {
    io.err(`render:envoy: cannot write ${folder}: ${(err as Error).message}\n`);
    return 2;
  }
  io.err(`render:envoy: wrote the pieces ${[...pieces.keys()].join(', ')} into ${resolve(folder)} (where each goes: docs/own-envoy.md)\n`);
  return 0;
}

/** The config from a values file and --set pairs, or every problem found in them. */
function renderFromValues(file: string | undefined, sets: string[]): { text: string } | { problems: string[] } {
  const values: Record<string, string | number | string[]> = {};
  const problems: string[] = [];
  if (file !== undefined) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('expected a JSON object of template values');
      Object.assign(values, parsed);
    } catch (err) {
      problems.push(`--values ${file}: ${(err as Error).message}`);
    }
  }
  for (const pair of sets) {
    const eq = pair.indexOf('=');
    if (eq <= 0) problems.push(`--set "${pair}": expected name=value`);
    else values[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  try {
    const params = paramsFromValues(values);
    if (problems.length === 0) return { text: renderEnvoyConfig(params) };
  } catch (err) {
    if (!(err instanceof TemplateValuesError)) throw err;
    problems.push(...err.problems);
  }
  return { problems };
}
