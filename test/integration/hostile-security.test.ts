/**
 * Red-team scenarios for `abliterate ablate` as a security boundary: it never deletes or overwrites what it did
 * not create (the input, a user's own OUT.partial), never reads through a link out of the model folder (so a
 * hostile repository cannot smuggle local files into an upload), never widens file modes, and two runs to the
 * same output give one clean result and one immediate, clear failure.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModelFolder } from '../helpers/generate-models';
import { exists, listFiles, runCli, sha256OfFile, type CliResult } from './ablate-helpers';

const HIDDEN_SIZE = 48; // llama-bias fixture default
const SECRET = 'secret: not part of any model\n';

let workDir: string;
let model: string;
let direction: string;
let secretFile: string;

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hostile-security-'));
  model = (await generateModelFolder(path.join(workDir, 'model'), { kind: 'llama-bias', dtype: 'BF16', shards: 2 })).dir;
  direction = path.join(workDir, 'direction.json');
  await fs.writeFile(direction, JSON.stringify(Array.from({ length: HIDDEN_SIZE }, (_, i) => Math.sin(i + 1))));
  secretFile = path.join(workDir, 'secret.txt');
  await fs.writeFile(secretFile, SECRET);
});
afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

let caseNumber = 0;
async function copyOfModel(name = `case-${caseNumber++}`): Promise<string> {
  const copy = path.join(workDir, name);
  await fs.cp(model, copy, { recursive: true });
  return copy;
}

/** Every file and its hash: to show a folder is exactly as it was. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const files = await listFiles(dir);
  return Object.fromEntries(await Promise.all(files.map(async (file) => [file, await sha256OfFile(path.join(dir, file))] as const)));
}

function ablate(modelDir: string, out: string, extra: string[] = []): Promise<CliResult> {
  return runCli(['ablate', '--model', modelDir, '--direction', direction, '--out', out, ...extra]);
}

function errorLines(result: CliResult): string[] {
  return result.stderr.split('\n').filter((line) => line.startsWith('abliterate'));
}

/** The output is complete and consistent: every file the manifest lists has the listed hash, and nothing else is there. */
async function expectConsistentOutput(out: string): Promise<void> {
  const manifest = JSON.parse(await fs.readFile(path.join(out, 'abliteration.json'), 'utf8')) as { files: Record<string, { sha256: string }> };
  expect((await listFiles(out)).sort()).toEqual([...Object.keys(manifest.files), 'abliteration.json'].sort());
  for (const [file, record] of Object.entries(manifest.files)) expect(await sha256OfFile(path.join(out, file))).toBe(record.sha256);
}

describe('ablate never removes or writes into its input', () => {
  it('--model X.partial --out X is refused and the input stays intact', async () => {
    const input = await copyOfModel('victim.partial');
    const before = await snapshot(input);
    const result = await ablate(input, path.join(workDir, 'victim'));
    expect(result.code).not.toBe(0);
    expect(errorLines(result)).toHaveLength(1);
    expect(errorLines(result)[0]).toMatch(/overlaps the input folder/);
    expect(await snapshot(input)).toEqual(before);
    expect(await exists(path.join(workDir, 'victim'))).toBe(false);
  });

  it('an output inside the input, the input inside the output, or the same folder through a symlink: all refused', async () => {
    const input = await copyOfModel();
    const before = await snapshot(input);
    const link = path.join(workDir, `link-${caseNumber++}`);
    await fs.symlink(input, link);
    for (const out of [path.join(input, 'edited'), path.dirname(input), path.join(link, 'sub'), `${link}`]) {
      const result = await ablate(input, out);
      expect(result.code).not.toBe(0);
      expect(errorLines(result)[0]).toMatch(/overlaps the input folder|already exists|symbolic link/);
    }
    expect(await snapshot(input)).toEqual(before);
  });

  it("a user's own OUT.partial (not made by this tool) is never deleted", async () => {
    const out = path.join(workDir, `out-${caseNumber++}`);
    await fs.mkdir(`${out}.partial`);
    await fs.writeFile(`${out}.partial/thesis.tex`, 'years of work');
    const result = await ablate(model, out);
    expect(result.code).not.toBe(0);
    expect(errorLines(result)[0]).toMatch(/\.partial: already exists and was not created by abliterate/);
    expect(await fs.readFile(`${out}.partial/thesis.tex`, 'utf8')).toBe('years of work');
  });

  it('a leftover OUT.partial of a crashed run (marked) is replaced, and said', async () => {
    const out = path.join(workDir, `out-${caseNumber++}`);
    await fs.mkdir(`${out}.partial`);
    await fs.writeFile(`${out}.partial/.abliterate-partial`, 'crashed');
    await fs.writeFile(`${out}.partial/half.safetensors`, 'x');
    const result = await ablate(model, out);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/note: removed .*\.partial, the unfinished output of an earlier run/);
    await expectConsistentOutput(out);
    expect(await exists(`${out}.partial`)).toBe(false);
  });

  it('--out that is a symlink or a dangling symlink is refused before any work', async () => {
    for (const target of [path.join(workDir, 'elsewhere'), path.join(workDir, 'missing-target')]) {
      const out = path.join(workDir, `out-${caseNumber++}`);
      await fs.mkdir(path.join(workDir, 'elsewhere'), { recursive: true });
      await fs.symlink(target, out);
      const result = await ablate(model, out);
      expect(result.code).not.toBe(0);
      expect(errorLines(result)).toEqual([expect.stringMatching(/is a symbolic link; give the output's real path/)]);
      expect(await exists(`${out}.partial`)).toBe(false);
    }
  });
});

describe('ablate never follows a link out of the model folder', () => {
  it.each([
    ['a file linking to a secret', (dir: string) => fs.symlink(secretFile, path.join(dir, 'notes.txt')), 'notes.txt'],
    ['a folder linking to /etc', (dir: string) => fs.symlink('/etc', path.join(dir, 'etc')), 'etc'],
    ['a relative link climbing out', (dir: string) => fs.symlink('../secret.txt', path.join(dir, 'README.md')), 'README.md'],
    ['a dangling link naming a place outside', (dir: string) => fs.symlink('/nonexistent/x', path.join(dir, 'ghost.json')), 'ghost.json'],
  ])('%s: refused before work starts, naming the link; nothing from outside reaches OUT', async (_label, plant, linkName) => {
    const input = await copyOfModel();
    await plant(input);
    const out = path.join(workDir, `out-${caseNumber++}`);
    const result = await ablate(input, out);
    expect(result.code).not.toBe(0);
    expect(errorLines(result)).toHaveLength(1);
    expect(errorLines(result)[0]).toContain(path.join(input, linkName));
    expect(errorLines(result)[0]).toMatch(/symbolic link .*outside the model folder/);
    expect(await exists(out)).toBe(false);
    expect(await exists(`${out}.partial`)).toBe(false);
  });

  it('a link that stays inside the folder works', async () => {
    const input = await copyOfModel();
    await fs.mkdir(path.join(input, 'docs'));
    await fs.rename(path.join(input, 'config.json'), path.join(input, 'docs', 'config.json'));
    await fs.symlink('docs/config.json', path.join(input, 'config.json'));
    const out = path.join(workDir, `out-${caseNumber++}`);
    const result = await ablate(input, out);
    expect(result.code).toBe(0);
    await expectConsistentOutput(out);
    expect(await fs.readFile(path.join(out, 'config.json'))).toEqual(await fs.readFile(path.join(input, 'docs', 'config.json')));
  });

  it('the Hugging Face cache layout works: snapshot files linking to ../../blobs of the same repository', async () => {
    const repo = path.join(workDir, `hub-${caseNumber++}`, 'models--org--toy');
    const snapshotDir = path.join(repo, 'snapshots', 'abc123');
    await fs.mkdir(path.join(repo, 'blobs'), { recursive: true });
    await fs.mkdir(snapshotDir, { recursive: true });
    for (const file of await listFiles(model)) {
      const blob = `blob-${(await sha256OfFile(path.join(model, file))).slice(0, 16)}`;
      await fs.copyFile(path.join(model, file), path.join(repo, 'blobs', blob));
      const linkPath = path.join(snapshotDir, file);
      await fs.mkdir(path.dirname(linkPath), { recursive: true });
      await fs.symlink(path.relative(path.dirname(linkPath), path.join(repo, 'blobs', blob)), linkPath); // ../../blobs/<hash> at the top level
    }
    const out = path.join(workDir, `out-${caseNumber++}`);
    const result = await ablate(snapshotDir, out);
    expect(result.code).toBe(0);
    await expectConsistentOutput(out);
    // A link from the snapshot to another repository's blobs is not the cache layout: refused.
    const other = path.join(path.dirname(repo), 'models--evil--x', 'blobs');
    await fs.mkdir(other, { recursive: true });
    await fs.writeFile(path.join(other, 'b'), SECRET);
    await fs.symlink(path.join(other, 'b'), path.join(snapshotDir, 'extra.txt'));
    const refused = await ablate(snapshotDir, path.join(workDir, `out-${caseNumber++}`));
    expect(refused.code).not.toBe(0);
    expect(errorLines(refused)[0]).toMatch(/extra\.txt: is a symbolic link/);
  });

  it('copies never widen file modes', async () => {
    const input = await copyOfModel();
    await fs.writeFile(path.join(input, 'private.txt'), 'mine');
    await fs.chmod(path.join(input, 'private.txt'), 0o600);
    await fs.chmod(path.join(input, 'model-00001-of-00002.safetensors'), 0o640);
    const out = path.join(workDir, `out-${caseNumber++}`);
    expect((await ablate(input, out)).code).toBe(0);
    expect((await fs.stat(path.join(out, 'private.txt'))).mode & 0o777).toBe(0o600);
    expect((await fs.stat(path.join(out, 'model-00001-of-00002.safetensors'))).mode & 0o777 & ~0o640).toBe(0);
  });
});

describe('one output, one writer', () => {
  it('a lock held by a live process: the second run fails at once naming the holder, and leaves the lock alone', async () => {
    const out = path.join(workDir, `out-${caseNumber++}`);
    const holder = { pid: process.pid, host: os.hostname(), started: '2026-01-01T00:00:00.000Z' };
    await fs.writeFile(`${out}.lock`, JSON.stringify(holder));
    const result = await ablate(model, out);
    expect(result.code).not.toBe(0);
    expect(errorLines(result)).toEqual([expect.stringContaining(`another run is writing this output (pid ${process.pid} on ${os.hostname()}, started 2026-01-01T00:00:00.000Z`)]);
    expect(JSON.parse(await fs.readFile(`${out}.lock`, 'utf8'))).toEqual(holder);
    expect(await exists(`${out}.partial`)).toBe(false);
  });

  it('a stale lock (its process is gone) is taken over, and said', async () => {
    const out = path.join(workDir, `out-${caseNumber++}`);
    const gone = spawn(process.execPath, ['-e', '']);
    const deadPid = gone.pid!;
    await new Promise((resolve) => gone.on('exit', resolve));
    await fs.writeFile(`${out}.lock`, JSON.stringify({ pid: deadPid, host: os.hostname(), started: '2026-01-01T00:00:00.000Z' }));
    const result = await ablate(model, out);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`note: took over the lock .*pid ${deadPid}.*no longer running`));
    await expectConsistentOutput(out);
    expect(await exists(`${out}.lock`)).toBe(false);
  });

  it('two concurrent runs to the same OUT: one clean output, one clear failure', async () => {
    const out = path.join(workDir, `out-${caseNumber++}`);
    const results = await Promise.all([ablate(model, out), ablate(model, out)]);
    const succeeded = results.filter((result) => result.code === 0);
    const failed = results.filter((result) => result.code !== 0);
    expect(succeeded).toHaveLength(1);
    expect(failed).toHaveLength(1);
    // Whichever came second: the lock was held, or the first had already finished.
    expect(errorLines(failed[0]!)).toEqual([expect.stringMatching(/another run is writing this output|already exists and is not empty/)]);
    await expectConsistentOutput(out);
    expect(await exists(`${out}.partial`)).toBe(false);
    expect(await exists(`${out}.lock`)).toBe(false);
  });
});
