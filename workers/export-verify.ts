/**
 * The export's verification pass, run on the written output before it is made final: every file named in
 * abliteration.json is re-read from where it was written and its SHA-256 and size compared with the manifest;
 * every safetensors shard's header is re-parsed and compared byte for byte with the input shard's header (the
 * ablation changes tensor data only). No extra files, none missing. Any mismatch is an InvalidFileError naming
 * the file, and the output stays partial.
 */
import { createWasmSha256 } from '../src/platform/wasm-sha256';
import type { HashFactory } from '../src/engine/output-writer';
import { readSafetensorsHeader } from '../src/formats/safetensors';
import { MANIFEST_FILE, type AblationPlan } from '../src/engine/ablate';
import type { OutputReader } from '../src/platform/browser-output';
import type { ByteSource } from '../src/ports/bytes';
import { InvalidFileError, throwIfAborted } from '../src/base/errors';
import type { Progress } from '../src/base/progress';
import { ProgressReporter } from '../src/base/progress';

/** Chunk for re-reading: large enough to keep Blob reads efficient, small enough to stay out of the JS heap's way. */
const VERIFY_CHUNK_BYTES = 16 * 1024 * 1024;
/** Chunks handed to a hashing worker and not yet hashed, at most. */
const HASHES_IN_FLIGHT = 2;

export interface VerificationSummary {
  filesChecked: number;
  bytesChecked: number;
  headersChecked: number;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export async function verifyExport(
  reader: OutputReader,
  plan: AblationPlan,
  options: {
    signal?: AbortSignal;
    onProgress?: (event: Progress) => void;
    createHash?: HashFactory;
    /** SHA-256 of files already read back and hashed after they were closed (hashSource), by path. */
    early?: ReadonlyMap<string, Promise<string>>;
  },
): Promise<VerificationSummary> {
  const createHash = options.createHash ?? createWasmSha256;
  const progress = new ProgressReporter('verify', options.onProgress);
  const manifestSource = await reader.open(MANIFEST_FILE);
  let files: Record<string, { sha256: string; bytes: number }>;
  try {
    const manifest = JSON.parse(new TextDecoder().decode(await manifestSource.read(0, manifestSource.size)));
    files = manifest.files;
    if (!files || typeof files !== 'object') throw new Error('no files');
  } catch (error) {
    throw new InvalidFileError(manifestSource.name, `cannot be read back as the export manifest (${(error as Error).message})`);
  }
  const expected = new Set([...Object.keys(files), MANIFEST_FILE]);
  for (const path of reader.list()) if (!expected.has(path)) throw new InvalidFileError(path, 'was written but is not in the manifest');
  const present = new Set(reader.list());
  for (const path of expected) if (!present.has(path)) throw new InvalidFileError(path, 'is in the manifest but was not written');

  const totalBytes = Object.values(files).reduce((sum, file) => sum + file.bytes, 0);
  const summary: VerificationSummary = { filesChecked: 0, bytesChecked: 0, headersChecked: 0 };
  const shardHeaders = new Map(plan.shards.map((shard) => [shard.path, shard.header.rawHeader]));
  for (const [path, record] of Object.entries(files)) {
    throwIfAborted(options.signal);
    const source = await reader.open(path);
    if (source.size !== record.bytes) throw new InvalidFileError(source.name, `has ${source.size} bytes, the manifest says ${record.bytes}`);
    const inputHeader = shardHeaders.get(path);
    if (inputHeader) {
      const header = await readSafetensorsHeader(source);
      if (!sameBytes(header.rawHeader, inputHeader)) throw new InvalidFileError(source.name, 'its safetensors header differs from the input shard’s');
      summary.headersChecked++;
    }
    const early = options.early?.get(path);
    const digest = early
      ? await early
      : await hashSource(source, createHash, options.signal, (bytes) => {
          summary.bytesChecked += bytes;
          progress.report(totalBytes > 0 ? summary.bytesChecked / totalBytes : 1, path);
        });
    if (early) {
      summary.bytesChecked += source.size;
      progress.report(totalBytes > 0 ? summary.bytesChecked / totalBytes : 1, path);
    }
    if (digest !== record.sha256) throw new InvalidFileError(source.name, `reads back with SHA-256 ${digest}, but ${record.sha256} was written`);
    summary.filesChecked++;
  }
  progress.done();
  return summary;
}

/**
 * SHA-256 of a whole source as it reads back: one read ahead, and a hash on another thread (where it has one)
 * taking each chunk as it comes, at most HASHES_IN_FLIGHT waiting, so reading and hashing overlap.
 */
export async function hashSource(source: ByteSource, createHash: HashFactory, signal?: AbortSignal, onBytes?: (bytes: number) => void): Promise<string> {
  const hash = await createHash();
  const readAt = (offset: number) => source.read(offset, Math.min(VERIFY_CHUNK_BYTES, source.size - offset));
  let next = source.size > 0 ? readAt(0) : null;
  const hashing: Promise<unknown>[] = [];
  for (let offset = 0; offset < source.size; offset += VERIFY_CHUNK_BYTES) {
    throwIfAborted(signal);
    const chunk = await next!;
    next = offset + VERIFY_CHUNK_BYTES < source.size ? readAt(offset + VERIFY_CHUNK_BYTES) : null;
    next?.catch(() => undefined); // a failed read ahead is reported when its turn comes
    if (hash.updateOwned) {
      const hashed = hash.updateOwned(chunk);
      hashed.catch(() => undefined); // a failure surfaces from the awaits below, or from the digest
      hashing.push(hashed);
      if (hashing.length > HASHES_IN_FLIGHT) await hashing.shift();
    } else hash.update(chunk);
    onBytes?.(chunk.byteLength);
  }
  await Promise.all(hashing);
  return hash.hexDigest();
}
