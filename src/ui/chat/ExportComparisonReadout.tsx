/**
 * With an exported folder on the ablated side: the largest first-token logit difference between the hook preview
 * of the current recipe and the exported model, on the held-out evaluation prompts (state/export-comparison.ts).
 * Runs by itself once both models are loaded and no reply is being generated.
 */
import { useEffect } from 'react';
import { currentModels } from '../../state/chat-actions';
import { useChat } from '../../state/chat-store';
import { compareExportWithPreview, useExportComparison } from '../../state/export-comparison';

function formatDifference(value: number): string {
  return value === 0 ? '0' : value.toExponential(2);
}

export function ExportComparisonReadout() {
  const modelsPhase = useChat((state) => state.models.phase);
  const generating = useChat((state) => state.generating);
  const ablatedFolder = useChat((state) => state.ablatedFolder);
  const comparison = useExportComparison((state) => state);
  useEffect(() => {
    if (modelsPhase !== 'ready' || generating || !ablatedFolder) return;
    let models;
    try {
      models = currentModels();
    } catch {
      return; // no model loaded: nothing to compare
    }
    void compareExportWithPreview(models);
  }, [modelsPhase, generating, ablatedFolder]);
  if (!ablatedFolder || comparison.phase === 'idle') return null;
  const result = comparison.result;
  return (
    <span className="hint" data-testid="chat.logit-diff" data-state={comparison.phase}>
      {comparison.phase === 'running' && `hook preview vs exported model: ${comparison.detail || 'comparing…'}`}
      {comparison.phase === 'failed' && `hook preview vs exported model: ${comparison.detail}`}
      {comparison.phase === 'done' && result && (
        <span title={`largest at prompt ${result.at.prompt + 1}, token id ${result.at.token}; ${result.previewLabel} vs ${result.exportedLabel}`}>
          max first-token logit difference, hook preview vs exported model: <strong data-testid="chat.logit-diff-value">{formatDifference(result.maxLogitDifference)}</strong> over {result.prompts} held-out prompts
          {' '}(the ablation itself moves logits by up to {result.effect.toFixed(3)}; same greedy first token on {result.sameArgmax}/{result.prompts})
        </span>
      )}
    </span>
  );
}
