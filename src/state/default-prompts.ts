/**
 * The default prompt sets, read from public/prompts/index.json (the project's own sets): its `contrasts` become
 * presets for A/B (the one marked `default` is loaded first) and the contrast with `c`/`d` fills the reference.
 * Each part takes the set's train file (or its only file).
 */
import { importPromptText } from './prompt-sets';
import { workbenchStore as store, type PromptSetName, type PromptSetState } from './store';

const PROMPTS_BASE_URL = `${import.meta.env.BASE_URL}prompts/`;

interface IndexSet {
  id: string;
  files: { train?: string; all?: string; test?: string };
}
interface IndexContrast {
  id: string;
  label: string;
  a?: string;
  b?: string;
  c?: string;
  d?: string;
  default?: boolean;
}
export interface PromptPreset {
  id: string;
  label: string;
  harmful: string; // file names under public/prompts/
  harmless: string;
}

let presetsById = new Map<string, PromptPreset>();

async function fetchText(url: string): Promise<string | null> {
  const response = await fetch(url);
  // `vite preview` answers a missing file with index.html and 200: only accept non-HTML bodies.
  if (!response.ok || (response.headers.get('content-type') ?? '').includes('text/html')) return null;
  return response.text();
}

function parseIndex(text: string): { presets: PromptPreset[]; reference: { c: string; d: string } | null } {
  const index = JSON.parse(text) as { sets?: IndexSet[]; contrasts?: IndexContrast[] };
  const sets = new Map((index.sets ?? []).map((set) => [set.id, set]));
  const fileOf = (id: string | undefined) => {
    const set = id ? sets.get(id) : undefined;
    return set ? set.files.train ?? set.files.all ?? null : null;
  };
  const contrasts = [...(index.contrasts ?? [])].sort((x, y) => Number(Boolean(y.default)) - Number(Boolean(x.default)));
  const presets: PromptPreset[] = [];
  let reference: { c: string; d: string } | null = null;
  for (const contrast of contrasts) {
    const [harmful, harmless, c, d] = [fileOf(contrast.a), fileOf(contrast.b), fileOf(contrast.c), fileOf(contrast.d)];
    if (harmful && harmless) presets.push({ id: contrast.id, label: contrast.label, harmful, harmless });
    if (c && d && !reference) reference = { c, d };
  }
  return { presets, reference };
}

async function loadSet(file: string): Promise<PromptSetState | null> {
  const text = await fetchText(PROMPTS_BASE_URL + file).catch(() => null);
  if (text === null) return null;
  try {
    return { ...importPromptText(file, text), source: `defaults: ${file}` };
  } catch {
    return null;
  }
}

/** Fills the given parts; `force` replaces what is there (a preset chosen by the user), else only empty parts. */
async function fillSets(files: Partial<Record<PromptSetName, string>>, force: boolean): Promise<string[]> {
  const missing: string[] = [];
  const loaded: Partial<Record<PromptSetName, PromptSetState>> = {};
  await Promise.all(
    (Object.keys(files) as PromptSetName[]).map(async (name) => {
      const set = await loadSet(files[name]!);
      if (set) loaded[name] = set;
      else missing.push(files[name]!);
    }),
  );
  store.setState((state) => {
    const prompts = { ...state.prompts };
    for (const name of Object.keys(loaded) as PromptSetName[]) {
      // Never overwrite what the user typed or imported while the defaults were loading.
      if (force || (prompts[name].text === '' && prompts[name].source === '')) prompts[name] = loaded[name]!;
    }
    return { prompts };
  });
  return missing;
}

export async function loadDefaultPrompts(): Promise<void> {
  const indexText = await fetchText(`${PROMPTS_BASE_URL}index.json`).catch(() => null);
  if (!indexText) {
    store.setState({ promptDefaultsNote: 'No default prompt sets found (public/prompts/index.json is missing): type or import prompts.' });
    return;
  }
  let parsed: ReturnType<typeof parseIndex>;
  try {
    parsed = parseIndex(indexText);
  } catch (error) {
    store.setState({ promptDefaultsNote: `public/prompts/index.json is not readable (${(error as Error).message}): type or import prompts.` });
    return;
  }
  presetsById = new Map(parsed.presets.map((preset) => [preset.id, preset]));
  const first = parsed.presets[0];
  store.setState({ promptPresets: parsed.presets.map(({ id, label }) => ({ id, label })), promptPreset: first?.id ?? '' });
  const files: Partial<Record<PromptSetName, string>> = {};
  if (first) Object.assign(files, { harmful: first.harmful, harmless: first.harmless });
  if (parsed.reference) Object.assign(files, { referenceA: parsed.reference.c, referenceB: parsed.reference.d });
  const missing = await fillSets(files, false);
  if (missing.length > 0) store.setState({ promptDefaultsNote: `Default prompt files not found: ${missing.join(', ')}.` });
}

/** Replaces A and B with a preset's sets. */
export async function applyPromptPreset(id: string): Promise<void> {
  const preset = presetsById.get(id);
  if (!preset) return;
  store.setState({ promptPreset: id });
  const missing = await fillSets({ harmful: preset.harmful, harmless: preset.harmless }, true);
  if (missing.length > 0) store.setState({ promptDefaultsNote: `Default prompt files not found: ${missing.join(', ')}.` });
}
