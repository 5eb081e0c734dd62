/**
 * The UI's handle on the search worker: a comlink proxy dressed as SearchApi (cancel by call id, progress and
 * each finished trial as comlink proxies, failures rebuilt as named error classes; see worker-client.ts).
 */
import * as Comlink from 'comlink';
import type { SearchApi, SearchCallOptions, SearchRequest, SearchWorkerEndpoint } from '../protocol/search-api';
import { onFirstUse, WorkerCalls } from './worker-client';

export class SearchClient implements SearchApi {
  private readonly calls: WorkerCalls;

  constructor(private readonly remote: Comlink.Remote<SearchWorkerEndpoint>) {
    this.calls = new WorkerCalls((callId) => remote.cancel(callId));
  }

  search(request: SearchRequest, options?: SearchCallOptions) {
    const onTrial = options?.onTrial ? Comlink.proxy(options.onTrial) : undefined;
    return this.calls.run(options, (callId, onProgress) => this.remote.search(callId, request, onTrial, onProgress));
  }
}

/** One search worker per page: it loads its own copy of the model, so a search does not block the chat. */
export const searchClient = onFirstUse(() => {
  const worker = new Worker(new URL('../../workers/search.worker.ts', import.meta.url), { type: 'module', name: 'search' });
  return new SearchClient(Comlink.wrap<SearchWorkerEndpoint>(worker));
});
