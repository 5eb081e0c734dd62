/** The shorthand's block range as typed (the CLI's --layers A-B); no store, so run cards and tests read it alone. */
import { InvalidInputError } from '../base/errors';

/** '' → every block; 'A-B' or 'A' → inclusive range, as the CLI's --layers. */
export function parseBlockRange(raw: string): [number, number] | null {
  const text = raw.trim();
  if (text === '') return null;
  const match = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(text);
  const range: [number, number] | null = match ? [Number(match[1]), Number(match[2] ?? match[1])] : null;
  if (!range || range[0] > range[1]) throw new InvalidInputError(`Blocks "${raw}" is not a range A-B with A ≤ B (e.g. 4-20).`);
  return range;
}
