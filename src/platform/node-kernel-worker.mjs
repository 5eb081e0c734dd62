// Entry of a kernel worker thread: the kernels are TypeScript, so the thread registers tsx (as bin/abliterate.mjs
// does for the main thread) before importing them.
import { register } from 'tsx/esm/api';

register();
await import('./node-kernel-worker.ts');
