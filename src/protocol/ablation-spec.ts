/**
 * The current ablation as it crosses to a worker: the recipe (recipe.json's value) and the direction rows it
 * reads. The app holds ONE current ablation (src/state/ablation.ts); chat, evaluation and export are all sent
 * this value, so what is previewed is what is exported.
 */
import type { AblationComponent } from '../core/recipe';

/**
 * Where the recipe's direction rows come from: the analysis' per-layer directions (an export records them as
 * the `directions.safetensors` that `abliterate analyze` writes), or a direction file the user imported
 * (parsed in the worker: one direction, or one row per hidden-state index, with harmless means if it holds them).
 */
export type AblationDirections =
  | { kind: 'analysis'; rows: Float32Array[] /* [L+1][dModel] */ }
  | { kind: 'file'; file: string; bytes: Uint8Array };

/** The old flags' numbers when the recipe is their shorthand (`--layer N --scale α --targets T --layers A-B`). */
export interface AblationShorthand {
  /** Row of a per-layer directions source; null for a single direction (the one row of its file). */
  row: number | null;
  scale: number;
  targets: AblationComponent[];
  /** Inclusive block range for attn/mlp; null = every block. */
  layers: [number, number] | null;
}

export interface AblationSpec {
  /** recipe.json's value: what the manifest's `recipe` records and `recipe.download` saves. */
  recipe: Record<string, unknown>;
  /** Where the recipe came from, in words ("recipe.json", "search trial 4", "layer 3, α 1"). */
  label: string;
  directions: AblationDirections;
  /**
   * Set when the recipe is the shorthand of the old flags: the export then writes exactly what `abliterate
   * ablate --layer N --scale α --targets T --layers A-B` writes (its manifest keeps scale and layers), and the
   * recipe is the one that shorthand stands for. null for a whole recipe (`ablate --recipe`).
   */
  shorthand: AblationShorthand | null;
}
