import type { Progress } from '../base/progress';

/**
 * Progress on stderr: a redrawn bar when stderr is a TTY, plain lines otherwise (logs and CI stay readable).
 * Plain mode prints at most one line per task per 10 % step so logs stay short.
 */
export function createProgressPrinter(stream: NodeJS.WriteStream = process.stderr): (event: Progress) => void {
  const lastDecile = new Map<string, number>();
  const tty = Boolean(stream.isTTY);
  return (event) => {
    switch (event.status) {
      case 'start':
        if (!tty) stream.write(`${event.task}: started\n`);
        break;
      case 'progress': {
        if (tty) {
          const width = 30;
          const filled = Math.round(event.fraction * width);
          const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
          stream.write(`\r${event.task} ${bar} ${(event.fraction * 100).toFixed(0).padStart(3)}% ${event.detail ?? ''}`.slice(0, 120).padEnd(120));
        } else {
          const decile = Math.floor(event.fraction * 10);
          if (decile > (lastDecile.get(event.task) ?? -1)) {
            lastDecile.set(event.task, decile);
            stream.write(`${event.task}: ${(event.fraction * 100).toFixed(0)}%${event.detail ? ` ${event.detail}` : ''}\n`);
          }
        }
        break;
      }
      case 'message':
        stream.write(`${tty ? '\r\x1b[K' : ''}${event.task}: ${event.text}\n`);
        break;
      case 'done':
        stream.write(tty ? `\r\x1b[K${event.task}: done\n` : `${event.task}: done\n`);
        break;
    }
  };
}
