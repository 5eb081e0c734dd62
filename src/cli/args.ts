import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidInputError } from '../base/errors';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `--position -1` as docs/contracts.md writes it: node's parseArgs refuses a value starting with '-', so a string
 * option followed by a negative number is joined into `--position=-1` first.
 */
function joinNegativeNumbers(argv: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].startsWith('--') ? argv[i].slice(2) : null;
    const next = argv[i + 1];
    if (name && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`${argv[i]}=${next}`);
      i++;
    } else out.push(argv[i]);
  }
  return out;
}

/** Parses `--flag value` options strictly: an unknown flag or a missing value is a clear error. */
export function parseCommandArgs<T extends Options>(command: string, argv: string[], options: T) {
  try {
    return parseArgs({ args: joinNegativeNumbers(argv, options), options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new InvalidInputError(`${(error as Error).message}. Run 'abliterate ${command} --help'.`);
  }
}

export function requireOption(command: string, values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidInputError(`missing --${name}. Run 'abliterate ${command} --help'.`);
  }
  return value;
}

export function numberOption(values: Record<string, unknown>, name: string, fallback: number, check?: (n: number) => boolean): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(value) || (check && !check(value))) {
    throw new InvalidInputError(`--${name} ${String(raw)} is not a valid value.`);
  }
  return value;
}

export function integerOption(values: Record<string, unknown>, name: string, fallback: number, check?: (n: number) => boolean): number {
  return numberOption(values, name, fallback, (n) => Number.isInteger(n) && (check ? check(n) : true));
}
