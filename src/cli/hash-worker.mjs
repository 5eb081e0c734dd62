// Body of the CLI's hashing thread (src/cli/hash-thread.ts): SHA-256 with node:crypto for several files at once,
// each fed in the order its messages arrive. Bytes handed over move back once hashed; copies are dropped.
// Plain JavaScript, so the thread starts without the TypeScript loader.
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

const hashes = new Map();
parentPort.on('message', (message) => {
  const { op, file, seq } = message;
  try {
    if (op === 'open') hashes.set(file, createHash('sha256'));
    else if (op === 'update') {
      hashes.get(file).update(message.bytes);
      if (seq !== undefined) parentPort.postMessage({ seq, bytes: message.bytes }, [message.bytes.buffer]);
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
