/**
 * Hostile input at the platform and format layer: browser folder walking, text reads, download names and OPFS
 * staging (with an in-memory stand-in for FileSystemDirectoryHandle and Web Locks), the one external-data rule,
 * and the small guards every command relies on (strict config, prompt line ends, bounded messages).
 */
import { describe, expect, it } from 'vitest';
import { InvalidFileError, InvalidInputError } from '../../src/base/errors';
import { oneLine, MAX_ERROR_MESSAGE_CHARS } from '../../src/cli/main';
import { openCaptureSession } from '../../src/engine/capture';
import { externalDataFiles } from '../../src/engine/external-data';
import { parseDirectionFile } from '../../src/formats/direction-file';
import { parseModelConfig } from '../../src/formats/hf-folder';
import { checkedExternalData, encodeOnnxModel, float32Initializer, onnx, type ModelProto } from '../../src/formats/onnx';
import { parsePromptFile } from '../../src/formats/prompts';
import { parseStrictJson } from '../../src/formats/strict-json';
import { readBlobText, walkDirectoryHandle } from '../../src/platform/browser-folder';
import { openExportStaging, STAGING_ROOT, type StagingLocks } from '../../src/platform/browser-staging';
import { describeFsError } from '../../src/platform/node-files';
import { checkedRelativePath, MAX_TEXT_FILE_BYTES, MemoryModelFolder } from '../../src/ports/folder';
import { checkDownloadNames, downloadName } from '../../src/protocol/export-api';

/** Just enough of FileSystemDirectoryHandle / FileSystemFileHandle for the code under test. */
class FakeDirectory {
  readonly kind = 'directory';
  readonly entries = new Map<string, FakeDirectory | FakeFile>();
  constructor(readonly name: string) {}
  async getDirectoryHandle(name: string, options: { create?: boolean } = {}): Promise<FakeDirectory> {
    const entry = this.entries.get(name);
    if (entry instanceof FakeDirectory) return entry;
    if (entry || !options.create) throw new DOMException(name, 'NotFoundError');
    const created = new FakeDirectory(name);
    this.entries.set(name, created);
    return created;
  }
  async getFileHandle(name: string): Promise<FakeFile> {
    const entry = this.entries.get(name);
    if (entry instanceof FakeFile) return entry;
    throw new DOMException(name, 'NotFoundError');
  }
  async removeEntry(name: string): Promise<void> {
    if (!this.entries.delete(name)) throw new DOMException(name, 'NotFoundError');
  }
  async *values(): AsyncIterable<FakeDirectory | FakeFile> {
    yield* this.entries.values();
  }
}
class FakeFile {
  readonly kind = 'file';
  constructor(
    readonly name: string,
    private readonly text: string,
  ) {}
  async getFile(): Promise<Blob> {
    return new Blob([this.text]);
  }
}
const asHandle = (directory: FakeDirectory) => directory as unknown as FileSystemDirectoryHandle;

/** Web Locks for several "tabs": `held` are the locks other contexts hold. */
function fakeLocks(held: string[]): StagingLocks & { ours: string[] } {
  const ours: string[] = [];
  return {
    ours,
    async request(name: string, callback: () => Promise<void>) {
      ours.push(name);
      await callback();
      ours.splice(ours.indexOf(name), 1);
    },
    async query() {
      return { held: [...held, ...ours].map((name) => ({ name })) };
    },
  };
}

describe('browser model folders', () => {
  it('a folder nested deeper than 6 levels is an error naming it, not silently skipped', async () => {
    const root = new FakeDirectory('model');
    let directory = root;
    for (let depth = 0; depth < 8; depth++) directory = await directory.getDirectoryHandle(`d${depth}`, { create: true });
    directory.entries.set('weights.bin', new FakeFile('weights.bin', 'x'));
    await expect(walkDirectoryHandle(asHandle(root))).rejects.toThrow(/model\/d0\/d1\/d2\/d3\/d4\/d5\/d6: folders nested deeper than 6 levels/);
    const shallow = new FakeDirectory('ok');
    (await shallow.getDirectoryHandle('onnx', { create: true })).entries.set('model.onnx', new FakeFile('model.onnx', 'g'));
    expect((await walkDirectoryHandle(asHandle(shallow))).map((file) => file.path)).toEqual(['onnx/model.onnx']);
  });

  it('readText refuses oversized and non-UTF-8 files, naming them', async () => {
    await expect(readBlobText('m/config.json', new Blob([new Uint8Array([0x7b, 0xff, 0x7d])]))).rejects.toThrow(/m\/config\.json: is not valid UTF-8 text/);
    const huge = { size: MAX_TEXT_FILE_BYTES + 1, arrayBuffer: () => Promise.reject(new Error('must not be read')) } as unknown as Blob;
    await expect(readBlobText('m/tokenizer.json', huge)).rejects.toThrow(/m\/tokenizer\.json: is 268435457 bytes, too large for a text file/);
    expect(await readBlobText('m/a.txt', new Blob(['héllo']))).toBe('héllo');
  });
});

describe('per-file downloads', () => {
  it('flatten folders with "__" only where that stays unambiguous', () => {
    expect(downloadName('onnx/model.onnx')).toBe('onnx__model.onnx');
    expect(() => checkDownloadNames(['config.json', 'onnx/model.onnx', 'onnx/model.onnx_data'])).not.toThrow();
    expect(() => checkDownloadNames(['onnx/model.onnx', 'onnx__model.onnx'])).toThrow(/onnx__model\.onnx: as a download its folders become "__"/);
    expect(() => checkDownloadNames(['a/b.txt', 'A/B.txt'])).toThrow(/a\/b\.txt and A\/B\.txt would both download as A__B\.txt/);
  });

  it('keep a nested file and a top-level one of the same name apart, and map back to the folder path', () => {
    // An export of a folder with both model.onnx and onnx/model.onnx (plus the model card and manifest).
    const paths = ['README.md', 'abliteration.json', 'config.json', 'model.onnx', 'onnx/model.onnx', 'onnx/model.onnx_data', 'onnx/sub/graph.onnx'];
    expect(() => checkDownloadNames(paths)).not.toThrow();
    const names = paths.map(downloadName);
    expect(names).toEqual(['README.md', 'abliteration.json', 'config.json', 'model.onnx', 'onnx__model.onnx', 'onnx__model.onnx_data', 'onnx__sub__graph.onnx']);
    expect(new Set(names.map((name) => name.toLowerCase())).size).toBe(paths.length);
    // The documented way back: every "__" is a folder separator (no accepted name holds one of its own).
    expect(names.map((name) => name.split('__').join('/'))).toEqual(paths);
  });
});

describe('OPFS export staging', () => {
  it('each export gets its own folder; only this context’s previous one and abandoned ones are removed', async () => {
    const root = new FakeDirectory('opfs');
    const staging = await root.getDirectoryHandle(STAGING_ROOT, { create: true });
    await staging.getDirectoryHandle('export-othertab', { create: true }); // another tab, still exporting
    await staging.getDirectoryHandle('export-closedtab', { create: true }); // a tab that is gone
    const locks = fakeLocks([`${STAGING_ROOT}/export-othertab`]);
    const first = await openExportStaging({ root: asHandle(root), locks });
    expect([...staging.entries.keys()].sort()).toEqual([first.name, 'export-othertab'].sort());
    const second = await openExportStaging({ root: asHandle(root), locks });
    expect(second.name).not.toBe(first.name);
    expect([...staging.entries.keys()].sort()).toEqual([second.name, 'export-othertab'].sort());
  });

  it('without Web Locks only this context’s own earlier staging is removed', async () => {
    const root = new FakeDirectory('opfs');
    const staging = await root.getDirectoryHandle(STAGING_ROOT, { create: true });
    await staging.getDirectoryHandle('export-othertab', { create: true });
    const first = await openExportStaging({ root: asHandle(root) });
    const second = await openExportStaging({ root: asHandle(root) });
    expect([...staging.entries.keys()].sort()).toEqual([second.name, 'export-othertab'].sort());
    expect(staging.entries.has(first.name)).toBe(false);
  });
});

function graphWithExternalData(location: string): ModelProto {
  const weight = float32Initializer('w', [1], [0]);
  weight.rawData = new Uint8Array(0);
  weight.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  weight.externalData = [onnx.StringStringEntryProto.create({ key: 'location', value: location })];
  return onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: onnx.GraphProto.create({ name: 'g', initializer: [weight], node: [onnx.NodeProto.create({ opType: 'Identity', input: ['w'], output: ['y'] })] }),
  });
}

describe('external data: one rule for analyze, eval and ablate', () => {
  const files = new Set(['onnx/model.onnx', 'onnx/model.onnx_data', 'onnx/sub/part.bin']);
  it.each(['../secret.bin', '/etc/passwd', 'C:\\weights.bin', 'a/../../b'])('%s is refused, naming the graph and the location', (location) => {
    expect(() => checkedExternalData('m/onnx/model.onnx', 'onnx/model.onnx', graphWithExternalData(location), files)).toThrow(/^m\/onnx\/model\.onnx: names external data at .* not a file inside the model folder/);
  });

  it('plain relative locations resolve inside the graph folder; a missing one is said', () => {
    expect(checkedExternalData('g', 'onnx/model.onnx', graphWithExternalData('model.onnx_data'), files)).toEqual([{ location: 'model.onnx_data', path: 'onnx/model.onnx_data' }]);
    expect(checkedExternalData('g', 'onnx/model.onnx', graphWithExternalData('./sub/part.bin'), files)[0].path).toBe('onnx/sub/part.bin');
    expect(() => checkedExternalData('g', 'onnx/model.onnx', graphWithExternalData('gone.bin'), files)).toThrow(/stores weights in "gone\.bin", which is missing/);
    expect(checkedExternalData('g', 'onnx/model.onnx', graphWithExternalData('gone.bin'), files, false)[0].path).toBe('onnx/gone.bin');
  });

  it('eval, chat and inspection (externalDataFiles) and analyze (openCaptureSession) apply it before anything is loaded', async () => {
    const graph = graphWithExternalData('../../outside.bin');
    const folder = new MemoryModelFolder('m', new Map([['onnx/model.onnx', encodeOnnxModel(graph)]]));
    await expect(externalDataFiles(folder, 'onnx/model.onnx', graph)).rejects.toThrow(/m\/onnx\/model\.onnx: names external data at "\.\.\/\.\.\/outside\.bin"/);
    const factory = { name: 'never', create: () => Promise.reject(new Error('a session must not be created')) };
    await expect(openCaptureSession(factory, { name: 'm/onnx/model.onnx', bytes: encodeOnnxModel(graph), externalData: [] })).rejects.toThrow(/names external data at "\.\.\/\.\.\/outside\.bin"/);
  });
});

describe('small guards', () => {
  it('relative paths: no backslash, colon or control character anywhere', () => {
    for (const path of ['zz\\note.txt', 'C:notes.txt', 'a/b:stream', 'tab\there']) expect(() => checkedRelativePath(path)).toThrow(InvalidInputError);
    expect(checkedRelativePath('onnx/model.onnx_data')).toEqual(['onnx', 'model.onnx_data']);
  });

  it('config.json: a duplicate key and absurd sizes are refused, naming the file', () => {
    const base = { model_type: 'llama', hidden_size: 8, num_hidden_layers: 2, vocab_size: 10 };
    expect(() => parseModelConfig('c.json', '{"hidden_size": 8, "model_type": "llama", "hidden_size": 16, "num_hidden_layers": 2, "vocab_size": 10}')).toThrow(/^c\.json: is not valid JSON \(duplicate key "hidden_size"/);
    expect(() => parseModelConfig('c.json', JSON.stringify({ ...base, num_hidden_layers: 1e15 }))).toThrow(/num_hidden_layers is 1000000000000000, more than any model has \(limit 10000\)/);
    expect(() => parseModelConfig('c.json', JSON.stringify({ ...base, hidden_size: 2 ** 30 }))).toThrow(/hidden_size is 1073741824, more than any model has/);
    expect(parseModelConfig('c.json', JSON.stringify(base)).numLayers).toBe(2);
  });

  it('the strict parser hands root entries over one by one and still refuses a duplicate root key', () => {
    const seen: string[] = [];
    const root = parseStrictJson('{"a": {"x": 1}, "b": [2]}', undefined, (key) => seen.push(key));
    expect(seen).toEqual(['a', 'b']);
    expect(root).toEqual(new Map());
    expect(() => parseStrictJson('{"a": 1, "a": 2}', undefined, () => undefined)).toThrow(/duplicate key "a"/);
  });

  it('prompt files: a lone CR ends a line too, so classic Mac files do not merge prompts', () => {
    expect(parsePromptFile('p.txt', 'first\rsecond\r\nthird\nfourth').map((record) => record.messages[0].content)).toEqual(['first', 'second', 'third', 'fourth']);
  });

  it('a 100k-deep JSON direction is a clear error naming the file, not a stack overflow', () => {
    const deep = new TextEncoder().encode(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    expect(() => parseDirectionFile('deep.json', deep)).toThrow(InvalidFileError);
    expect(() => parseDirectionFile('deep.json', deep)).toThrow(/^deep\.json: row 0 entry 0 is an array, not a number/);
  });

  it('error lines are one line of bounded length', () => {
    const line = oneLine(`first\nsecond ${'x'.repeat(5 * MAX_ERROR_MESSAGE_CHARS)}`);
    expect(line).not.toMatch(/\n/);
    expect(line.length).toBeLessThan(MAX_ERROR_MESSAGE_CHARS + 60);
    expect(line).toMatch(/^first second x+… \(\d+ more characters\)$/);
  });

  it('file-system errors are named by their code: a read-only file system is not "does not exist"', () => {
    expect(describeFsError(Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' }))).toBe('is on a read-only file system');
    expect(describeFsError(Object.assign(new Error('x'), { code: 'ENOTDIR' }))).toBe('has a path component that is not a folder');
  });
});
