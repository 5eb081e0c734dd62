/**
 * The browser export's hashing worker (src/platform/hash-worker-client.ts's protocol): hash-wasm's SHA-256 for
 * several files at once, each fed in the order its messages arrive, so the export worker's thread is free for
 * reading, the edit and writing while this one hashes. Bytes handed over move back once hashed.
 */
import { createSHA256, type IHasher } from 'hash-wasm';
import type { HashReply, HashRequest } from '../src/platform/hash-worker-client';

const hashes = new Map<number, Promise<IHasher>>();
const port = self as unknown as { postMessage(message: HashReply, transfer?: Transferable[]): void; onmessage: ((event: MessageEvent<HashRequest>) => void) | null };

/** Messages are handled one after another: a hasher is created asynchronously, and its file's bytes must wait for it. */
let queue: Promise<void> = Promise.resolve();
port.onmessage = (event) => {
  const message = event.data;
  queue = queue.then(() => handle(message));
};

async function handle(message: HashRequest): Promise<void> {
  const { file, seq } = message;
  try {
    if (message.op === 'open') {
      hashes.set(
        file,
        createSHA256().then((hasher) => (hasher.init(), hasher)),
      );
    } else if (message.op === 'update') {
      (await hasherOf(file)).update(message.bytes);
      if (seq !== undefined) port.postMessage({ seq, bytes: message.bytes }, [message.bytes.buffer]);
    } else if (message.op === 'digest') {
      const hex = (await hasherOf(file)).digest('hex');
      hashes.delete(file);
      port.postMessage({ seq: seq!, hex });
    } else {
      throw new Error('this worker cannot read files');
    }
  } catch (error) {
    hashes.delete(file);
    if (seq !== undefined) port.postMessage({ seq, error: (error as Error)?.message ?? String(error) });
  }
}

function hasherOf(file: number): Promise<IHasher> {
  const hasher = hashes.get(file);
  if (!hasher) throw new Error(`no hash open for file ${file}`);
  return hasher;
}
