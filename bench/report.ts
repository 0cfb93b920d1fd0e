/** How the bench sums up rounds and prints them: medians over rounds, ratios to a base setup, tables on stdout, JSON in bench/results/. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { LOW_RATE, type Latency, type Row, SECONDS, median, perRequestUs } from './measure.js';

/** Per setup: medians over the rounds of req/s, CPU µs per request (ext_proc process, Envoy), and of the ratio to setup `base`. */
export const summarize = (names: string[], rs: Row[][], base: number) =>
  names.map((setup, j) => ({
    setup,
    concurrency: rs[0]![j]!.concurrency,
    rps: median(rs.map((r) => r[j]!.rps)),
    ratio: Number(median(rs.map((r) => r[j]!.rps / r[base]!.rps)).toFixed(3)),
    extProcUs: median(rs.map((r) => perRequestUs(r[j]!, 'mcpPin'))),
    envoyUs: median(rs.map((r) => perRequestUs(r[j]!, 'envoy'))),
    errors: rs.reduce((n, r) => n + r[j]!.errors, 0),
  }));

export const summarizeLatency = (names: string[], ls: Latency[][], base: number) =>
  names.map((setup, j) => ({
    setup,
    p50Us: median(ls.map((l) => l[j]!.p50Us)),
    p99Us: median(ls.map((l) => l[j]!.p99Us)),
    addedP50Us: median(ls.map((l) => l[j]!.p50Us - l[base]!.p50Us)),
    addedP99Us: median(ls.map((l) => l[j]!.p99Us - l[base]!.p99Us)),
    errors: ls.reduce((n, l) => n + l[j]!.errors, 0),
  }));

/** Median over rounds of setup a's CPU per request over setup b's (paired per round: a slow round counts against both). */
export const pairedCpu = (rs: Row[][], a: number, b: number, k: keyof Row['cpuMs']): number =>
  Number(median(rs.map((r) => perRequestUs(r[a]!, k) / Math.max(1, perRequestUs(r[b]!, k)))).toFixed(3));

export function printSummary(title: string, tables: ReturnType<typeof summarize>[], lat: ReturnType<typeof summarizeLatency>, baseName: string): void {
  const out = process.stdout;
  out.write(`\n${title}\n| setup | conc | req/s | x ${baseName} | CPU µs/req ext_proc | CPU µs/req Envoy | errors |\n|---|---|---|---|---|---|---|\n`);
  for (const t of tables)
    for (const r of t) out.write(`| ${r.setup} | ${r.concurrency} | ${r.rps} | ${r.ratio} | ${r.extProcUs || '-'} | ${r.envoyUs} | ${r.errors} |\n`);
  out.write(
    `\n| setup (at ${LOW_RATE} req/s, open loop) | p50 µs | p99 µs | added p50 µs over ${baseName} | added p99 µs | errors |\n|---|---|---|---|---|---|\n`,
  );
  for (const l of lat) out.write(`| ${l.setup} | ${l.p50Us} | ${l.p99Us} | ${l.addedP50Us} | ${l.addedP99Us} | ${l.errors} |\n`);
}

/** bench/results/<kind>-<time>.json */
export function writeResults(kind: string, data: object): void {
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const file = new URL(`./results/${kind}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, import.meta.url);
  writeFileSync(file, JSON.stringify({ seconds: SECONDS, ...data }, null, 2));
  process.stdout.write(`\nJSON: ${file.pathname}\n`);
}
