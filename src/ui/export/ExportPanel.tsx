/**
 * Step 5: export the orthogonalized model. Source: the open folder's safetensors; what is applied: the current
 * ablation (src/state/ablation.ts) — the selected layer's direction from the analysis or an imported file with
 * scale, tensor groups and block range as in `abliterate ablate`, or a whole recipe made current — the very
 * value chat and evaluation use; output to a picked folder, as one download per file, or as one zip. The state and the run live in
 * src/state/export-controller.ts and the work in the export worker; this panel only renders and forwards input.
 */
import { useEffect } from 'react';
import type { AblationComponent } from '../../core/recipe';
import type { ExportBackendChoice, ExportDestination } from '../../protocol/export-api';
import { selectLayer } from '../../state/actions';
import { currentAblation, importDirectionFile, setAblation, toggleTarget, useAblation, type DirectionChoice } from '../../state/ablation';
import { cancelExport, destinationKind, exportStatusText, releaseExportDownloads, runExport, setExportOptions, useExport, type ExportBrowser } from '../../state/export-controller';
import { useWorkbench } from '../../state/store';
import { deliverDownloads, downloadName, hasDirectoryPicker, pickOutputDirectory } from './export-helpers';

const COMPONENT_LABELS: Record<AblationComponent, string> = { embed: 'embedding', attn: 'attention out', mlp: 'MLP down' };

const browser: ExportBrowser = { canPickDirectory: hasDirectoryPicker(), pickDirectory: pickOutputDirectory, deliver: deliverDownloads };

export function ExportPanel() {
  const model = useWorkbench((state) => state.model);
  const modelFolder = useWorkbench((state) => state.modelFolder);
  const result = useWorkbench((state) => state.result);
  const selectedLayer = useWorkbench((state) => state.selectedLayer);
  const imported = useWorkbench((state) => state.importedDirection);
  const form = useExport((state) => state);
  const ablation = useAblation((state) => state);

  useEffect(() => releaseExportDownloads, []);

  const directions = result?.directions ?? null;
  const { current, why } = currentAblation();
  const modelReady = model.phase === 'ready' && modelFolder !== null;
  const canExport = modelReady && current !== null && form.phase !== 'running';
  // A whole recipe made current replaces the shorthand's scale, groups and blocks.
  const recipeCurrent = ablation.recipe !== null;
  const percent = Math.round(form.fraction * 100);
  const output = destinationKind(form, browser.canPickDirectory);

  return (
    <div className="export-panel">
      <fieldset className="export-direction">
        <legend>Direction</legend>
        {directions && imported && (
          <label>
            Use{' '}
            <select data-testid="export.direction-source" value={ablation.directionChoice} onChange={(event) => setAblation({ directionChoice: event.currentTarget.value as DirectionChoice })}>
              <option value="analysis">the analysis, layer {selectedLayer ?? '–'}</option>
              <option value="file">{imported.file}</option>
            </select>
          </label>
        )}
        {directions && !imported && <p className="hint">The analysis' direction at layer {selectedLayer ?? '–'}.</p>}
        <label>
          Import a direction file (.safetensors, .npy, .json){' '}
          <input
            type="file"
            data-testid="direction.file-input"
            accept=".safetensors,.npy,.json"
            onChange={(event) => {
              const file = event.currentTarget.files?.[0];
              if (!file) return;
              // Parsed on import: a file that is not a direction is refused with its reason, never "Imported".
              void importDirectionFile(file);
              event.currentTarget.value = '';
            }}
          />
        </label>
        {imported && <p className="hint">Imported: {imported.file} ({imported.bytes.byteLength} bytes).</p>}
        {!directions && imported && (
          <label>
            Layer (row of a per-layer file){' '}
            <input
              type="number"
              data-testid="layer.input"
              min={0}
              step={1}
              value={selectedLayer ?? ''}
              onChange={(event) => {
                const value = event.currentTarget.valueAsNumber;
                if (Number.isInteger(value) && value >= 0) selectLayer(value);
              }}
            />
          </label>
        )}
      </fieldset>
      <fieldset className="export-options">
        <legend>Edit</legend>
        {recipeCurrent && <p className="hint">The current recipe ({ablation.recipe!.label}) sets the weights; see “Current recipe”.</p>}
        <label>
          Scale α{' '}
          <input
            type="number"
            step="0.1"
            data-testid="export.scale"
            disabled={recipeCurrent}
            value={ablation.scale}
            onChange={(event) => Number.isFinite(event.currentTarget.valueAsNumber) && setAblation({ scale: event.currentTarget.valueAsNumber })}
          />
        </label>
        {(Object.keys(COMPONENT_LABELS) as AblationComponent[]).map((name) => (
          <label key={name}>
            <input type="checkbox" data-testid={`export.targets.${name}`} disabled={recipeCurrent} checked={ablation.targets.includes(name)} onChange={(event) => toggleTarget(name, event.currentTarget.checked)} />{' '}
            {COMPONENT_LABELS[name]}
          </label>
        ))}
        <label>
          Blocks <input type="text" placeholder="all (or A-B)" data-testid="export.layers" disabled={recipeCurrent} value={ablation.blockRange} onChange={(event) => setAblation({ blockRange: event.currentTarget.value })} size={8} />
        </label>
        <label title="Also write the abliterated ONNX graphs to onnx/, so the export runs in transformers.js and loads here as a model. Float weights are edited in place; quantized ones (q4, q8) get the ablation baked into the graph.">
          <input type="checkbox" data-testid="export.onnx" checked={form.onnx} onChange={(event) => setExportOptions({ onnx: event.currentTarget.checked })} /> also write abliterated ONNX
        </label>
        <label>
          Compute{' '}
          <select data-testid="export.backend" value={form.backend} onChange={(event) => setExportOptions({ backend: event.currentTarget.value as ExportBackendChoice })}>
            <option value="auto">auto (CPU: byte-identical to the CLI)</option>
            <option value="cpu">CPU</option>
            <option value="webgpu">WebGPU (may differ by one rounding step)</option>
          </select>
        </label>
      </fieldset>
      <div className="button-row">
        <label>
          Output{' '}
          <select data-testid="export.target" value={output} onChange={(event) => setExportOptions({ destination: event.currentTarget.value as ExportDestination['kind'] })}>
            <option value="folder" disabled={!browser.canPickDirectory}>
              a folder I pick
            </option>
            <option value="downloads">one download per file</option>
            <option value="zip">one zip download</option>
          </select>
        </label>
        <button type="button" className="primary" data-testid="export.run" disabled={!canExport} onClick={() => void runExport(browser)}>
          {form.phase === 'running' ? 'Exporting…' : 'Export'}
        </button>
        <button type="button" data-testid="export.cancel" disabled={form.phase !== 'running'} onClick={cancelExport}>
          Cancel
        </button>
      </div>
      <div className="progress-wrap">
        <div className="progress" role="progressbar" aria-label="export progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent} data-testid="export.progress" data-state={form.phase}>
          <div className="progress-fill" style={{ width: `${percent}%` }} />
        </div>
        <span className="progress-text" data-testid="export.status" data-state={form.phase}>
          {exportStatusText(form, modelReady, why)}
        </span>
      </div>
      {form.phase === 'done' && form.result && form.result.deliver.length > 0 && (
        <ul className="export-files" data-testid="export.files">
          {form.result.deliver.map((file) => (
            <li key={file.path}>
              {downloadName(file.path)} ({(file.bytes / 1e6).toFixed(1)} MB)
            </li>
          ))}
        </ul>
      )}
      {form.result?.notes.map((note) => (
        <p className="hint" key={note} data-testid="export.note">
          {note}
        </p>
      ))}
    </div>
  );
}
