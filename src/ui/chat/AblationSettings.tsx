/**
 * What the ablated column is: the base graph with hooks of the current ablation (the one value export uses too:
 * direction r of the selected layer or an imported direction file, scale α, targets — or a whole recipe made
 * current), or an exported model folder. Shared by chat and evaluation.
 */
import { describeFolderFiles } from '../../platform/browser-folder';
import { descriptorFromInput } from '../../platform/browser-drop';
import { reportError } from '../../state/actions';
import type { AblationComponent } from '../../core/recipe';
import { ablatedSideSpec, chooseAblatedFolder, prepareModels, updateChat } from '../../state/chat-actions';
import { clearRecipe, importDirectionFile, setAblation, toggleTarget, useAblation, type DirectionChoice } from '../../state/ablation';
import { useChat } from '../../state/chat-store';
import { useWorkbench } from '../../state/store';
import { ExportComparisonReadout } from './ExportComparisonReadout';
import { HiddenFileInput } from '../common/HiddenFileInput';

const TARGETS: { target: AblationComponent; label: string; title: string }[] = [
  { target: 'embed', label: 'embed', title: 'the embedding output' },
  { target: 'attn', label: 'attn', title: 'every attention out-projection' },
  { target: 'mlp', label: 'mlp', title: 'every MLP down-projection' },
];

export function AblationSettings() {
  // Only the ablation fields: this bar must not re-render for every streamed token.
  const ablatedSource = useChat((state) => state.ablatedSource);
  const directionChoice = useAblation((state) => state.directionChoice);
  const scale = useAblation((state) => state.scale);
  const targets = useAblation((state) => state.targets);
  const ablatedFolder = useChat((state) => state.ablatedFolder);
  useAblation((state) => state.recipe); // re-render when a recipe is made current
  useAblation((state) => state.blockRange);
  const models = useChat((state) => state.models);
  const selectedLayer = useWorkbench((state) => state.selectedLayer);
  const hasAnalysis = useWorkbench((state) => state.result !== null);
  const importedDirection = useWorkbench((state) => state.importedDirection);
  useWorkbench((state) => state.result); // re-render when a capture lands
  useWorkbench((state) => state.importedDirection);
  const ablation = ablatedSideSpec();
  const direction = ablation.spec?.kind === 'hooks' ? ablation.spec.direction : null;
  const recipe = ablation.spec?.kind === 'recipe' ? ablation.spec : null;
  return (
    <div className="ablation-settings">
      <div className="ablation-row">
        <span className="ablation-title">Ablated side</span>
        <label>
          <input type="radio" name="ablated-source" checked={ablatedSource === 'hooks'} onChange={() => updateChat({ ablatedSource: 'hooks' })} /> hooks on the base graph
        </label>
        <label>
          <input type="radio" name="ablated-source" checked={ablatedSource === 'folder'} onChange={() => updateChat({ ablatedSource: 'folder' })} /> exported model folder
        </label>
        <button type="button" className="link-button" data-testid="chat.prepare" onClick={() => void prepareModels()} title="Load both models now, so the first reply starts at once">
          load models
        </button>
        <span className={`models-status models-${models.phase}`} data-testid="chat.models-status">
          {models.detail}
        </span>
      </div>
      {ablatedSource === 'hooks' ? (
        <div className="ablation-row">
          <span className="hint direction-source" data-testid="chat.direction">
            {recipe ? (
              <>
                <strong>{recipe.label}</strong>{' '}
                <button type="button" className="link-button" onClick={() => clearRecipe()}>
                  back to the selected layer
                </button>
              </>
            ) : direction === null
              ? ablation.why
              : direction.kind === 'analysis'
                ? <>direction <strong>r<sub>{direction.layer}</sub></strong> from the analysis (selected layer {selectedLayer})</>
                : <>direction from <strong>{direction.file}</strong>{direction.layer !== null ? ` (row ${direction.layer} if per-layer)` : ''}</>}
          </span>
          {hasAnalysis && importedDirection && (
            <select value={directionChoice} onChange={(event) => setAblation({ directionChoice: event.target.value as DirectionChoice })} aria-label="direction source">
              <option value="analysis">analysis r of the selected layer</option>
              <option value="file">imported {importedDirection.file}</option>
            </select>
          )}
          <label className="link-button" title="A direction file (.safetensors, .npy, .json); a per-layer file uses the selected layer's row">
            {importedDirection ? 'replace direction file…' : 'import direction file…'}
            <HiddenFileInput accept=".safetensors,.npy,.json" testId="chat.direction-file-input" onFile={(file) => void importDirectionFile(file)} />
          </label>
          <label title="α: 1 removes the component along r entirely; 0 leaves the model unchanged">
            scale α{' '}
            <input type="number" className="small-number" step={0.1} value={scale} data-testid="chat.scale" onChange={(event) => Number.isFinite(event.target.valueAsNumber) && setAblation({ scale: event.target.valueAsNumber })} />
          </label>
          <span className="targets">
            targets
            {TARGETS.map(({ target, label, title }) => (
              <label key={target} title={title}>
                <input type="checkbox" checked={targets.includes(target)} onChange={(event) => toggleTarget(target, event.target.checked)} /> {label}
              </label>
            ))}
          </span>
        </div>
      ) : (
        <div className="ablation-row">
          <label className="button" title="An exported folder whose onnx/ graph was re-exported from the edited weights">
            {ablatedFolder ? 'replace folder…' : 'choose exported folder…'}
            <input
              type="file"
              className="visually-hidden"
              data-testid="chat.ablated-folder-input"
              {...{ webkitdirectory: '', directory: '' }}
              multiple
              onChange={(event) => {
                const files = event.currentTarget.files;
                if (files && files.length > 0) {
                  try {
                    const descriptor = descriptorFromInput(files);
                    void describeFolderFiles(descriptor).then((key) => chooseAblatedFolder(descriptor, key));
                  } catch (error) {
                    reportError(error);
                  }
                }
                event.currentTarget.value = '';
              }}
            />
          </label>
          <span className="hint">{ablatedFolder ? <>ablated side: <strong>{ablatedFolder.descriptor.name}</strong></> : ablation.why}</span>
          <ExportComparisonReadout />
        </div>
      )}
    </div>
  );
}
