/**
 * The Node output folder: written as `OUT.partial/` and renamed to `OUT` only on commit, with three guards
 * that keep a run from destroying what is not its own:
 * - OUT, OUT.partial and OUT.lock must lie outside every input folder, and no input inside them (compared after
 *   resolving symbolic links), so `--model X.partial --out X` can never delete the input;
 * - a lock file `OUT.lock`, created atomically (O_EXCL) with the holder's pid, host and start time: a second
 *   run to the same OUT fails at once naming the holder; a lock whose process is gone (same host) is taken over;
 * - `OUT.partial/` carries a marker file while it is written; a leftover OUT.partial is removed only when it
 *   carries that marker (the remains of a crashed run of this tool), never when it is a folder of the user's.
 */
import { constants as fsConstants, promises as fs, type Stats } from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { InvalidInputError, WorkbenchError } from '../base/errors';
import type { ByteSink, ByteSource } from '../ports/bytes';
import { checkedRelativePath, type OutputFolder } from '../ports/folder';
import { createFileSink, describeFsError } from './node-files';
import { createCopySink } from './node-copy-sink';

/** Marks an OUT.partial folder as this tool's own work in progress. */
export const PARTIAL_MARKER_FILE = '.abliterate-partial';
export const LOCK_SUFFIX = '.lock';

export interface NodeOutputOptions {
  /** Folders the run reads; the output may not overlap any of them. */
  inputs?: string[];
  /** Told when a stale lock or leftover partial output is replaced. */
  onNote?: (note: string) => void;
}

export interface OutputFileOptions {
  /** Permission bits of the file created (the source's, so a copy never widens them). */
  mode?: number;
  /** A source with a path on disk: the file is created as its copy, in the kernel (see OutputFolder.createFile). */
  copyOf?: ByteSource;
}

async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await fs.lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new InvalidInputError(`${path}: ${describeFsError(error)}`);
  }
}

/** The real path of `path`, which may not exist yet: its deepest existing ancestor resolved, the rest appended. */
async function realPathOfMaybeMissing(path: string): Promise<string> {
  const absolute = nodePath.resolve(path);
  const missing: string[] = [];
  let current = absolute;
  for (;;) {
    try {
      return nodePath.join(await fs.realpath(current), ...missing.reverse());
    } catch {
      const parent = nodePath.dirname(current);
      if (parent === current) return absolute;
      missing.push(nodePath.basename(current));
      current = parent;
    }
  }
}

/** True when `inner` is `outer` or lies inside it (both absolute, normalized). */
export function isSameOrInside(inner: string, outer: string): boolean {
  const relative = nodePath.relative(outer, inner);
  return relative === '' || (!relative.startsWith('..') && !nodePath.isAbsolute(relative));
}

/** Refuses an output whose folders overlap an input folder in any way. */
export async function checkOutputOutsideInputs(outDir: string, inputs: readonly string[]): Promise<void> {
  const final = nodePath.resolve(outDir);
  const outputs = [final, `${final}.partial`, `${final}${LOCK_SUFFIX}`];
  const realOutputs = await Promise.all(outputs.map(realPathOfMaybeMissing));
  for (const input of inputs) {
    const realInput = await realPathOfMaybeMissing(input);
    for (const [index, output] of realOutputs.entries()) {
      if (isSameOrInside(output, realInput) || isSameOrInside(realInput, output)) {
        const shown = [outDir, `${outDir}.partial`, `${outDir}${LOCK_SUFFIX}`][index];
        throw new InvalidInputError(
          `--out ${outDir}: the output (${shown}) overlaps the input folder ${input}; choose an --out outside the input (the input is never written or removed)`,
        );
      }
    }
  }
}

/** Throws unless `path` is absent or an empty folder (a real one: a symbolic link is refused). */
async function checkOutputAvailable(path: string, shownAs: string): Promise<void> {
  const stats = await lstatOrNull(path);
  if (!stats) return;
  if (stats.isSymbolicLink()) throw new InvalidInputError(`${shownAs}: is a symbolic link; give the output's real path as --out`);
  if (!stats.isDirectory()) throw new InvalidInputError(`${shownAs}: already exists and is not a folder; choose another --out`);
  if ((await fs.readdir(path)).length > 0) {
    throw new InvalidInputError(`${shownAs}: already exists and is not empty; choose another --out or remove it first`);
  }
}

interface LockHolder {
  pid: number;
  host: string;
  started: string;
}

function describeHolder(holder: LockHolder | null): string {
  return holder ? `pid ${holder.pid} on ${holder.host}, started ${holder.started}` : 'an unreadable lock';
}

async function readHolder(lockPath: string): Promise<LockHolder | null> {
  try {
    const value = JSON.parse(await fs.readFile(lockPath, 'utf8')) as Partial<LockHolder>;
    if (typeof value.pid === 'number' && typeof value.host === 'string' && typeof value.started === 'string') return value as LockHolder;
  } catch {
    /* unreadable or half-written */
  }
  return null;
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

export interface OutputLock {
  release(): Promise<void>;
}

/**
 * Takes `OUT.lock` atomically. A lock held by a live process (or on another host, where liveness cannot be
 * checked) is an error naming the holder; one left by a process that no longer exists on this host is taken over.
 */
export async function acquireOutputLock(outDir: string, onNote?: (note: string) => void): Promise<OutputLock> {
  const lockPath = `${nodePath.resolve(outDir)}${LOCK_SUFFIX}`;
  const shownLock = `${outDir}${LOCK_SUFFIX}`;
  const me: LockHolder = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await fs.open(lockPath, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, 0o644);
      try {
        await handle.writeFile(`${JSON.stringify(me)}\n`);
      } finally {
        await handle.close();
      }
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          const holder = await readHolder(lockPath);
          if (holder && holder.pid === me.pid && holder.host === me.host && holder.started === me.started) await fs.rm(lockPath, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new InvalidInputError(`${shownLock}: cannot create the output lock (${describeFsError(error)})`);
    }
    const holder = await readHolder(lockPath);
    const stale = holder !== null && holder.host === me.host && !processIsAlive(holder.pid);
    if (!stale || attempt > 0) {
      throw new InvalidInputError(
        `${outDir}: another run is writing this output (${describeHolder(holder)}; lock ${shownLock}); wait for it to finish, or remove the lock file if that run is gone`,
      );
    }
    // Move the stale lock aside (atomic): of two runs taking over at once, only one rename finds it.
    const aside = `${lockPath}.stale-${process.pid}`;
    try {
      await fs.rename(lockPath, aside);
    } catch {
      continue; // another run took it first; the retry reports that run as the holder
    }
    const moved = await readHolder(aside);
    if (!moved || moved.pid !== holder.pid || moved.started !== holder.started) {
      await fs.rename(aside, lockPath).catch(() => undefined); // a live lock was moved by mistake: put it back
      throw new InvalidInputError(`${outDir}: another run took over the output lock ${shownLock} at the same moment; try again`);
    }
    await fs.rm(aside, { force: true });
    onNote?.(`took over the lock ${shownLock} left by ${describeHolder(holder)}, which is no longer running`);
  }
  throw new InvalidInputError(`${outDir}: could not take the output lock ${shownLock}`);
}

/** Removes a leftover OUT.partial only when this tool created it (its marker is inside). */
async function clearOwnPartial(partialPath: string, shownAs: string, onNote?: (note: string) => void): Promise<void> {
  const stats = await lstatOrNull(partialPath);
  if (!stats) return;
  const ours = stats.isDirectory() && (await lstatOrNull(nodePath.join(partialPath, PARTIAL_MARKER_FILE)))?.isFile();
  if (!ours) {
    throw new InvalidInputError(
      `${shownAs}: already exists and was not created by abliterate (no ${PARTIAL_MARKER_FILE} inside); move it away or choose another --out`,
    );
  }
  await fs.rm(partialPath, { recursive: true, force: true });
  onNote?.(`removed ${shownAs}, the unfinished output of an earlier run`);
}

async function createdOrExplained<T>(path: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    throw new InvalidInputError(`${path}: cannot be created (${describeFsError(error)})`);
  }
}

export async function createNodeOutputFolder(outDir: string, options: NodeOutputOptions = {}): Promise<OutputFolder & { createFile(path: string, fileOptions?: OutputFileOptions): Promise<ByteSink> }> {
  const finalPath = nodePath.resolve(outDir);
  const partialPath = `${finalPath}.partial`;
  const shownPartial = `${outDir}.partial`;
  await checkOutputOutsideInputs(outDir, options.inputs ?? []);
  await checkOutputAvailable(finalPath, outDir);
  const partialStats = await lstatOrNull(partialPath);
  if (partialStats?.isSymbolicLink()) throw new InvalidInputError(`${shownPartial}: is a symbolic link, not an output of abliterate; remove it or choose another --out`);
  await createdOrExplained(nodePath.dirname(finalPath), () => fs.mkdir(nodePath.dirname(finalPath), { recursive: true }));
  const lock = await acquireOutputLock(outDir, options.onNote);
  try {
    await clearOwnPartial(partialPath, shownPartial, options.onNote);
    await createdOrExplained(shownPartial, () => fs.mkdir(partialPath));
    await fs.writeFile(nodePath.join(partialPath, PARTIAL_MARKER_FILE), `written by abliterate, pid ${process.pid}; removed when the output is complete\n`);
  } catch (error) {
    await lock.release();
    throw error;
  }
  const openSinks = new Map<string, ByteSink>();
  const created = new Set<string>();
  let state: 'writing' | 'committed' | 'aborted' = 'writing';

  return {
    name: outDir,
    concurrentFiles: true,
    async createFile(path: string, fileOptions: OutputFileOptions = {}) {
      if (state !== 'writing') throw new WorkbenchError(`${outDir}: output already ${state}`);
      const segments = checkedRelativePath(path);
      const key = segments.join('/');
      if (created.has(key) || key === PARTIAL_MARKER_FILE) throw new InvalidInputError(`${outDir}: file ${JSON.stringify(key)} written twice`);
      created.add(key);
      const target = nodePath.join(partialPath, ...segments);
      await createdOrExplained(nodePath.join(outDir, ...segments.slice(0, -1)), () => fs.mkdir(nodePath.dirname(target), { recursive: true }));
      const shown = nodePath.join(outDir, ...segments);
      const sink = fileOptions.copyOf?.filePath ? await createCopySink(fileOptions.copyOf, target, shown, fileOptions.mode) : createFileSink(target, fileOptions.mode);
      openSinks.set(key, sink);
      return {
        name: shown,
        write: (chunk: Uint8Array) => sink.write(chunk),
        ...(sink.copied && sink.skip ? { copied: sink.copied, skip: sink.skip } : {}),
        async close() {
          await sink.close();
          openSinks.delete(key);
        },
        async abort() {
          await sink.abort();
          openSinks.delete(key);
        },
      };
    },
    async commit() {
      if (state !== 'writing') throw new WorkbenchError(`${outDir}: output already ${state}`);
      if (openSinks.size > 0) {
        throw new WorkbenchError(`${outDir}: cannot finish while files are still open: ${[...openSinks.keys()].join(', ')}`);
      }
      await checkOutputAvailable(finalPath, outDir);
      if (await lstatOrNull(finalPath)) await fs.rmdir(finalPath); // an empty folder the user made for us
      await fs.rm(nodePath.join(partialPath, PARTIAL_MARKER_FILE), { force: true });
      try {
        await fs.rename(partialPath, finalPath);
      } catch (error) {
        throw new InvalidInputError(`${outDir}: the finished output could not be moved into place (${describeFsError(error)})`);
      }
      state = 'committed';
      await lock.release();
    },
    async abort() {
      if (state !== 'writing') return;
      state = 'aborted';
      for (const sink of openSinks.values()) await sink.abort().catch(() => undefined);
      openSinks.clear();
      await fs.rm(partialPath, { recursive: true, force: true });
      await lock.release();
    },
  };
}
