/**
 * Step 5: export the orthogonalized model. Source: the open folder's safetensors; direction: the selected
 * layer's from the analysis or an imported file; scale, targets and block range as in `abliterate ablate`;
 * output to a picked folder, as one download per file, or as one zip. The work runs in the export worker;
 * this panel only collects the request, shows progress, and hands finished files to the browser's downloads.
 */
import { useEffect, useRef, useState } from 'react';
import { exportClient } from '../../clients/export-client';
import { reportError, selectLayer } from '../../state/actions';
import { useWorkbench, workbenchStore } from '../../state/store';
import { CancelledError, InvalidInputError } from '../../base/errors';
import type { ExportBackendChoice, ExportDirection, ExportResult, ExportTarget, ExportTargetName } from '../../protocol/export-api';
import type { Progress } from '../../base/progress';
import { deliverDownloads, downloadName, hasDirectoryPicker, parseBlockRange, pickOutputDirectory } from './export-helpers';

type Phase = 'idle' | 'running' | 'done' | 'cancelled' | 'failed';

const TARGET_LABELS: Record<ExportTargetName, string> = { embed: 'embedding', attn: 'attention out', mlp: 'MLP down' };

function describeProgress(event: Progress, current: string): string {
  if (event.status === 'start') return event.task === 'verify' ? 'Verifying (headers, SHA-256 of every file)…' : 'Writing…';
  if (event.status === 'progress') return `${event.task === 'verify' ? 'Verifying' : 'Writing'} ${event.detail ?? ''}`.trim();
  if (event.status === 'message') return event.text;
  return current;
}

export function ExportPanel() {
  const model = useWorkbench((state) => state.model);
  const modelFolder = useWorkbench((state) => state.modelFolder);
  const directions = useWorkbench((state) => state.result?.directions ?? null);
  const selectedLayer = useWorkbench((state) => state.selectedLayer);
  const imported = useWorkbench((state) => state.importedDirection);

  const [source, setSource] = useState<'analysis' | 'file'>('analysis');
  const [scale, setScale] = useState('1');
  const [targets, setTargets] = useState<Record<ExportTargetName, boolean>>({ embed: true, attn: true, mlp: true });
  const [blockRange, setBlockRange] = useState('');
  const [backend, setBackend] = useState<ExportBackendChoice>('auto');
  const [target, setTarget] = useState<ExportTarget>(hasDirectoryPicker() ? 'folder' : 'downloads');
  const [phase, setPhase] = useState<Phase>('idle');
  const [fraction, setFraction] = useState(0);
  const [detail, setDetail] = useState('');
  const [result, setResult] = useState<ExportResult | null>(null);
  const controller = useRef<AbortController | null>(null);
  const revokeUrls = useRef<() => void>(() => undefined);

  useEffect(() => () => revokeUrls.current(), []);
  // An import makes the file the source; a new analysis makes the analysis the source.
  useEffect(() => setSource(imported ? 'file' : 'analysis'), [imported]);
  useEffect(() => {
    if (directions) setSource('analysis');
  }, [directions]);

  const effectiveSource = source === 'file' ? (imported ? 'file' : directions ? 'analysis' : null) : directions ? 'analysis' : imported ? 'file' : null;
  const modelReady = model.phase === 'ready' && modelFolder !== null;
  const canExport = modelReady && effectiveSource !== null && phase !== 'running';

  const run = async () => {
    const folder = workbenchStore.getState().modelFolder;
    if (!folder || effectiveSource === null) return;
    let started = false;
    try {
      // The picker needs the click's user activation: ask before anything else awaits.
      const destination = target === 'folder' ? { kind: 'folder' as const, parent: await pickOutputDirectory() } : { kind: target };
      const scaleValue = Number(scale);
      if (scale.trim() === '' || !Number.isFinite(scaleValue)) throw new InvalidInputError(`Scale ${JSON.stringify(scale)} is not a number.`);
      const layers = parseBlockRange(blockRange);
      let direction: ExportDirection;
      if (effectiveSource === 'analysis' && directions) {
        if (selectedLayer === null) throw new InvalidInputError('Select a layer in the analysis first.');
        direction = { kind: 'analysis', directions, layer: selectedLayer };
      } else if (imported) {
        direction = { kind: 'file', file: imported.file, bytes: imported.bytes, layer: selectedLayer };
      } else {
        return;
      }
      const chosenTargets = (Object.keys(targets) as ExportTargetName[]).filter((name) => targets[name]);
      revokeUrls.current();
      started = true;
      controller.current = new AbortController();
      setPhase('running');
      setFraction(0);
      setResult(null);
      setDetail('Planning…');
      workbenchStore.setState({ error: null });
      const finished = await exportClient().exportModel(
        { folder, direction, scale: scaleValue, targets: chosenTargets, layers, destination, backend },
        {
          signal: controller.current.signal,
          onProgress: (event) => {
            if (event.status === 'progress') setFraction(event.task === 'verify' ? 0.9 + 0.1 * event.fraction : 0.9 * event.fraction);
            setDetail((current) => describeProgress(event, current));
          },
        },
      );
      revokeUrls.current = deliverDownloads(finished.deliver);
      setResult(finished);
      setFraction(1);
      setPhase('done');
    } catch (error) {
      if (!started && (error as DOMException)?.name === 'AbortError') return; // the folder picker was dismissed
      if (error instanceof CancelledError || (error as Error)?.name === 'CancelledError') {
        setPhase('cancelled');
        setDetail('Cancelled; the partial output was removed.');
        return;
      }
      setPhase('failed');
      setDetail((error as Error)?.message ?? String(error));
      reportError(error);
    } finally {
      controller.current = null;
    }
  };

  const percent = Math.round(fraction * 100);
  const totalBytes = result ? result.files.reduce((sum, file) => sum + file.bytes, 0) : 0;
  const statusText =
    phase === 'done' && result
      ? `done: ${result.outputName} — ${result.files.length + 1} files, ${(totalBytes / 1e6).toFixed(1)} MB, ${result.editedTensors} tensors edited, verified (${result.verification.filesChecked} SHA-256, ${result.verification.headersChecked} headers), ${result.backend}, ${result.seconds.toFixed(1)} s`
      : phase === 'idle'
        ? modelReady
          ? effectiveSource
            ? 'Ready to export.'
            : 'Run the analysis or import a direction file.'
          : 'Load a model folder with safetensors to export.'
        : `${phase === 'running' ? '' : `${phase}: `}${detail}${phase === 'running' ? ` · ${percent}%` : ''}`;

  return (
    <div className="export-panel">
      <fieldset className="export-direction">
        <legend>Direction</legend>
        {directions && imported && (
          <label>
            Use{' '}
            <select data-testid="export.direction-source" value={source} onChange={(event) => setSource(event.currentTarget.value as 'analysis' | 'file')}>
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
              file
                .arrayBuffer()
                .then((buffer) => workbenchStore.setState({ importedDirection: { file: file.name, bytes: new Uint8Array(buffer) } }))
                .catch(reportError);
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
        <label>
          Scale α <input type="number" step="0.1" data-testid="export.scale" value={scale} onChange={(event) => setScale(event.currentTarget.value)} />
        </label>
        {(Object.keys(TARGET_LABELS) as ExportTargetName[]).map((name) => (
          <label key={name}>
            <input
              type="checkbox"
              data-testid={`export.targets.${name}`}
              checked={targets[name]}
              onChange={(event) => {
                const checked = event.currentTarget.checked;
                setTargets((current) => ({ ...current, [name]: checked }));
              }}
            />{' '}
            {TARGET_LABELS[name]}
          </label>
        ))}
        <label>
          Blocks <input type="text" placeholder="all (or A-B)" data-testid="export.layers" value={blockRange} onChange={(event) => setBlockRange(event.currentTarget.value)} size={8} />
        </label>
        <label>
          Compute{' '}
          <select data-testid="export.backend" value={backend} onChange={(event) => setBackend(event.currentTarget.value as ExportBackendChoice)}>
            <option value="auto">auto (CPU: byte-identical to the CLI)</option>
            <option value="cpu">CPU</option>
            <option value="webgpu">WebGPU (may differ by one rounding step)</option>
          </select>
        </label>
      </fieldset>
      <div className="button-row">
        <label>
          Output{' '}
          <select data-testid="export.target" value={target} onChange={(event) => setTarget(event.currentTarget.value as ExportTarget)}>
            <option value="folder" disabled={!hasDirectoryPicker()}>
              a folder I pick
            </option>
            <option value="downloads">one download per file</option>
            <option value="zip">one zip download</option>
          </select>
        </label>
        <button type="button" className="primary" data-testid="export.run" disabled={!canExport} onClick={() => void run()}>
          {phase === 'running' ? 'Exporting…' : 'Export'}
        </button>
        <button type="button" data-testid="export.cancel" disabled={phase !== 'running'} onClick={() => controller.current?.abort()}>
          Cancel
        </button>
      </div>
      <div className="progress-wrap">
        <div className="progress" role="progressbar" aria-label="export progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent} data-testid="export.progress" data-state={phase}>
          <div className="progress-fill" style={{ width: `${percent}%` }} />
        </div>
        <span className="progress-text" data-testid="export.status" data-state={phase}>
          {statusText}
        </span>
      </div>
      {phase === 'done' && result && result.deliver.length > 0 && (
        <ul className="export-files" data-testid="export.files">
          {result.deliver.map((file) => (
            <li key={file.path}>
              {downloadName(file.path)} ({(file.bytes / 1e6).toFixed(1)} MB)
            </li>
          ))}
        </ul>
      )}
      {result?.notes.map((note) => (
        <p className="hint" key={note} data-testid="export.note">
          {note}
        </p>
      ))}
    </div>
  );
}
