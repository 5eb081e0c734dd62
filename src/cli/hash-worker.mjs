// Body of the CLI's hashing thread (src/cli/hash-thread.ts): SHA-256 with node:crypto for several files at once,
// each fed in the order its messages arrive. Bytes handed over move back once hashed; copies are dropped; ranges
// of a file (the output's own copy of its input) are read here, so they never pass through the main thread.
// Plain JavaScript, so the thread starts without the TypeScript loader.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

const hashes = new Map();
/** For ranges this thread reads itself: one reused buffer, so a gigabyte of reads allocates nothing. */
const READ_PIECE_BYTES = 8 * 1024 * 1024;
let readBuffer = null;

function hashFileRange(hash, path, offset, length) {
  readBuffer ??= Buffer.allocUnsafeSlow(READ_PIECE_BYTES);
  const fd = openSync(path, 'r');
  try {
    for (let done = 0; done < length; ) {
      const read = readSync(fd, readBuffer, 0, Math.min(READ_PIECE_BYTES, length - done), offset + done);
      if (read === 0) throw new Error(`${path} ends before byte ${offset + length}`);
      hash.update(readBuffer.subarray(0, read));
      done += read;
    }
  } finally {
    closeSync(fd);
  }
}
parentPort.on('message', (message) => {
  const { op, file, seq } = message;
  try {
    if (op === 'open') hashes.set(file, createHash('sha256'));
    else if (op === 'update') {
      hashes.get(file).update(message.bytes);
      if (seq !== undefined) parentPort.postMessage({ seq, bytes: message.bytes }, [message.bytes.buffer]);
    } else if (op === 'updateFile') {
      hashFileRange(hashes.get(file), message.path, message.offset, message.length);
      parentPort.postMessage({ seq, hashed: message.length });
    } else if (op === 'digest') {
      const hex = hashes.get(file).digest('hex');
      hashes.delete(file);
      parentPort.postMessage({ seq, hex });
    }
  } catch (error) {
    hashes.delete(file);
    if (seq !== undefined) parentPort.postMessage({ seq, error: String(error?.message ?? error) });
  }
});
