/**
 * Step 1: load a model — the bundled demo, a folder (input, directory picker, or drag-and-drop) — and show
 * what the folder holds and which steps can use it.
 */
import { useState, type DragEvent } from 'react';
import { descriptorFromDrop, descriptorFromInput, hasDirectoryPicker, pickDirectory } from '../platform/browser-drop';
import { loadDemoModel, loadModel, reportError } from '../state/actions';
import { useWorkbench } from '../state/store';

function formatCapability(enabled: boolean, label: string) {
  return (
    <li className={enabled ? 'capability yes' : 'capability no'}>
      <span aria-hidden="true">{enabled ? '✓' : '–'}</span> {label}
    </li>
  );
}

export function ModelPanel() {
  const model = useWorkbench((state) => state.model);
  const [dragging, setDragging] = useState(false);
  const inspection = model.inspection;

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    descriptorFromDrop(event.dataTransfer)
      .then((descriptor) => loadModel(descriptor, descriptor.name))
      .catch(reportError);
  };

  return (
    <section
      className={`region model-region${dragging ? ' dragging' : ''}`}
      aria-labelledby="region-model"
      onDragOver={(event) => {
        event.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
    >
      <h2 id="region-model">1 · Model</h2>
      <div className="button-row">
        <button type="button" className="primary" data-testid="model.demo" onClick={() => void loadDemoModel()}>
          Load demo model
        </button>
        <label className="button">
          Choose folder…
          <input
            type="file"
            data-testid="model.folder-input"
            className="visually-hidden"
            // React does not know the non-standard attribute; it is what makes the picker choose a directory.
            {...{ webkitdirectory: '', directory: '' }}
            multiple
            onChange={(event) => {
              const files = event.currentTarget.files;
              if (!files || files.length === 0) return;
              try {
                const descriptor = descriptorFromInput(files);
                void loadModel(descriptor, descriptor.name);
              } catch (error) {
                reportError(error);
              }
              event.currentTarget.value = '';
            }}
          />
        </label>
        {hasDirectoryPicker() && (
          <button
            type="button"
            onClick={() => {
              pickDirectory()
                .then((descriptor) => loadModel(descriptor, descriptor.name))
                .catch((error: unknown) => {
                  if ((error as DOMException)?.name !== 'AbortError') reportError(error);
                });
            }}
          >
            Open folder (read in place)
          </button>
        )}
      </div>
      <p className="hint">…or drop an HF model folder here: config.json, tokenizer, ONNX in onnx/, safetensors. Files stay on this machine.</p>
      <p className={`model-status status-${model.phase}`} data-testid="model.status" role="status">
        {model.message}
      </p>
      {inspection && (
        <>
          <p className="model-summary">
            <strong>{inspection.name}</strong> · {inspection.modelType} · {inspection.numLayers} blocks ({inspection.numLayers + 1} layer indices) · d_model {inspection.hiddenSize}
          </p>
          <ul className="checks">
            {inspection.checks.map((check) => (
              <li key={check.item} className={check.present ? 'check yes' : 'check no'}>
                <span className="check-item">{check.item}</span> {check.detail}
              </li>
            ))}
          </ul>
          <ul className="capabilities">
            {formatCapability(inspection.capabilities.capture, 'capture & analysis')}
            {formatCapability(inspection.capabilities.chat, 'chat preview')}
            {formatCapability(inspection.capabilities.export, 'export edited weights')}
          </ul>
          {inspection.capabilities.notes.map((note) => (
            <p className="hint" key={note}>
              {note}
            </p>
          ))}
        </>
      )}
    </section>
  );
}
