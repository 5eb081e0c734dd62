// AssemblyScript: the BF16 orthogonalization kernels in WebAssembly SIMD, compiled by scripts/build-kernels.mjs
// into src/core/bf16-wasm-module.ts. They do the float64 operations of the reference twin
// (src/core/orthogonalize.ts) in the same order, lane by lane, so the bytes are identical:
// - decoding is exact (BF16 bits shifted into float32 bits, promoted to float64);
// - pass 1 sums rᵢ·Wᵢⱼ over the rows i in order, each column j in its own lane;
// - the rows edit sums x·r over the columns j in order, each row in its own lane (two rows per vector);
// - results are rounded to nearest even straight from the float64 bits (integer add and shift), as the twin's
//   encoder does for normal BF16 results; any other result goes through the twin's own encoder (imported).
// Callers guarantee no NaN or ±Inf in the input (hasNonFinite): wasm leaves NaN payloads unspecified.
// Pointers are byte offsets into this module's memory, laid out by the caller (src/core/bf16-wasm.ts).

@external("env", "encodeSlow")
declare function encodeSlow(value: f64): i32;
/** The twin's normPreservingFactor(‖e‖², ‖e′‖²) for the norm-preserving rows edit. */
@external("env", "normFactor")
declare function normFactor(before: f64, after: f64): f64;

const ABS_MASK: u64 = 0x7fffffffffffffff;
const SIGN_MASK: u64 = 0x8000000000000000;
const ROUND_HALF: u64 = 0xfffffffffff; // 2^44 − 1: bits below the round bit
const REBIAS: u64 = 896 << 7; // (1023 − 127) in the exponent field of a BF16 bit pattern

@inline function decodeLow(v: v128): v128 {
  return i32x4.shl(i32x4.extend_low_i16x8_u(v), 16);
}
@inline function decodeHigh(v: v128): v128 {
  return i32x4.shl(i32x4.extend_high_i16x8_u(v), 16);
}
@inline function promoteLow(f: v128): v128 {
  return f64x2.promote_low_f32x4(f);
}
@inline function promoteHigh(f: v128): v128 {
  return f64x2.promote_low_f32x4(i32x4.shuffle(f, f, 2, 3, 2, 3));
}

/** BF16 bits of one float64, rounded to nearest even; the twin's encoder outside the normal BF16 range. */
@inline function encodeScalar(value: f64): u32 {
  const bits = reinterpret<u64>(value);
  const exponent = <u32>((bits >> 52) & 0x7ff);
  if (exponent >= 897 && exponent <= 1150) {
    const magnitude = bits & ABS_MASK;
    const rounded = ((magnitude + ROUND_HALF + ((magnitude >> 45) & 1)) >> 45) - REBIAS;
    return <u32>(rounded | ((bits & SIGN_MASK) >> 48));
  }
  return <u32>encodeSlow(value);
}

/** Two float64 lanes → their BF16 bits in the low 16 bits of two i64 lanes; `inRange` lanes are exact. */
@inline function encodePair(v: v128): v128 {
  const magnitude = v128.and(v, i64x2.splat(ABS_MASK));
  const rounded = i64x2.shr_u(i64x2.add(i64x2.add(magnitude, i64x2.splat(ROUND_HALF)), v128.and(i64x2.shr_u(magnitude, 45), i64x2.splat(1))), 45);
  return v128.or(i64x2.sub(rounded, i64x2.splat(REBIAS)), i64x2.shr_u(v128.and(v, i64x2.splat(SIGN_MASK)), 48));
}
@inline function inRange(v: v128): v128 {
  const exponent = i64x2.shr_u(v128.and(v, i64x2.splat(ABS_MASK)), 52);
  return v128.and(i64x2.ge_s(exponent, i64x2.splat(897)), i64x2.le_s(exponent, i64x2.splat(1150)));
}

/** Eight float64 (four vectors) encoded and stored at `out`; lanes outside the fast range one by one. */
@inline function storeEight(out: usize, a: v128, b: v128, c: v128, d: v128): void {
  const ok = v128.and(v128.and(inRange(a), inRange(b)), v128.and(inRange(c), inRange(d)));
  if (i64x2.all_true(ok)) {
    const low = i32x4.shuffle(encodePair(a), encodePair(b), 0, 2, 4, 6);
    const high = i32x4.shuffle(encodePair(c), encodePair(d), 0, 2, 4, 6);
    v128.store(out, i16x8.narrow_i32x4_u(low, high));
  } else {
    store<u16>(out, encodeScalar(f64x2.extract_lane(a, 0)));
    store<u16>(out + 2, encodeScalar(f64x2.extract_lane(a, 1)));
    store<u16>(out + 4, encodeScalar(f64x2.extract_lane(b, 0)));
    store<u16>(out + 6, encodeScalar(f64x2.extract_lane(b, 1)));
    store<u16>(out + 8, encodeScalar(f64x2.extract_lane(c, 0)));
    store<u16>(out + 10, encodeScalar(f64x2.extract_lane(c, 1)));
    store<u16>(out + 12, encodeScalar(f64x2.extract_lane(d, 0)));
    store<u16>(out + 14, encodeScalar(f64x2.extract_lane(d, 1)));
  }
}

@inline function decodeScalar(bits: u32): f64 {
  return <f64>reinterpret<f32>(bits << 16);
}

/** `x − delta` where delta ≠ 0, else x itself (as the twin: −0 − 0 would lose the sign). */
@inline function subtract(x: v128, delta: v128): v128 {
  return v128.bitselect(f64x2.sub(x, delta), x, f64x2.ne(delta, f64x2.splat(0)));
}

/** 1 when any of `count` BF16 values at `data` is NaN or ±Inf. */
export function hasNonFinite(data: usize, count: i32): i32 {
  let j = 0;
  const mask = i16x8.splat(0x7f80);
  let seen = i16x8.splat(0);
  for (; j + 8 <= count; j += 8) seen = v128.or(seen, i16x8.eq(v128.and(v128.load(data + (<usize>j << 1)), mask), mask));
  if (v128.any_true(seen)) return 1;
  for (; j < count; j++) if ((load<u16>(data + (<usize>j << 1)) & 0x7f80) == 0x7f80) return 1;
  return 0;
}

/** Pass 1 of the columns edit: projection[j] += r[i]·W[i, j] over the rows in order. */
export function projectColumns(chunk: usize, rows: i32, cols: i32, direction: usize, projection: usize): void {
  const vectorCols = cols & ~7;
  for (let i = 0; i < rows; i++) {
    const coefficient = <f64>load<f32>(direction + (<usize>i << 2));
    if (coefficient == 0) continue;
    const c = f64x2.splat(coefficient);
    const row = chunk + ((<usize>i * <usize>cols) << 1);
    let j = 0;
    for (; j < vectorCols; j += 8) {
      const v = v128.load(row + (<usize>j << 1));
      const low = decodeLow(v);
      const high = decodeHigh(v);
      const p = projection + (<usize>j << 3);
      v128.store(p, f64x2.add(v128.load(p), f64x2.mul(c, promoteLow(low))));
      v128.store(p + 16, f64x2.add(v128.load(p + 16), f64x2.mul(c, promoteHigh(low))));
      v128.store(p + 32, f64x2.add(v128.load(p + 32), f64x2.mul(c, promoteLow(high))));
      v128.store(p + 48, f64x2.add(v128.load(p + 48), f64x2.mul(c, promoteHigh(high))));
    }
    for (; j < cols; j++) {
      const p = projection + (<usize>j << 3);
      store<f64>(p, load<f64>(p) + coefficient * decodeScalar(load<u16>(row + (<usize>j << 1))));
    }
  }
}

/** Pass 2 of the columns edit, W − scale·r pᵀ, from `chunk` into `output` (which may be `chunk`). */
export function applyColumns(chunk: usize, output: usize, rows: i32, cols: i32, direction: usize, projection: usize, scale: f64): void {
  const vectorCols = cols & ~7;
  for (let i = 0; i < rows; i++) {
    const coefficient = scale * <f64>load<f32>(direction + (<usize>i << 2));
    const offset = (<usize>i * <usize>cols) << 1;
    if (coefficient == 0) {
      memory.copy(output + offset, chunk + offset, <usize>cols << 1);
      continue;
    }
    const c = f64x2.splat(coefficient);
    let j = 0;
    for (; j < vectorCols; j += 8) {
      const v = v128.load(chunk + offset + (<usize>j << 1));
      const low = decodeLow(v);
      const high = decodeHigh(v);
      const p = projection + (<usize>j << 3);
      storeEight(
        output + offset + (<usize>j << 1),
        subtract(promoteLow(low), f64x2.mul(c, v128.load(p))),
        subtract(promoteHigh(low), f64x2.mul(c, v128.load(p + 16))),
        subtract(promoteLow(high), f64x2.mul(c, v128.load(p + 32))),
        subtract(promoteHigh(high), f64x2.mul(c, v128.load(p + 48))),
      );
    }
    for (; j < cols; j++) {
      const x = decodeScalar(load<u16>(chunk + offset + (<usize>j << 1)));
      const delta = coefficient * load<f64>(projection + (<usize>j << 3));
      store<u16>(output + offset + (<usize>j << 1), encodeScalar(delta != 0 ? x - delta : x));
    }
  }
}

/** One row of the rows edit once its coefficient is known: x − coefficient·r, encoded. */
function editRow(input: usize, output: usize, cols: i32, directionF64: usize, coefficient: f64): void {
  if (coefficient == 0) {
    memory.copy(output, input, <usize>cols << 1);
    return;
  }
  const c = f64x2.splat(coefficient);
  const vectorCols = cols & ~7;
  let j = 0;
  for (; j < vectorCols; j += 8) {
    const v = v128.load(input + (<usize>j << 1));
    const low = decodeLow(v);
    const high = decodeHigh(v);
    const r = directionF64 + (<usize>j << 3);
    storeEight(
      output + (<usize>j << 1),
      subtract(promoteLow(low), f64x2.mul(c, v128.load(r))),
      subtract(promoteHigh(low), f64x2.mul(c, v128.load(r + 16))),
      subtract(promoteLow(high), f64x2.mul(c, v128.load(r + 32))),
      subtract(promoteHigh(high), f64x2.mul(c, v128.load(r + 48))),
    );
  }
  for (; j < cols; j++) {
    const x = decodeScalar(load<u16>(input + (<usize>j << 1)));
    const delta = coefficient * load<f64>(directionF64 + (<usize>j << 3));
    store<u16>(output + (<usize>j << 1), encodeScalar(delta != 0 ? x - delta : x));
  }
}

/**
 * The rows edit E − scale·(E r) rᵀ. `directionF64` holds r as float64 [cols]; `directionPairs` holds each rⱼ
 * twice [cols, 2], so one multiply serves two rows whose dot products run side by side in the two lanes.
 */
export function applyRows(chunk: usize, output: usize, rows: i32, cols: i32, directionF64: usize, directionPairs: usize, scale: f64): void {
  const rowBytes = <usize>cols << 1;
  let i = 0;
  for (; i + 2 <= rows; i += 2) {
    const a = chunk + <usize>i * rowBytes;
    sumRowPairs(a, a + rowBytes, cols, directionF64, directionPairs, DOTS, f64x2.splat(0));
    editRow(a, output + <usize>i * rowBytes, cols, directionF64, scale * f64x2.extract_lane(pairDots, 0));
    editRow(a + rowBytes, output + <usize>(i + 1) * rowBytes, cols, directionF64, scale * f64x2.extract_lane(pairDots, 1));
  }
  for (; i < rows; i++) {
    const a = chunk + <usize>i * rowBytes;
    let dot: f64 = 0;
    for (let j = 0; j < cols; j++) dot += decodeScalar(load<u16>(a + (<usize>j << 1))) * load<f64>(directionF64 + (<usize>j << 3));
    editRow(a, output + <usize>i * rowBytes, cols, directionF64, scale * dot);
  }
}

// The sums over the columns of two rows A and B side by side, lane 0 for A and lane 1 for B, each in the twin's
// column order. `mode` is a constant at each inlined call, so the branches fold away:
//   DOTS: r·e; DOTS_AND_SQUARES: r·e and e·e; EDITED_SQUARES: ‖e − c·r‖² with c = (c_A, c_B) in `coefficients`.
// Summed in locals (a global in the loop costs a memory round trip per add), then left in these two globals, as
// AssemblyScript has no tuples.
const DOTS = 0;
const DOTS_AND_SQUARES = 1;
const EDITED_SQUARES = 2;
let pairDots: v128 = f64x2.splat(0);
let pairSquares: v128 = f64x2.splat(0);

@inline function dotStep(mode: i32, dots: v128, x: v128, r: v128): v128 {
  return mode == EDITED_SQUARES ? dots : f64x2.add(dots, f64x2.mul(x, r));
}
@inline function squareStep(mode: i32, sums: v128, x: v128, r: v128, coefficients: v128): v128 {
  if (mode == DOTS) return sums;
  const e = mode == EDITED_SQUARES ? f64x2.sub(x, f64x2.mul(coefficients, r)) : x;
  return f64x2.add(sums, f64x2.mul(e, e));
}

@inline function sumRowPairs(a: usize, b: usize, cols: i32, directionF64: usize, directionPairs: usize, mode: i32, coefficients: v128): void {
  let dots = f64x2.splat(0);
  let sums = f64x2.splat(0);
  const vectorCols = cols & ~7;
  let j = 0;
  for (; j < vectorCols; j += 8) {
    const va = v128.load(a + (<usize>j << 1));
    const vb = v128.load(b + (<usize>j << 1));
    const lowA = decodeLow(va);
    const lowB = decodeLow(vb);
    const highA = decodeHigh(va);
    const highB = decodeHigh(vb);
    const r = directionPairs + (<usize>j << 4);
    // (A[j], B[j]) pairs in column order.
    const pairs01 = i32x4.shuffle(lowA, lowB, 0, 4, 1, 5);
    const pairs23 = i32x4.shuffle(lowA, lowB, 2, 6, 3, 7);
    const pairs45 = i32x4.shuffle(highA, highB, 0, 4, 1, 5);
    const pairs67 = i32x4.shuffle(highA, highB, 2, 6, 3, 7);
    let x: v128;
    let rk: v128;
    x = promoteLow(pairs01);
    rk = v128.load(r);
    dots = dotStep(mode, dots, x, rk);
    sums = squareStep(mode, sums, x, rk, coefficients);
    x = promoteHigh(pairs01);
    rk = v128.load(r + 16);
    dots = dotStep(mode, dots, x, rk);
    sums = squareStep(mode, sums, x, rk, coefficients);
    x = promoteLow(pairs23);
    rk = v128.load(r + 32);
    dots = dotStep(mode, dots, x, rk);
    sums = squareStep(mode, sums, x, rk, coefficients);
    x = promoteHigh(pairs23);
    rk = v128.load(r + 48);
    dots = dotStep(mode, dots, x, rk);
    sums = squareStep(mode, sums, x, rk, coefficients);
    x = promoteLow(pairs45);
    rk = v128.load(r + 64);
    dots = dotStep(mode, dots, x, rk);
    sums = squareStep(mode, sums, x, rk, coefficients);
    x = promoteHigh(pairs45);
    rk = v128.load(r + 80);
    dots = dotStep(mode, dots, x, rk);
    sums = squareStep(mode, sums, x, rk, coefficients);
    x = promoteLow(pairs67);
    rk = v128.load(r + 96);
    dots = dotStep(mode, dots, x, rk);
    sums = squareStep(mode, sums, x, rk, coefficients);
    x = promoteHigh(pairs67);
    rk = v128.load(r + 112);
    dots = dotStep(mode, dots, x, rk);
    sums = squareStep(mode, sums, x, rk, coefficients);
  }
  for (; j < cols; j++) {
    const x = f64x2.replace_lane(f64x2.splat(decodeScalar(load<u16>(a + (<usize>j << 1)))), 1, decodeScalar(load<u16>(b + (<usize>j << 1))));
    const rj = f64x2.splat(load<f64>(directionF64 + (<usize>j << 3)));
    dots = dotStep(mode, dots, x, rj);
    sums = squareStep(mode, sums, x, rj, coefficients);
  }
  pairDots = dots;
  pairSquares = sums;
}

// ---- The norm-preserving edit (src/core/norm-preserving.ts): no "delta ≠ 0" select there, every row summed.

/** Pass 1: projection[j] += r[i]·W[i, j] and squaredNorms[j] += W[i, j]² over all rows in order. */
export function projectColumnsWithNorms(chunk: usize, rows: i32, cols: i32, direction: usize, projection: usize, squaredNorms: usize): void {
  const vectorCols = cols & ~7;
  for (let i = 0; i < rows; i++) {
    const coefficient = <f64>load<f32>(direction + (<usize>i << 2));
    const c = f64x2.splat(coefficient);
    const row = chunk + ((<usize>i * <usize>cols) << 1);
    let j = 0;
    for (; j < vectorCols; j += 8) {
      const v = v128.load(row + (<usize>j << 1));
      const low = decodeLow(v);
      const high = decodeHigh(v);
      const p = projection + (<usize>j << 3);
      const q = squaredNorms + (<usize>j << 3);
      const x0 = promoteLow(low);
      const x1 = promoteHigh(low);
      const x2 = promoteLow(high);
      const x3 = promoteHigh(high);
      v128.store(p, f64x2.add(v128.load(p), f64x2.mul(c, x0)));
      v128.store(p + 16, f64x2.add(v128.load(p + 16), f64x2.mul(c, x1)));
      v128.store(p + 32, f64x2.add(v128.load(p + 32), f64x2.mul(c, x2)));
      v128.store(p + 48, f64x2.add(v128.load(p + 48), f64x2.mul(c, x3)));
      v128.store(q, f64x2.add(v128.load(q), f64x2.mul(x0, x0)));
      v128.store(q + 16, f64x2.add(v128.load(q + 16), f64x2.mul(x1, x1)));
      v128.store(q + 32, f64x2.add(v128.load(q + 32), f64x2.mul(x2, x2)));
      v128.store(q + 48, f64x2.add(v128.load(q + 48), f64x2.mul(x3, x3)));
    }
    for (; j < cols; j++) {
      const x = decodeScalar(load<u16>(row + (<usize>j << 1)));
      const p = projection + (<usize>j << 3);
      const q = squaredNorms + (<usize>j << 3);
      store<f64>(p, load<f64>(p) + coefficient * x);
      store<f64>(q, load<f64>(q) + x * x);
    }
  }
}

/** Pass 2: (W − w·r pᵀ)·diag(factors); a row is copied where its coefficient is 0 and every factor is 1. */
export function applyColumnsNormPreserving(chunk: usize, output: usize, rows: i32, cols: i32, direction: usize, projection: usize, factors: usize, weight: f64, untouchedColumns: i32): void {
  const vectorCols = cols & ~7;
  for (let i = 0; i < rows; i++) {
    const coefficient = weight * <f64>load<f32>(direction + (<usize>i << 2));
    const offset = (<usize>i * <usize>cols) << 1;
    if (coefficient == 0 && untouchedColumns) {
      memory.copy(output + offset, chunk + offset, <usize>cols << 1);
      continue;
    }
    const c = f64x2.splat(coefficient);
    let j = 0;
    for (; j < vectorCols; j += 8) {
      const v = v128.load(chunk + offset + (<usize>j << 1));
      const low = decodeLow(v);
      const high = decodeHigh(v);
      const p = projection + (<usize>j << 3);
      const f = factors + (<usize>j << 3);
      storeEight(
        output + offset + (<usize>j << 1),
        f64x2.mul(f64x2.sub(promoteLow(low), f64x2.mul(c, v128.load(p))), v128.load(f)),
        f64x2.mul(f64x2.sub(promoteHigh(low), f64x2.mul(c, v128.load(p + 16))), v128.load(f + 16)),
        f64x2.mul(f64x2.sub(promoteLow(high), f64x2.mul(c, v128.load(p + 32))), v128.load(f + 32)),
        f64x2.mul(f64x2.sub(promoteHigh(high), f64x2.mul(c, v128.load(p + 48))), v128.load(f + 48)),
      );
    }
    for (; j < cols; j++) {
      const x = decodeScalar(load<u16>(chunk + offset + (<usize>j << 1)));
      store<u16>(output + offset + (<usize>j << 1), encodeScalar((x - coefficient * load<f64>(projection + (<usize>j << 3))) * load<f64>(factors + (<usize>j << 3))));
    }
  }
}

/** One row of the norm-preserving rows edit: ‖e‖² and r·e, then ‖e − c·r‖², then (e − c·r)·factor encoded. */
function normPreservingRow(input: usize, output: usize, cols: i32, directionF64: usize, weight: f64): void {
  let dot: f64 = 0;
  let before: f64 = 0;
  for (let j = 0; j < cols; j++) {
    const x = decodeScalar(load<u16>(input + (<usize>j << 1)));
    dot += x * load<f64>(directionF64 + (<usize>j << 3));
    before += x * x;
  }
  const coefficient = weight * dot;
  if (coefficient == 0) {
    memory.copy(output, input, <usize>cols << 1);
    return;
  }
  let after: f64 = 0;
  for (let j = 0; j < cols; j++) {
    const edited = decodeScalar(load<u16>(input + (<usize>j << 1))) - coefficient * load<f64>(directionF64 + (<usize>j << 3));
    after += edited * edited;
  }
  writeNormPreserved(input, output, cols, directionF64, coefficient, normFactor(before, after));
}

/** (e − c·r)·factor encoded; a zero coefficient copies the row (the twin leaves it untouched). */
function writeNormPreserved(input: usize, output: usize, cols: i32, directionF64: usize, coefficient: f64, scalarFactor: f64): void {
  if (coefficient == 0) {
    memory.copy(output, input, <usize>cols << 1);
    return;
  }
  const factor = f64x2.splat(scalarFactor);
  const c = f64x2.splat(coefficient);
  const vectorCols = cols & ~7;
  let j = 0;
  for (; j < vectorCols; j += 8) {
    const v = v128.load(input + (<usize>j << 1));
    const low = decodeLow(v);
    const high = decodeHigh(v);
    const r = directionF64 + (<usize>j << 3);
    storeEight(
      output + (<usize>j << 1),
      f64x2.mul(f64x2.sub(promoteLow(low), f64x2.mul(c, v128.load(r))), factor),
      f64x2.mul(f64x2.sub(promoteHigh(low), f64x2.mul(c, v128.load(r + 16))), factor),
      f64x2.mul(f64x2.sub(promoteLow(high), f64x2.mul(c, v128.load(r + 32))), factor),
      f64x2.mul(f64x2.sub(promoteHigh(high), f64x2.mul(c, v128.load(r + 48))), factor),
    );
  }
  for (; j < cols; j++) {
    const x = decodeScalar(load<u16>(input + (<usize>j << 1)));
    store<u16>(output + (<usize>j << 1), encodeScalar((x - coefficient * load<f64>(directionF64 + (<usize>j << 3))) * scalarFactor));
  }
}

/**
 * The norm-preserving rows edit: each row e becomes (e − w·r(r·e))·‖e‖/‖e − w·r(r·e)‖. Two rows side by side
 * for every sum over the columns (the twin's order within each lane), as applyRows does.
 */
export function applyRowsNormPreserving(chunk: usize, output: usize, rows: i32, cols: i32, directionF64: usize, directionPairs: usize, weight: f64): void {
  const rowBytes = <usize>cols << 1;
  let i = 0;
  for (; i + 2 <= rows; i += 2) {
    const a = chunk + <usize>i * rowBytes;
    const b = a + rowBytes;
    sumRowPairs(a, b, cols, directionF64, directionPairs, DOTS_AND_SQUARES, f64x2.splat(0));
    const coefficients = f64x2.mul(f64x2.splat(weight), pairDots);
    const before = pairSquares;
    const coefficientA = f64x2.extract_lane(coefficients, 0);
    const coefficientB = f64x2.extract_lane(coefficients, 1);
    // ‖e − c·r‖² only matters for a row that is edited; a zero coefficient's lane is computed and ignored.
    let after = f64x2.splat(0);
    if (coefficientA != 0 || coefficientB != 0) {
      sumRowPairs(a, b, cols, directionF64, directionPairs, EDITED_SQUARES, coefficients);
      after = pairSquares;
    }
    writeNormPreserved(a, output + <usize>i * rowBytes, cols, directionF64, coefficientA, coefficientA == 0 ? 1 : normFactor(f64x2.extract_lane(before, 0), f64x2.extract_lane(after, 0)));
    writeNormPreserved(b, output + <usize>(i + 1) * rowBytes, cols, directionF64, coefficientB, coefficientB == 0 ? 1 : normFactor(f64x2.extract_lane(before, 1), f64x2.extract_lane(after, 1)));
  }
  for (; i < rows; i++) normPreservingRow(chunk + <usize>i * rowBytes, output + <usize>i * rowBytes, cols, directionF64, weight);
}

/** First free byte after the module's own static data: where the caller's buffers start. */
export function heapBase(): usize {
  return __heap_base;
}
