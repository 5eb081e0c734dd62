// Node adapters: model folders (nested files, symlinks, skipped .git), file sources and sinks, and the
// output folder that is only visible under its final name after commit().
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidFileError, InvalidInputError, WorkbenchError } from '../../src/base/errors';
import { createFileSink, createNodeOutputFolder, openFileSource, openNodeModelFolder } from '../../src/platform/node-files';
import { checkedRelativePath } from '../../src/ports/folder';
import { readModelConfig, readShardMap } from '../../src/formats/hf-folder';
import { TOY_LLAMA_DIR } from '../helpers/fixtures';

let directory = '';
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'node-files-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

const exists = (path: string) => stat(path).then(() => true, () => false);

describe('openNodeModelFolder', () => {
  it('lists nested files with / paths, follows symlinks, skips .git, and reads text and ranges', async () => {
    const model = join(directory, 'model');
    await mkdir(join(model, 'onnx'), { recursive: true });
    await mkdir(join(model, '.git', 'objects'), { recursive: true });
    await writeFile(join(model, 'config.json'), '{"a": 1}');
    await writeFile(join(model, 'onnx', 'model.onnx'), new Uint8Array([1, 2, 3, 4, 5]));
    await writeFile(join(model, '.git', 'objects', 'x'), 'blob');
    await writeFile(join(directory, 'blob'), 'linked');
    await symlink(join(directory, 'blob'), join(model, 'tokenizer.json'));
    await symlink(join(directory, 'missing'), join(model, 'dangling'));
    await symlink(model, join(model, 'onnx', 'loop'));
    const folder = await openNodeModelFolder(model);
    expect(folder.list()).toEqual(['config.json', 'onnx/model.onnx', 'tokenizer.json']);
    expect(await folder.readText('tokenizer.json')).toBe('linked');
    const source = await folder.open('onnx/model.onnx');
    expect(source.size).toBe(5);
    expect(source.name).toBe(join(model, 'onnx/model.onnx'));
    expect([...(await source.read(1, 3))]).toEqual([2, 3, 4]);
    expect([...(await source.read(3, 100))]).toEqual([4, 5]); // short only past the end
    expect((await source.read(9, 4)).byteLength).toBe(0);
    await expect(source.read(-1, 2)).rejects.toThrow(InvalidInputError);
    await expect(folder.open('nope.bin')).rejects.toThrow(/has no file "nope.bin"/);
  });

  it('reads the toy-llama fixture folder end to end (config and shard map)', async () => {
    const folder = await openNodeModelFolder(TOY_LLAMA_DIR);
    expect((await readModelConfig(folder)).numLayers).toBe(4);
    const map = await readShardMap(folder);
    expect(map.shards).toEqual(['model.safetensors']);
    expect(map.tensorToShard.get('model.layers.3.mlp.down_proj.weight')).toBe('model.safetensors');
  });

  it('refuses a missing folder, a file given as a folder, and non-UTF-8 text', async () => {
    await expect(openNodeModelFolder(join(directory, 'absent'))).rejects.toThrow(/absent: does not exist/);
    await writeFile(join(directory, 'file'), 'x');
    await expect(openNodeModelFolder(join(directory, 'file'))).rejects.toThrow(/is not a folder/);
    await writeFile(join(directory, 'bad.json'), new Uint8Array([0xff, 0xfe, 0x00]));
    const folder = await openNodeModelFolder(directory);
    await expect(folder.readText('bad.json')).rejects.toThrow(InvalidFileError);
    await expect(folder.readText('bad.json')).rejects.toThrow(/bad.json: is not valid UTF-8 text/);
  });
});

describe('file sources and sinks', () => {
  it('a sink writes chunks in order, even when writes are not awaited one by one', async () => {
    const path = join(directory, 'out.bin');
    const sink = createFileSink(path);
    const chunks = Array.from({ length: 50 }, (_, index) => new Uint8Array(1000).fill(index));
    await Promise.all(chunks.map((chunk) => sink.write(chunk)));
    await sink.close();
    const written = await readFile(path);
    expect(written.byteLength).toBe(50_000);
    chunks.forEach((chunk, index) => expect(written.subarray(index * 1000, (index + 1) * 1000)).toEqual(Buffer.from(chunk)));
    await expect(sink.write(new Uint8Array(1))).rejects.toThrow(/write after close/);
    const source = await openFileSource(path);
    expect(source.size).toBe(50_000);
    expect([...(await source.read(1999, 2))]).toEqual([1, 2]);
    await source.close();
    await expect(source.read(0, 1)).rejects.toThrow(WorkbenchError);
  });

  it('an empty sink still creates its file; abort deletes it', async () => {
    const empty = createFileSink(join(directory, 'empty'));
    await empty.close();
    expect((await stat(join(directory, 'empty'))).size).toBe(0);
    const aborted = createFileSink(join(directory, 'aborted'));
    await aborted.write(new Uint8Array(10));
    await aborted.abort();
    expect(await exists(join(directory, 'aborted'))).toBe(false);
  });

  it('openFileSource refuses folders and missing files with the path named', async () => {
    await expect(openFileSource(directory)).rejects.toThrow(/is not a regular file/);
    await expect(openFileSource(join(directory, 'x.safetensors'))).rejects.toThrow(/x.safetensors: does not exist/);
  });
});

describe('createNodeOutputFolder', () => {
  it('writes under OUT.partial and renames to OUT on commit', async () => {
    const out = join(directory, 'edited');
    const output = await createNodeOutputFolder(out);
    const sink = await output.createFile('model.safetensors');
    await sink.write(new TextEncoder().encode('weights'));
    const nested = await output.createFile('onnx/model.onnx');
    await nested.write(new Uint8Array([7]));
    await nested.close();
    expect(await exists(out)).toBe(false);
    expect(await exists(join(directory, 'edited.partial', 'onnx', 'model.onnx'))).toBe(true);
    await expect(output.commit()).rejects.toThrow(/still open: model.safetensors/);
    await sink.close();
    await output.commit();
    expect(await exists(join(directory, 'edited.partial'))).toBe(false);
    expect(await readFile(join(out, 'model.safetensors'), 'utf8')).toBe('weights');
    expect((await readdir(out)).sort()).toEqual(['model.safetensors', 'onnx']);
    await expect(output.createFile('late')).rejects.toThrow(/already committed/);
  });

  it('refuses a non-empty OUT (nothing written), accepts an empty one, and replaces a stale OUT.partial', async () => {
    const out = join(directory, 'out');
    await mkdir(out);
    await writeFile(join(out, 'keep.txt'), 'mine');
    const error = await createNodeOutputFolder(out).catch((caught) => caught);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe(`${out}: already exists and is not empty; choose another --out or remove it first`);
    expect(await exists(`${out}.partial`)).toBe(false);
    await writeFile(join(directory, 'plain'), 'x');
    await expect(createNodeOutputFolder(join(directory, 'plain'))).rejects.toThrow(/already exists and is not a folder/);

    const emptyOut = join(directory, 'empty-out');
    await mkdir(emptyOut);
    await mkdir(`${emptyOut}.partial`);
    await writeFile(`${emptyOut}.partial/stale.bin`, 'old crash');
    const output = await createNodeOutputFolder(emptyOut);
    expect(await readdir(`${emptyOut}.partial`)).toEqual([]);
    const sink = await output.createFile('a.txt');
    await sink.write(new TextEncoder().encode('a'));
    await sink.close();
    await output.commit();
    expect(await readdir(emptyOut)).toEqual(['a.txt']);
  });

  it('abort removes the partial output, including files still being written', async () => {
    const out = join(directory, 'aborted');
    const output = await createNodeOutputFolder(out);
    const sink = await output.createFile('big.bin');
    await sink.write(new Uint8Array(1024));
    await output.abort();
    expect(await exists(`${out}.partial`)).toBe(false);
    expect(await exists(out)).toBe(false);
    await output.abort(); // idempotent
  });

  it('keeps every file inside the folder', async () => {
    const output = await createNodeOutputFolder(join(directory, 'safe'));
    for (const path of ['../escape', '/abs', 'a//b', './a', 'a\\b', '']) {
      await expect(output.createFile(path)).rejects.toThrow(InvalidInputError);
    }
    const first = await output.createFile('x');
    await first.close();
    await expect(output.createFile('x')).rejects.toThrow(/written twice/);
    expect(checkedRelativePath('onnx/model.onnx_data')).toEqual(['onnx', 'model.onnx_data']);
    await output.abort();
  });
});
