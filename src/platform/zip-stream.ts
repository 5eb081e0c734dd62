/**
 * Stored (uncompressed) zip archives of any size, written as a stream and read back by ranges.
 *
 * The writer emits bytes in order and keeps only each entry's name, offset, size and CRC: an archive of
 * 8 GB costs no more memory than one of 8 kB. Sizes are not known when an entry starts, so every entry is
 * written the streaming way (general-purpose flag bit 3, a data descriptor after the data) and in ZIP64 form
 * (APPNOTE 4.5.3): each local header carries a ZIP64 extra field and its data descriptor 8-byte sizes. The
 * central directory uses ZIP64 fields only for values that need them (≥ 0xFFFFFFFF), and the end record is
 * preceded by a ZIP64 end record and locator only when the archive needs them (0xFFFF entries or more, or a
 * directory that starts past 4 GiB or is that large). Every entry has one fixed DOS timestamp, so the same files give
 * the same archive bytes. Names are UTF-8 (flag bit 11).
 *
 * The reader understands what the writer writes (and any stored archive, ZIP64 or not), for the export's
 * verification pass: entry name → its data as a ByteSource range, never the whole archive in memory.
 */
import { InvalidFileError, InvalidInputError } from '../base/errors';
import { Crc32 } from '../core/crc32';
import type { ByteSource } from '../ports/bytes';

const LOCAL_HEADER = 0x04034b50;
const DATA_DESCRIPTOR = 0x08074b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_DIRECTORY = 0x06054b50;
const ZIP64_END_OF_DIRECTORY = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EXTRA_TAG = 0x0001;
/** "Version needed to extract" 4.5: ZIP64. */
const VERSION_ZIP64 = 45;
/** Bit 3: sizes and CRC follow the data; bit 11: the name is UTF-8. */
const FLAGS = 0x0008 | 0x0800;
/** A 32-bit field with this value says "see the ZIP64 extra field". */
const SATURATED_32 = 0xffffffff;
const SATURATED_16 = 0xffff;
/** 1980-01-01 00:00:00, the first DOS date: time 0, date (0 << 9) | (1 << 5) | 1. */
const DOS_TIME = 0;
const DOS_DATE = 0x0021;

/** Writes a value below 2^53 as a little-endian 64-bit integer. */
function setUint64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value % 2 ** 32, true);
  view.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
}

function getUint64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
}

interface EntryRecord {
  name: Uint8Array;
  offset: number;
  size: number;
  crc: number;
}

export class StoredZipWriter {
  private readonly entries: EntryRecord[] = [];
  private current: { record: EntryRecord; crc: Crc32 } | null = null;
  private offset = 0;
  private finished = false;

  /** `emit` receives the archive's bytes in order; data chunks are passed through as given, never copied. */
  constructor(private readonly emit: (chunk: Uint8Array) => Promise<void>) {}

  /** Bytes emitted so far. */
  get bytesWritten(): number {
    return this.offset;
  }

  private async put(chunk: Uint8Array): Promise<void> {
    this.offset += chunk.byteLength;
    await this.emit(chunk);
  }

  async beginEntry(path: string): Promise<void> {
    if (this.finished) throw new InvalidInputError(`zip: ${path} added after the archive was finished`);
    if (this.current) throw new InvalidInputError(`zip: ${path} started while ${new TextDecoder().decode(this.current.record.name)} is still open`);
    const name = new TextEncoder().encode(path);
    if (name.byteLength > SATURATED_16) throw new InvalidInputError(`zip: the name ${path.slice(0, 80)}… is longer than a zip entry name can be`);
    const header = new Uint8Array(30 + name.byteLength + 20);
    const view = new DataView(header.buffer);
    view.setUint32(0, LOCAL_HEADER, true);
    view.setUint16(4, VERSION_ZIP64, true);
    view.setUint16(6, FLAGS, true);
    view.setUint16(8, 0, true); // stored
    view.setUint16(10, DOS_TIME, true);
    view.setUint16(12, DOS_DATE, true);
    // CRC 0 and sizes saturated: the data descriptor holds them, and the extra field says they are 8 bytes wide.
    view.setUint32(18, SATURATED_32, true);
    view.setUint32(22, SATURATED_32, true);
    view.setUint16(26, name.byteLength, true);
    view.setUint16(28, 20, true);
    header.set(name, 30);
    view.setUint16(30 + name.byteLength, ZIP64_EXTRA_TAG, true);
    view.setUint16(32 + name.byteLength, 16, true); // two 8-byte sizes, zero until the descriptor
    const record = { name, offset: this.offset, size: 0, crc: 0 };
    this.current = { record, crc: new Crc32() };
    await this.put(header);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (!this.current) throw new InvalidInputError('zip: data written outside an entry');
    this.current.crc.update(chunk);
    this.current.record.size += chunk.byteLength;
    await this.put(chunk);
  }

  async endEntry(): Promise<void> {
    if (!this.current) throw new InvalidInputError('zip: no entry is open');
    const { record, crc } = this.current;
    record.crc = crc.value();
    this.current = null;
    const descriptor = new Uint8Array(24);
    const view = new DataView(descriptor.buffer);
    view.setUint32(0, DATA_DESCRIPTOR, true);
    view.setUint32(4, record.crc, true);
    setUint64(view, 8, record.size); // compressed = uncompressed (stored)
    setUint64(view, 16, record.size);
    this.entries.push(record);
    await this.put(descriptor);
  }

  /** Drops an entry that will not be finished (its bytes stay in the stream, unlisted: abort the archive). */
  dropEntry(): void {
    this.current = null;
  }

  /** Writes the central directory and end records; returns the archive's total size. */
  async finish(): Promise<number> {
    if (this.current) throw new InvalidInputError(`zip: ${new TextDecoder().decode(this.current.record.name)} is still open at the end`);
    if (this.finished) throw new InvalidInputError('zip: finished twice');
    this.finished = true;
    const directoryOffset = this.offset;
    for (const entry of this.entries) await this.put(centralHeader(entry));
    const directorySize = this.offset - directoryOffset;
    const count = this.entries.length;
    const needsZip64 = count >= SATURATED_16 || directoryOffset >= SATURATED_32 || directorySize >= SATURATED_32;
    if (needsZip64) {
      const zip64EndOffset = this.offset;
      const record = new Uint8Array(56 + 20);
      const view = new DataView(record.buffer);
      view.setUint32(0, ZIP64_END_OF_DIRECTORY, true);
      setUint64(view, 4, 44); // size of the rest of this record
      view.setUint16(12, VERSION_ZIP64, true);
      view.setUint16(14, VERSION_ZIP64, true);
      // disk numbers at 16 and 20 stay 0
      setUint64(view, 24, count);
      setUint64(view, 32, count);
      setUint64(view, 40, directorySize);
      setUint64(view, 48, directoryOffset);
      view.setUint32(56, ZIP64_LOCATOR, true);
      setUint64(view, 64, zip64EndOffset); // disk 0 at 60
      view.setUint32(72, 1, true); // one disk
      await this.put(record);
    }
    const end = new Uint8Array(22);
    const view = new DataView(end.buffer);
    view.setUint32(0, END_OF_DIRECTORY, true);
    view.setUint16(8, Math.min(count, SATURATED_16), true);
    view.setUint16(10, Math.min(count, SATURATED_16), true);
    view.setUint32(12, Math.min(directorySize, SATURATED_32), true);
    view.setUint32(16, Math.min(directoryOffset, SATURATED_32), true);
    await this.put(end);
    return this.offset;
  }
}

function centralHeader(entry: EntryRecord): Uint8Array {
  // ZIP64 extra: only the saturated fields, in the order uncompressed size, compressed size, offset.
  const wide: number[] = [];
  if (entry.size >= SATURATED_32) wide.push(entry.size, entry.size);
  if (entry.offset >= SATURATED_32) wide.push(entry.offset);
  const extraLength = wide.length > 0 ? 4 + 8 * wide.length : 0;
  const header = new Uint8Array(46 + entry.name.byteLength + extraLength);
  const view = new DataView(header.buffer);
  view.setUint32(0, CENTRAL_HEADER, true);
  view.setUint16(4, VERSION_ZIP64, true); // made by: MS-DOS attributes, spec 4.5
  view.setUint16(6, VERSION_ZIP64, true);
  view.setUint16(8, FLAGS, true);
  view.setUint16(10, 0, true);
  view.setUint16(12, DOS_TIME, true);
  view.setUint16(14, DOS_DATE, true);
  view.setUint32(16, entry.crc, true);
  view.setUint32(20, Math.min(entry.size, SATURATED_32), true);
  view.setUint32(24, Math.min(entry.size, SATURATED_32), true);
  view.setUint16(28, entry.name.byteLength, true);
  view.setUint16(30, extraLength, true);
  // comment length, disk, internal and external attributes stay 0
  view.setUint32(42, Math.min(entry.offset, SATURATED_32), true);
  header.set(entry.name, 46);
  if (extraLength > 0) {
    const at = 46 + entry.name.byteLength;
    view.setUint16(at, ZIP64_EXTRA_TAG, true);
    view.setUint16(at + 2, 8 * wide.length, true);
    wide.forEach((value, index) => setUint64(view, at + 4 + 8 * index, value));
  }
  return header;
}

/** A range of another source: one stored entry inside the zip. */
class SliceByteSource implements ByteSource {
  constructor(
    readonly name: string,
    private readonly source: ByteSource,
    private readonly start: number,
    readonly size: number,
  ) {}
  read(offset: number, length: number): Promise<Uint8Array> {
    return this.source.read(this.start + offset, Math.max(0, Math.min(length, this.size - offset)));
  }
}

/** One entry as the central directory describes it. */
export interface StoredZipEntry {
  name: string;
  /** Offset of the local header. */
  offset: number;
  size: number;
  crc: number;
  data: ByteSource;
}

/** The end-of-directory values, from the ZIP64 end record where the classic one is saturated. */
async function readDirectoryLocation(zip: ByteSource): Promise<{ count: number; directorySize: number; directoryOffset: number }> {
  const tailLength = Math.min(zip.size, 22 + 65535 + 20);
  const tailStart = zip.size - tailLength;
  const tail = await zip.read(tailStart, tailLength);
  const tailView = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let end = -1;
  for (let at = tail.byteLength - 22; at >= 0; at--) {
    if (tailView.getUint32(at, true) === END_OF_DIRECTORY) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new InvalidFileError(zip.name, 'has no zip end-of-central-directory record');
  const count = tailView.getUint16(end + 10, true);
  const directorySize = tailView.getUint32(end + 12, true);
  const directoryOffset = tailView.getUint32(end + 16, true);
  if (count !== SATURATED_16 && directorySize !== SATURATED_32 && directoryOffset !== SATURATED_32) return { count, directorySize, directoryOffset };
  if (end < 20 || tailView.getUint32(end - 20, true) !== ZIP64_LOCATOR) throw new InvalidFileError(zip.name, 'has a saturated end record but no ZIP64 locator before it');
  const zip64End = getUint64(tailView, end - 20 + 8);
  if (zip64End + 56 > tailStart + end - 20) throw new InvalidFileError(zip.name, 'ZIP64 end record lies past its locator');
  const record = await zip.read(zip64End, 56);
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  if (record.byteLength < 56 || view.getUint32(0, true) !== ZIP64_END_OF_DIRECTORY) throw new InvalidFileError(zip.name, 'ZIP64 end-of-central-directory record missing');
  return { count: getUint64(view, 32), directorySize: getUint64(view, 40), directoryOffset: getUint64(view, 48) };
}

/** Reads a stored zip's central directory: every entry in archive order. Refuses compressed entries. */
export async function readStoredZipDirectory(zip: ByteSource): Promise<StoredZipEntry[]> {
  const { count, directorySize, directoryOffset } = await readDirectoryLocation(zip);
  if (directoryOffset + directorySize > zip.size) throw new InvalidFileError(zip.name, 'central directory lies past the end of the archive');
  if (count * 46 > directorySize) throw new InvalidFileError(zip.name, `central directory is too short for ${count} entries`);
  const directory = await zip.read(directoryOffset, directorySize);
  const view = new DataView(directory.buffer, directory.byteOffset, directory.byteLength);
  const entries: StoredZipEntry[] = [];
  let at = 0;
  for (let index = 0; index < count; index++) {
    if (at + 46 > directory.byteLength || view.getUint32(at, true) !== CENTRAL_HEADER) throw new InvalidFileError(zip.name, `central directory entry ${index} is malformed`);
    const method = view.getUint16(at + 10, true);
    const crc = view.getUint32(at + 16, true);
    let storedSize = view.getUint32(at + 20, true);
    let size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    let offset = view.getUint32(at + 42, true);
    if (at + 46 + nameLength + extraLength > directory.byteLength) throw new InvalidFileError(zip.name, `central directory entry ${index} runs past the directory`);
    const name = new TextDecoder().decode(directory.subarray(at + 46, at + 46 + nameLength));
    if (size === SATURATED_32 || storedSize === SATURATED_32 || offset === SATURATED_32) {
      const wide = zip64Extra(directory.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength));
      if (!wide) throw new InvalidFileError(zip.name, `${name}: saturated sizes but no ZIP64 extra field`);
      let field = 0;
      const next = () => {
        if (field + 8 > wide.byteLength) throw new InvalidFileError(zip.name, `${name}: ZIP64 extra field is too short`);
        const value = getUint64(new DataView(wide.buffer, wide.byteOffset, wide.byteLength), field);
        field += 8;
        return value;
      };
      if (size === SATURATED_32) size = next();
      if (storedSize === SATURATED_32) storedSize = next();
      if (offset === SATURATED_32) offset = next();
    }
    if (method !== 0 || storedSize !== size) throw new InvalidFileError(zip.name, `${name} is not stored uncompressed`);
    const local = await zip.read(offset, 30);
    const localView = new DataView(local.buffer, local.byteOffset, local.byteLength);
    if (local.byteLength < 30 || localView.getUint32(0, true) !== LOCAL_HEADER) throw new InvalidFileError(zip.name, `${name}: local header missing`);
    const dataStart = offset + 30 + localView.getUint16(26, true) + localView.getUint16(28, true);
    if (dataStart + size > zip.size) throw new InvalidFileError(zip.name, `${name}: data lies past the end of the archive`);
    entries.push({ name, offset, size, crc, data: new SliceByteSource(`${zip.name}:${name}`, zip, dataStart, size) });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** The ZIP64 extra field's data among an entry's extra fields, or null. */
function zip64Extra(extra: Uint8Array): Uint8Array | null {
  const view = new DataView(extra.buffer, extra.byteOffset, extra.byteLength);
  for (let at = 0; at + 4 <= extra.byteLength; ) {
    const tag = view.getUint16(at, true);
    const length = view.getUint16(at + 2, true);
    if (tag === ZIP64_EXTRA_TAG) return extra.subarray(at + 4, Math.min(extra.byteLength, at + 4 + length));
    at += 4 + length;
  }
  return null;
}

/** Entry name → its data range, for the verification pass. */
export async function readStoredZipEntries(zip: ByteSource): Promise<Map<string, ByteSource>> {
  return new Map((await readStoredZipDirectory(zip)).map((entry) => [entry.name, entry.data]));
}
