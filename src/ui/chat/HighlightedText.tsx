/**
 * A reply with its matched refusal markers highlighted. The spans come from the worker (the classifier's own
 * normalization mapped back to the text as shown), so what is marked is exactly what was counted.
 */
export function HighlightedText({ text, spans }: { text: string; spans: [number, number][] | undefined }) {
  if (!spans || spans.length === 0) return <>{text}</>;
  const parts: React.ReactNode[] = [];
  let at = 0;
  spans.forEach(([start, end], index) => {
    if (start > at) parts.push(text.slice(at, start));
    parts.push(
      <mark key={index} className="refusal-marker" title="refusal marker">
        {text.slice(start, end)}
      </mark>,
    );
    at = end;
  });
  if (at < text.length) parts.push(text.slice(at));
  return <>{parts}</>;
}
