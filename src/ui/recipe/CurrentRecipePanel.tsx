/**
 * The current ablation, shown once: method, where the direction comes from (file or analysis, which row or
 * fractional index), projection, and the per-block weights of attention and MLP as a small bar chart. The same
 * value chat, evaluation, the sweep and the export use. Download it as recipe.json, or import one (a malformed
 * file lands in the error banner naming the field). Named export, no props.
 */
import { componentWeight, type Recipe } from '../../core/recipe';
import { clearRecipe, currentAblation, downloadRecipe, importRecipeFile, useAblation } from '../../state/ablation';
import { useWorkbench } from '../../state/store';
import './recipe.css';
import { HiddenFileInput } from '../common/HiddenFileInput';

const CHART = { width: 320, rowHeight: 34, labelWidth: 36, gap: 1 };

function describeWeight(weight: Recipe['components']['attn']): string {
  if (weight === undefined) return 'untouched';
  if (typeof weight === 'number') return `${weight} in every block`;
  return `kernel: max ${weight.max} at block ${weight.peak}, falling to ${weight.min} at distance ${weight.distance}`;
}

/** One row of bars per component: the weight of each block, scaled to the largest |weight| of the two rows. */
function KernelChart({ recipe, numLayers }: { recipe: Recipe; numLayers: number }) {
  const components = ['attn', 'mlp'] as const;
  const weights = components.map((component) => Array.from({ length: numLayers }, (_, block) => componentWeight(recipe, component, block)));
  const largest = Math.max(1e-12, ...weights.flat().map(Math.abs));
  const barWidth = (CHART.width - CHART.labelWidth) / Math.max(1, numLayers);
  const height = CHART.rowHeight * components.length + 14;
  return (
    <svg className="recipe-kernel" data-testid="recipe.kernel" width={CHART.width} height={height} viewBox={`0 0 ${CHART.width} ${height}`} role="img" aria-label="weight per block for attention and MLP">
      {components.map((component, row) => {
        const baseline = (row + 1) * CHART.rowHeight - 4;
        return (
          <g key={component}>
            <text x={0} y={baseline} className="recipe-kernel-label">
              {component}
            </text>
            <line x1={CHART.labelWidth} x2={CHART.width} y1={baseline} y2={baseline} className="recipe-kernel-axis" />
            {weights[row]!.map((weight, block) => {
              const barHeight = (Math.abs(weight) / largest) * (CHART.rowHeight - 8);
              return (
                <rect key={block} className={`recipe-kernel-bar recipe-kernel-${component}`} x={CHART.labelWidth + block * barWidth + CHART.gap / 2} y={baseline - barHeight} width={Math.max(1, barWidth - CHART.gap)} height={barHeight}>
                  <title>{`${component} block ${block}: weight ${Number(weight.toFixed(4))}`}</title>
                </rect>
              );
            })}
          </g>
        );
      })}
      <text x={CHART.labelWidth} y={height - 1} className="recipe-kernel-label">
        block 0
      </text>
      <text x={CHART.width} y={height - 1} textAnchor="end" className="recipe-kernel-label">
        block {numLayers - 1}
      </text>
    </svg>
  );
}

export function CurrentRecipePanel() {
  // Re-render on anything the current ablation is derived from.
  const state = useAblation((ablation) => ablation);
  useWorkbench((workbench) => workbench.result);
  useWorkbench((workbench) => workbench.selectedLayer);
  useWorkbench((workbench) => workbench.importedDirection);
  useWorkbench((workbench) => workbench.model);
  const { current, why } = currentAblation();
  return (
    <div className="current-recipe" data-testid="recipe.current">
      <div className="button-row">
        <button type="button" data-testid="recipe.download" disabled={!current} onClick={downloadRecipe} title="The current ablation as recipe.json (abliterate ablate --recipe)">
          Download recipe.json
        </button>
        <label className="button" title="A recipe.json (method, direction, projection, components) becomes the current ablation">
          Import recipe.json…
          <HiddenFileInput accept=".json,application/json" testId="recipe.file-input" onFile={(file) => void importRecipeFile(file)} />
        </label>
        {state.recipe && (
          <button type="button" className="link-button" data-testid="recipe.clear" onClick={() => clearRecipe()}>
            back to the selected layer
          </button>
        )}
      </div>
      {!current ? (
        <p className="hint">{why}</p>
      ) : (
        <>
          <dl className="recipe-fields">
            <dt>from</dt>
            <dd data-testid="recipe.label">{current.spec.label}</dd>
            <dt>method</dt>
            <dd data-testid="recipe.method">{current.recipe.method}</dd>
            <dt>direction</dt>
            <dd data-testid="recipe.direction-source">{current.directionSource}</dd>
            <dt>projection</dt>
            <dd>{current.recipe.projection}</dd>
            {current.recipe.protect === 'reference' && (
              <>
                <dt>protect</dt>
                <dd>reference direction</dd>
              </>
            )}
            <dt>embed</dt>
            <dd>{current.recipe.components.embed === undefined ? 'untouched' : `weight ${current.recipe.components.embed}`}</dd>
            <dt>attn</dt>
            <dd>{describeWeight(current.recipe.components.attn)}</dd>
            <dt>mlp</dt>
            <dd>{describeWeight(current.recipe.components.mlp)}</dd>
          </dl>
          {current.numLayers !== null && current.numLayers > 0 && <KernelChart recipe={current.recipe} numLayers={current.numLayers} />}
          <details>
            <summary className="hint">recipe.json</summary>
            <pre className="recipe-json" data-testid="recipe.json">
              {JSON.stringify(current.spec.recipe, null, 2)}
            </pre>
          </details>
        </>
      )}
    </div>
  );
}
