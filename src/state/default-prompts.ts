/**
 * The default prompt sets, read from public/prompts/ (the project's own sets). `index.json` there says which
 * file plays which part; without it the seed's harmful/harmless train splits and the plain/agent reference pair
 * are used.
 */
import { importPromptText } from './prompt-sets';
import { workbenchStore as store, type PromptSetName, type PromptSetState } from './store';

const PROMPTS_BASE_URL = `${import.meta.env.BASE_URL}prompts/`;

const FALLBACK_DEFAULTS: Record<PromptSetName, string> = {
  harmful: 'harmful.train.jsonl',
  harmless: 'harmless.train.jsonl',
  referenceA: 'reference_plain.jsonl',
  referenceB: 'reference_agent.jsonl',
};

/** The keys a prompts index may use for each part, most specific first. */
const INDEX_KEYS: Record<PromptSetName, string[]> = {
  harmful: ['harmful', 'refusal', 'a', 'A'],
  harmless: ['harmless', 'compliance', 'b', 'B'],
  referenceA: ['referenceA', 'reference_a', 'reference-a', 'c', 'C'],
  referenceB: ['referenceB', 'reference_b', 'reference-b', 'd', 'D'],
};

/** Reads `{"defaults": {"harmful": "harmful.train.jsonl", ...}}` (or the same keys at the top level). */
function defaultsFromIndex(index: unknown): Partial<Record<PromptSetName, string>> {
  if (typeof index !== 'object' || index === null) return {};
  const root = index as Record<string, unknown>;
  const table = (typeof root.defaults === 'object' && root.defaults !== null ? root.defaults : root) as Record<string, unknown>;
  const found: Partial<Record<PromptSetName, string>> = {};
  for (const name of Object.keys(INDEX_KEYS) as PromptSetName[]) {
    for (const key of INDEX_KEYS[name]) {
      const value = table[key];
      const file = typeof value === 'string' ? value : typeof value === 'object' && value !== null ? (value as Record<string, unknown>).train ?? (value as Record<string, unknown>).file : undefined;
      if (typeof file === 'string' && /\.(jsonl|txt)$/.test(file)) {
        found[name] = file;
        break;
      }
    }
  }
  return found;
}

async function fetchText(url: string): Promise<string | null> {
  const response = await fetch(url);
  // `vite preview` answers a missing file with index.html and 200: only accept non-HTML bodies.
  if (!response.ok || (response.headers.get('content-type') ?? '').includes('text/html')) return null;
  return response.text();
}

export async function loadDefaultPrompts(): Promise<void> {
  const indexText = await fetchText(`${PROMPTS_BASE_URL}index.json`).catch(() => null);
  let fromIndex: Partial<Record<PromptSetName, string>> = {};
  if (indexText) {
    try {
      fromIndex = defaultsFromIndex(JSON.parse(indexText));
    } catch {
      fromIndex = {};
    }
  }
  const chosen = { ...FALLBACK_DEFAULTS, ...fromIndex };
  const loaded: Partial<Record<PromptSetName, PromptSetState>> = {};
  const missing: string[] = [];
  await Promise.all(
    (Object.keys(chosen) as PromptSetName[]).map(async (name) => {
      const text = await fetchText(PROMPTS_BASE_URL + chosen[name]).catch(() => null);
      if (text === null) {
        missing.push(chosen[name]);
        return;
      }
      try {
        loaded[name] = { ...importPromptText(chosen[name], text), source: `defaults: ${chosen[name]}` };
      } catch {
        missing.push(chosen[name]);
      }
    }),
  );
  store.setState((state) => {
    // Never overwrite what the user typed or imported while the defaults were loading.
    const prompts = { ...state.prompts };
    for (const name of Object.keys(loaded) as PromptSetName[]) {
      if (prompts[name].text === '' && prompts[name].source === '') prompts[name] = loaded[name]!;
    }
    return {
      prompts,
      promptDefaultsNote: missing.length > 0 ? `Default prompt files not found: ${missing.join(', ')}.` : '',
    };
  });
}
