/**
 * Measurement helpers of `npm run bench`: medians, timed child processes with their peak resident memory.
 *
 * Peak RSS comes from GNU time (`/usr/bin/time -v`, Debian package `time`) when it is installed, which reads the
 * kernel's own high-water mark at exit (ru_maxrss); otherwise from polling /proc/<pid>/status VmHWM every
 * 20 ms, which is also a high-water mark, so polling only misses what the process allocated in its last 20 ms.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const GNU_TIME = '/usr/bin/time';
const PROC_POLL_MILLISECONDS = 20;

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function minimum(values: readonly number[]): number {
  return values.reduce((best, value) => Math.min(best, value), Number.POSITIVE_INFINITY);
}

export function maximum(values: readonly number[]): number {
  return values.reduce((best, value) => Math.max(best, value), Number.NEGATIVE_INFINITY);
}

export type RssMethod = 'GNU time -v (ru_maxrss)' | '/proc/<pid>/status VmHWM, polled every 20 ms' | 'not measured';

export interface TimedProcess {
  seconds: number; // wall clock, spawn to exit
  peakRssBytes: number | null;
  rssMethod: RssMethod;
  userSeconds: number | null;
  systemSeconds: number | null;
  stdout: string;
  stderr: string;
}

export interface TimeCommandOptions {
  /** Measure the peak resident set size of the command. */
  rss?: boolean;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export function rssMethod(): RssMethod {
  return existsSync(GNU_TIME) ? 'GNU time -v (ru_maxrss)' : '/proc/<pid>/status VmHWM, polled every 20 ms';
}

/** Runs `command args…` to completion; throws with its stderr when it fails. */
export async function timeCommand(command: string, args: readonly string[], options: TimeCommandOptions = {}): Promise<TimedProcess> {
  const method: RssMethod = options.rss ? rssMethod() : 'not measured';
  const useGnuTime = method === 'GNU time -v (ru_maxrss)';
  const timeReport = useGnuTime ? path.join(os.tmpdir(), `bench-time-${process.pid}-${Date.now()}.txt`) : null;
  const [file, argv] = timeReport ? [GNU_TIME, ['-v', '-o', timeReport, command, ...args]] : [command, [...args]];
  const started = process.hrtime.bigint();
  const child = spawn(file, argv, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  let polledPeakKilobytes = 0;
  const poller =
    options.rss && !useGnuTime
      ? setInterval(() => {
          fs.readFile(`/proc/${child.pid}/status`, 'utf8')
            .then((status) => {
              const match = /VmHWM:\s+(\d+) kB/.exec(status);
              if (match) polledPeakKilobytes = Math.max(polledPeakKilobytes, Number(match[1]));
            })
            .catch(() => undefined); // the process has exited between two polls
        }, PROC_POLL_MILLISECONDS)
      : null;
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (exitCode) => resolve(exitCode));
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (poller) clearInterval(poller);
  let peakRssBytes: number | null = options.rss && !useGnuTime ? polledPeakKilobytes * 1024 : null;
  let userSeconds: number | null = null;
  let systemSeconds: number | null = null;
  if (timeReport) {
    const report = await fs.readFile(timeReport, 'utf8').catch(() => '');
    await fs.rm(timeReport, { force: true });
    const field = (label: string) => {
      const match = new RegExp(`${label}: ([\\d.]+)`).exec(report);
      return match ? Number(match[1]) : null;
    };
    const kilobytes = field('Maximum resident set size \\(kbytes\\)');
    peakRssBytes = kilobytes === null ? null : kilobytes * 1024;
    userSeconds = field('User time \\(seconds\\)');
    systemSeconds = field('System time \\(seconds\\)');
  }
  if (code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${code}:\n${stderr.slice(-2000)}`);
  }
  return { seconds, peakRssBytes, rssMethod: method, userSeconds, systemSeconds, stdout, stderr };
}

/** Seconds of `body`, measured with the monotonic clock. */
export async function timeAsync(body: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await body();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function quietly(read: () => string): string {
  try {
    return read().trim();
  } catch {
    return 'unknown';
  }
}

export function describeMachine(chromiumPath: string): Record<string, string | number> {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    debian: quietly(() => readFileSync('/etc/debian_version', 'utf8')),
    chromium: quietly(() => execFileSync(chromiumPath, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 20_000 })),
    node: process.version,
    loadAverageAtStart: os.loadavg().map((load) => load.toFixed(2)).join(' '),
  };
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
