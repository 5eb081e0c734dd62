/**
 * Marker highlighting must point at the characters the classifier matched: spans found through the origin map
 * agree with core/refusal's verdict on hand-written and seeded random replies.
 */
import { describe, expect, it } from 'vitest';
import { classifyRefusal, DEFAULT_REFUSAL_MARKERS, normalizeForRefusal } from '../../src/core/refusal';
import { checkRefusal, markerSpans, normalizeWithOrigins } from '../../src/core/refusal-spans';

describe('marker spans', () => {
  it('maps matches in the normalized text back to the reply as written', () => {
    const reply = '**I’m  Sorry**,\n I   CANNOT do that.';
    const check = checkRefusal(reply);
    expect(check.refused).toBe(true);
    expect(check.matchedMarkers).toEqual(classifyRefusal(reply).matchedMarkers);
    expect(check.spans.map(([start, end]) => reply.slice(start, end))).toEqual(['Sorry', 'I   CANNOT']);
  });

  it('merges overlapping markers into one span and finds repeated ones', () => {
    expect(markerSpans("i can't, i can't", ["i can'", "can't"])).toEqual([
      [0, 7],
      [9, 16],
    ]);
  });

  it('gives no spans for a compliant or empty reply', () => {
    expect(checkRefusal('Sure, here is the command.')).toEqual({ refused: false, matchedMarkers: [], spans: [] });
    expect(checkRefusal('  \n')).toEqual({ refused: true, matchedMarkers: [], spans: [] });
  });

  it('normalizes exactly like the classifier on seeded random text', () => {
    let state = 12345;
    const random = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const alphabet = ['I', 'i', ' ', '\n', '\t', '*', '’', "'", 'a', 'm', 'c', 'n', 'o', 't', 'S', 'o', 'r', 'y', 'É', '😀', 'an', 'sorry', 'I CAN NOT'];
    for (let trial = 0; trial < 2000; trial++) {
      const text = Array.from({ length: Math.floor(random() * 40) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
      expect(normalizeWithOrigins(text).text).toBe(normalizeForRefusal(text));
      const spans = markerSpans(text, DEFAULT_REFUSAL_MARKERS);
      const verdict = classifyRefusal(text);
      expect(spans.length > 0).toBe(verdict.matchedMarkers.length > 0);
      for (const [start, end] of spans) {
        const normalizedSpan = normalizeForRefusal(text.slice(start, end));
        expect(DEFAULT_REFUSAL_MARKERS.some((marker) => normalizedSpan.includes(marker))).toBe(true);
      }
    }
  });
});
