import { serializeError } from '../base/errors';

/** Each command lives in its own module, loaded only when asked for, so `--help` stays instant. */
interface CommandModule {
  run(argv: string[]): Promise<number>;
  help: string;
}

const commands: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  analyze: { summary: 'capture residuals on two prompt sets and report per-layer directions and AUC', load: () => import('./analyze') },
  ablate: { summary: 'orthogonalize a safetensors model against a direction (streaming)', load: () => import('./ablate') },
  eval: { summary: 'refusal rate and first-token KL, base vs hook-ablated', load: () => import('./eval') },
  run: { summary: 'analyze → recommended layer → eval → ablate, with a summary table', load: () => import('./run') },
  optimize: { summary: 'multi-objective search over ablation recipes (refusals vs KL), Pareto front', load: () => import('./optimize') },
};

export const usage = `Usage: abliterate <command> [options]

Commands:
${Object.entries(commands)
  .map(([name, command]) => `  ${name.padEnd(8)} ${command.summary}`)
  .join('\n')}

Run 'abliterate <command> --help' for a command's options.`;

/** Longest error line printed: a message quoting a hostile multi-megabyte value is cut, never a terminal flood. */
export const MAX_ERROR_MESSAGE_CHARS = 2000;

/** The error as one line of bounded length. */
export function oneLine(message: string): string {
  const flat = message.replace(/[\r\n]+/g, ' ');
  return flat.length > MAX_ERROR_MESSAGE_CHARS ? `${flat.slice(0, MAX_ERROR_MESSAGE_CHARS)}… (${flat.length - MAX_ERROR_MESSAGE_CHARS} more characters)` : flat;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage}\n`);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`abliterate: unknown command '${name}'. ${usage}\n`);
    return 2;
  }
  const module = await command.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${module.help}\n`);
    return 0;
  }
  try {
    return await module.run(rest);
  } catch (error) {
    // One clear line naming the file and the problem; the stack only on request.
    const serialized = serializeError(error);
    process.stderr.write(`abliterate ${name}: ${oneLine(serialized.message)}\n`);
    if (process.env.ABLITERATE_DEBUG && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return serialized.name === 'CancelledError' ? 130 : 1;
  }
}
