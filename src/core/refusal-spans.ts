/**
 * Where the refusal markers sit in a reply as the user reads it. The classifier (core/refusal.ts) matches on a
 * normalized copy (lower case, no `*`, ’ → ', whitespace runs collapsed, trimmed); to highlight a match we
 * normalize the same way while remembering which original characters each normalized character came from.
 */
import { classifyRefusal, DEFAULT_REFUSAL_MARKERS } from './refusal';

/** A reply's refusal verdict and where its markers sit. */
export interface RefusalCheck {
  refused: boolean;
  matchedMarkers: string[];
  /** [start, end) character ranges of the matched markers in the reply as shown, for highlighting. */
  spans: [number, number][];
}

const WHITESPACE = /\s/u;

interface NormalizedText {
  text: string;
  /** For each normalized UTF-16 unit: [start, end) of the original code point it came from. */
  origin: [number, number][];
}

/** normalizeForRefusal with an origin map (same rules; lower-casing per code point). */
export function normalizeWithOrigins(original: string): NormalizedText {
  let text = '';
  const origin: [number, number][] = [];
  let pendingSpace: [number, number] | null = null;
  let index = 0;
  for (const character of original) {
    const start = index;
    index += character.length;
    if (WHITESPACE.test(character)) {
      // A run of whitespace becomes one space, and only between visible characters (trim).
      if (text.length > 0) pendingSpace ??= [start, index];
      continue;
    }
    if (character === '*') continue;
    const mapped = character === '\u2019' ? "'" : character.toLowerCase();
    if (pendingSpace) {
      text += ' ';
      origin.push(pendingSpace);
      pendingSpace = null;
    }
    text += mapped;
    for (let unit = 0; unit < mapped.length; unit++) origin.push([start, index]);
  }
  return { text, origin };
}

/** [start, end) ranges of every occurrence of every marker in `original`, sorted and merged. */
export function markerSpans(original: string, markers: readonly string[]): [number, number][] {
  const { text, origin } = normalizeWithOrigins(original);
  const spans: [number, number][] = [];
  for (const marker of markers) {
    if (marker.length === 0) continue;
    for (let at = text.indexOf(marker); at >= 0; at = text.indexOf(marker, at + 1)) {
      spans.push([origin[at]![0], origin[at + marker.length - 1]![1]]);
    }
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const merged: [number, number][] = [];
  for (const span of spans) {
    const last = merged[merged.length - 1];
    if (last && span[0] <= last[1]) last[1] = Math.max(last[1], span[1]);
    else merged.push([span[0], span[1]]);
  }
  return merged;
}

/** The classifier's verdict plus where its markers are, for the UI. `markers` must be normalized. */
export function checkRefusal(response: string, markers: readonly string[] = DEFAULT_REFUSAL_MARKERS): RefusalCheck {
  const verdict = classifyRefusal(response, markers);
  return { refused: verdict.refused, matchedMarkers: verdict.matchedMarkers, spans: markerSpans(response, verdict.matchedMarkers) };
}
