/**
 * Direction files (docs/contracts.md "Direction files"): `.safetensors` with a tensor `direction` [d] or
 * `directions` [L+1, d] (F32/F16/BF16, also F64), `.npy` float [d] or [L+1, d], `.json` array or array of
 * arrays. One direction is picked (by --layer for per-layer files), checked and normalized to unit length.
 */
import { bfloat16BitsToFloat32, float16BitsToFloat32 } from '../core/dtypes';
import { checkedUnitDirection, DirectionError } from '../core/direction';
import { InvalidFileError, InvalidInputError } from '../base/errors';
import { parseNpy, npyToFloat64 } from './npy';
import { encodeSafetensors, parseSafetensorsHeaderBytes, type SafetensorsTensorInfo } from './safetensors';

export interface DirectionFile {
  file: string;
  /** One row [d], or L+1 rows [d] each (index 0 = embedding output). */
  rows: Float32Array[];
  perLayer: boolean;
  /** Train-split mean activations [L+1][d] (`harmful_mean`, `harmless_mean`), when the file holds them. */
  harmfulMeans?: Float32Array[];
  harmlessMeans?: Float32Array[];
}

export const SINGLE_DIRECTION_TENSOR = 'direction';
export const PER_LAYER_DIRECTIONS_TENSOR = 'directions';
export const HARMFUL_MEAN_TENSOR = 'harmful_mean';
export const HARMLESS_MEAN_TENSOR = 'harmless_mean';

export function parseDirectionFile(file: string, bytes: Uint8Array): DirectionFile {
  const lower = file.toLowerCase();
  if (lower.endsWith('.safetensors')) return parseSafetensorsDirection(file, bytes);
  if (lower.endsWith('.npy')) return parseNpyDirection(file, bytes);
  if (lower.endsWith('.json')) return parseJsonDirection(file, bytes);
  if (lower.endsWith('.pt') || lower.endsWith('.pth') || lower.endsWith('.pkl') || lower.endsWith('.bin')) {
    throw new InvalidFileError(file, 'looks like a PyTorch/pickle file; pickles are never loaded. Save the direction as .safetensors, .npy or .json');
  }
  throw new InvalidFileError(file, 'has an unknown extension; a direction file must be .safetensors, .npy or .json');
}

function parseSafetensorsDirection(file: string, bytes: Uint8Array): DirectionFile {
  const header = parseSafetensorsHeaderBytes(file, bytes.byteLength, bytes);
  const single = header.tensors.find((tensor) => tensor.name === SINGLE_DIRECTION_TENSOR);
  const perLayer = header.tensors.find((tensor) => tensor.name === PER_LAYER_DIRECTIONS_TENSOR);
  if (single && perLayer) {
    throw new InvalidFileError(file, `has both "${SINGLE_DIRECTION_TENSOR}" and "${PER_LAYER_DIRECTIONS_TENSOR}"; keep one`);
  }
  const tensor = single ?? perLayer;
  if (!tensor) {
    const names = header.tensors.map((candidate) => JSON.stringify(candidate.name)).slice(0, 10);
    throw new InvalidFileError(
      file,
      `has no tensor "${SINGLE_DIRECTION_TENSOR}" [d] or "${PER_LAYER_DIRECTIONS_TENSOR}" [L+1, d] (found: ${names.join(', ') || 'none'})`,
    );
  }
  const expectedRank = tensor === single ? 1 : 2;
  if (tensor.shape.length !== expectedRank) {
    throw new InvalidFileError(file, `tensor "${tensor.name}" has shape [${tensor.shape.join(', ')}]; expected ${expectedRank === 1 ? '[d]' : '[L+1, d]'}`);
  }
  const begin = header.dataStart + tensor.dataOffsets[0];
  const values = decodeSafetensorsFloats(file, tensor, bytes.subarray(begin, header.dataStart + tensor.dataOffsets[1]));
  const [rowCount, width] = expectedRank === 1 ? [1, tensor.shape[0]] : [tensor.shape[0], tensor.shape[1]];
  const parsed: DirectionFile = { file, rows: splitRows(file, values, rowCount, width), perLayer: expectedRank === 2 };
  // The means sit beside per-layer directions, with the same shape [L+1, d].
  for (const [name, key] of [[HARMFUL_MEAN_TENSOR, 'harmfulMeans'], [HARMLESS_MEAN_TENSOR, 'harmlessMeans']] as const) {
    const mean = header.tensors.find((candidate) => candidate.name === name);
    if (!mean) continue;
    if (mean.shape.length !== 2 || mean.shape[0] !== rowCount || mean.shape[1] !== width || expectedRank !== 2) {
      throw new InvalidFileError(file, `tensor "${name}" has shape [${mean.shape.join(', ')}]; expected [${rowCount}, ${width}] like "${tensor.name}"`);
    }
    const meanValues = decodeSafetensorsFloats(file, mean, bytes.subarray(header.dataStart + mean.dataOffsets[0], header.dataStart + mean.dataOffsets[1]));
    const index = meanValues.findIndex((value) => !Number.isFinite(value));
    if (index >= 0) throw new InvalidFileError(file, `tensor "${name}" holds ${meanValues[index]} at element ${index} (must be finite)`);
    parsed[key] = splitRows(file, meanValues, rowCount, width);
  }
  return parsed;
}

function decodeSafetensorsFloats(file: string, tensor: SafetensorsTensorInfo, data: Uint8Array): Float64Array {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = new Float64Array(tensor.shape.reduce((product, dimension) => product * dimension, 1));
  switch (tensor.dtype) {
    case 'F32':
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'F64':
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true);
      break;
    case 'F16':
      for (let i = 0; i < out.length; i++) out[i] = float16BitsToFloat32(view.getUint16(i * 2, true));
      break;
    case 'BF16':
      for (let i = 0; i < out.length; i++) out[i] = bfloat16BitsToFloat32(view.getUint16(i * 2, true));
      break;
    default:
      throw new InvalidFileError(file, `tensor "${tensor.name}" is ${tensor.dtype}; a direction must be F32, F16 or BF16`);
  }
  return out;
}

function parseNpyDirection(file: string, bytes: Uint8Array): DirectionFile {
  const array = parseNpy(file, bytes);
  if (array.shape.length !== 1 && array.shape.length !== 2) {
    throw new InvalidFileError(file, `holds an array of shape (${array.shape.join(', ')}); expected (d,) or (L+1, d)`);
  }
  const values = npyToFloat64(file, array);
  const [rowCount, width] = array.shape.length === 1 ? [1, array.shape[0]] : [array.shape[0], array.shape[1]];
  return { file, rows: splitRows(file, values, rowCount, width), perLayer: array.shape.length === 2 };
}

function parseJsonDirection(file: string, bytes: Uint8Array): DirectionFile {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    const reason = error instanceof RangeError ? 'nested too deeply' : (error as Error).message.slice(0, 200);
    throw new InvalidFileError(file, `is not valid JSON (${reason})`);
  }
  // Also accept {"direction": [...]} / {"directions": [[...], ...]}, the names the safetensors form uses.
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    if (Array.isArray(record[SINGLE_DIRECTION_TENSOR])) value = record[SINGLE_DIRECTION_TENSOR];
    else if (Array.isArray(record[PER_LAYER_DIRECTIONS_TENSOR])) value = record[PER_LAYER_DIRECTIONS_TENSOR];
  }
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidFileError(file, 'must be a non-empty JSON array of numbers, or an array of such arrays (one per layer)');
  }
  const perLayer = Array.isArray(value[0]);
  const rowsIn = (perLayer ? value : [value]) as unknown[];
  const rows = rowsIn.map((row, rowIndex) => {
    if (!Array.isArray(row)) throw new InvalidFileError(file, `row ${rowIndex} is not an array`);
    if (row.length !== (rowsIn[0] as unknown[]).length) {
      throw new InvalidFileError(file, `row ${rowIndex} has ${row.length} entries but row 0 has ${(rowsIn[0] as unknown[]).length}`);
    }
    return Float32Array.from(row, (entry, index) => {
      // JSON has no NaN/Infinity literals; null (how JS writes them) would silently become 0 — refuse it.
      if (typeof entry !== 'number') {
        throw new InvalidFileError(file, `${perLayer ? `row ${rowIndex} ` : ''}entry ${index} is ${describeJsonValue(entry)}, not a number`);
      }
      return entry;
    });
  });
  return { file, rows, perLayer };
}

/**
 * A JSON value in a message without serializing it: JSON.stringify of a 100k-deep array overflows the stack,
 * and of a huge one floods the terminal.
 */
function describeJsonValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length > 40 ? `a string ("${value.slice(0, 40)}…")` : `a string (${JSON.stringify(value)})`;
  return typeof value === 'object' ? 'an object' : String(value);
}

function splitRows(file: string, values: Float64Array, rowCount: number, width: number): Float32Array[] {
  if (rowCount === 0 || width === 0) throw new InvalidFileError(file, `holds an empty direction (${rowCount} × ${width})`);
  const rows: Float32Array[] = [];
  for (let row = 0; row < rowCount; row++) rows.push(Float32Array.from(values.subarray(row * width, (row + 1) * width)));
  return rows;
}

/**
 * The unit direction to use: the file's single direction, or row `layer` of a per-layer file. Errors name the
 * file: per-layer without a layer, layer out of range, row count ≠ numLayers + 1 (when numLayers is given),
 * wrong length (InvalidInputError), zero/NaN/Inf (InvalidFileError).
 */
export function selectDirection(parsed: DirectionFile, options: { layer?: number; hiddenSize: number; numLayers?: number }): Float32Array {
  const { file, rows } = parsed;
  let row: Float32Array;
  let where = '';
  if (parsed.perLayer) {
    // A per-layer file has L+1 rows (index 0 = embedding output); another row count means another model.
    if (options.numLayers !== undefined && rows.length !== options.numLayers + 1) {
      throw new InvalidInputError(
        `${file}: holds ${rows.length} per-layer directions but the model has ${options.numLayers} layers (${options.numLayers + 1} expected); was it made for another model?`,
        { file },
      );
    }
    const layer = options.layer;
    if (layer === undefined) {
      throw new InvalidInputError(`${file}: holds ${rows.length} per-layer directions (layers 0-${rows.length - 1}); choose one with --layer N`, { file });
    }
    if (!Number.isInteger(layer) || layer < 0 || layer >= rows.length) {
      throw new InvalidInputError(`${file}: --layer ${layer} is out of range; the file has layers 0-${rows.length - 1}`, { file });
    }
    row = rows[layer];
    where = `layer ${layer} `;
  } else {
    row = rows[0];
  }
  try {
    return Float32Array.from(checkedUnitDirection(row, options.hiddenSize, file));
  } catch (error) {
    if (!(error instanceof DirectionError)) throw error;
    if (error.problem === 'length') throw new InvalidInputError(`${file}: ${where}${error.detail}`, { file });
    throw new InvalidFileError(file, `${where}${error.detail}`);
  }
}

/**
 * `directions.safetensors` as `abliterate analyze` writes it: F32 `directions` [rows, d] and, when given, the
 * train-split means `harmful_mean` and `harmless_mean` [rows, d].
 */
export function encodeDirectionsSafetensors(rows: Float32Array[], means?: { harmful: Float32Array[]; harmless: Float32Array[] }): Uint8Array {
  if (rows.length === 0) throw new InvalidInputError('no directions to write');
  const width = rows[0].length;
  const matrix = (name: string, values: Float32Array[]) => {
    if (values.length !== rows.length || values.some((row) => row.length !== width) || width === 0) {
      throw new InvalidInputError(`${name} must be ${rows.length} rows of the same non-zero length ${width}`);
    }
    const data = new Uint8Array(values.length * width * 4); // [rows, d] float32 little-endian
    const view = new DataView(data.buffer);
    values.forEach((row, rowIndex) => {
      for (let column = 0; column < width; column++) view.setFloat32((rowIndex * width + column) * 4, row[column], true);
    });
    return { name, dtype: 'F32' as const, shape: [values.length, width], data };
  };
  const tensors = [matrix(PER_LAYER_DIRECTIONS_TENSOR, rows)];
  if (means) tensors.push(matrix(HARMFUL_MEAN_TENSOR, means.harmful), matrix(HARMLESS_MEAN_TENSOR, means.harmless));
  return encodeSafetensors(tensors);
}
