/**
 * The workbench shell: the regions of the workflow in the order a user walks them
 * (DESIGN.md "What a user does"). Each region is filled by its own component as the engine behind it lands.
 */
export function App() {
  return (
    <div className="app">
      <header className="app-header">
        <h1>Abliteration Workbench</h1>
        <p className="tagline">Find the refusal direction in a model's residual stream, inspect it per layer, and remove it from the weights — locally, in your browser.</p>
      </header>
      <main className="regions">
        <section className="region" aria-labelledby="region-model">
          <h2 id="region-model">1 · Model</h2>
          <p className="hint">Load the bundled demo model or an HF model folder (config, tokenizer, ONNX, safetensors).</p>
        </section>
        <section className="region" aria-labelledby="region-prompts">
          <h2 id="region-prompts">2 · Prompt sets</h2>
          <p className="hint">A: refusal prompts · B: compliance prompts · optional reference contrast C/D.</p>
        </section>
        <section className="region region-wide" aria-labelledby="region-analysis">
          <h2 id="region-analysis">3 · Capture and per-layer analysis</h2>
          <p className="hint">Residual stream of every layer → direction, held-out AUC, cosine with the reference direction.</p>
        </section>
        <section className="region" aria-labelledby="region-chat">
          <h2 id="region-chat">4 · Chat: base | ablated</h2>
        </section>
        <section className="region" aria-labelledby="region-export">
          <h2 id="region-export">5 · Export</h2>
          <p className="hint">Orthogonalized safetensors shards, streamed; every other byte unchanged.</p>
        </section>
      </main>
    </div>
  );
}
