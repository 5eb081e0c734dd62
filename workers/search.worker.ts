/**
 * The recipe search worker: SearchService behind comlink, on onnxruntime-web through transformers.js (set up
 * as the chat worker does). Calls carry an id so the UI can stop a search; failures travel as envelopes.
 */
import * as Comlink from 'comlink';
import { env } from '@huggingface/transformers';
import { openFolderDescriptor } from '../src/platform/browser-folder';
import { configureOrtWeb } from '../src/platform/ort-web';
import type { Progress } from '../src/base/progress';
import type { SearchWorkerEndpoint, TrialRecord } from '../src/protocol/search-api';
import { yieldBeforeEveryRun } from './chat-yield';
import { createWorkerCallRunner } from './expose-service';
import { SearchService } from './search-service';

configureOrtWeb();
// Without a turn of the event loop between forward passes, Stop (a `cancel` message) would wait for the search.
yieldBeforeEveryRun();
env.allowRemoteModels = false;
env.useBrowserCache = false;

const service = new SearchService({ openFolder: openFolderDescriptor, device: (backend) => backend });
const calls = createWorkerCallRunner();

const endpoint: SearchWorkerEndpoint = {
  search: (callId, request, onTrial?: (trial: TrialRecord) => void, onProgress?: (event: Progress) => void) =>
    calls.envelope(callId, (signal) => service.search(request, { signal, ...(onTrial ? { onTrial } : {}), ...(onProgress ? { onProgress } : {}) })),
  cancel: (callId) => calls.cancel(callId),
};

Comlink.expose(endpoint);
