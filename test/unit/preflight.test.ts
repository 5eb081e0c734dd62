import { describe, expect, it } from 'vitest';
import { preflightWarnings } from '../../src/core/preflight';

const clean = { unknownTokenRate: 0, truncationRate: 0, refusalRateA: 1, refusalRateB: 0, actionRateB: 1 };

describe('preflightWarnings', () => {
  it('says nothing when the prompts are readable and the contrast is behavioural', () => {
    expect(preflightWarnings(clean)).toEqual([]);
    expect(preflightWarnings({ ...clean, unknownTokenRate: null })).toEqual([]);
    expect(preflightWarnings({ ...clean, unknownTokenRate: 0.05, refusalRateA: 0.5, refusalRateB: 0.25 })).toEqual([]);
  });
  it('warns about unknown tokens with the rate, as on toy-llama with the workbench defaults', () => {
    const warnings = preflightWarnings({ ...clean, unknownTokenRate: 0.53, refusalRateA: 0.17, refusalRateB: 0.1 });
    expect(warnings.map((warning) => warning.kind)).toEqual(['unknown-tokens', 'no-refusal', 'no-contrast']);
    expect(warnings[0].message).toMatch(/^53% of the prompt tokens are unknown/);
    expect(warnings[1].message).toMatch(/refuses only 17%/);
  });
  it('warns about prompts longer than the context, and about B refused as often as A', () => {
    expect(preflightWarnings({ ...clean, truncationRate: 0.25 }).map((warning) => warning.kind)).toEqual(['truncation']);
    const noContrast = preflightWarnings({ ...clean, refusalRateA: 0.9, refusalRateB: 0.75 });
    expect(noContrast.map((warning) => warning.kind)).toEqual(['no-contrast']);
    expect(noContrast[0].message).toMatch(/A is refused 90% and B 75%/);
  });
});
