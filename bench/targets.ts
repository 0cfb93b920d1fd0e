/**
 * The benchmark's targets: one entry each, from which both the printed line
 * and the MET / NOT MET verdict come (the limit is never written twice).
 */

export interface Target {
  /** What is measured, and how (the median of what). */
  text: string;
  /** The measured value, unrounded: the verdict is judged on it. */
  value: number;
  op: '>=' | '<=';
  limit: number;
}

export const isMet = (t: Target): boolean => (t.op === '>=' ? t.value >= t.limit : t.value <= t.limit);

/** As the results JSON keeps it: the line as printed, the value, the verdict. */
export function judged(t: Target): { target: string; value: number; met: boolean } {
  return { target: `${t.text} ${t.op} ${t.limit}`, value: t.value, met: isMet(t) };
}

export function printTargets(targets: Target[], out: NodeJS.WritableStream = process.stdout): void {
  out.write('\nTargets\n');
  for (const t of targets) out.write(`- ${isMet(t) ? 'MET    ' : 'NOT MET'} ${t.text} ${t.op} ${t.limit}: ${Number(t.value.toFixed(3))}\n`);
}
