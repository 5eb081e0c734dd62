/**
 * NumPy `.npy` reader for plain numeric arrays. The header is a Python dict literal; it is parsed by a tiny
 * literal parser (never evaluated), capped at numpy's own default `max_header_size`, and object arrays —
 * which numpy stores as pickles — are refused outright: a pickle can run code, so it is never read.
 */
import { float16BitsToFloat32 } from '../core/dtypes';
import { InvalidFileError } from '../base/errors';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** numpy.load's default max_header_size: larger headers are only produced by hostile or broken files. */
export const NPY_MAX_HEADER_BYTES = 10_000;

export interface NpyArray {
  /** Type string as written, e.g. "<f4". */
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  /** The raw element bytes (exactly numel × item size). */
  data: Uint8Array;
}

type PyLiteral = string | boolean | number | PyLiteral[] | Map<string, PyLiteral>;

export function parseNpy(file: string, bytes: Uint8Array): NpyArray {
  if (bytes.byteLength < 10 || MAGIC.some((byte, index) => bytes[index] !== byte)) {
    throw new InvalidFileError(file, 'is not a .npy file (no \\x93NUMPY magic)');
  }
  const major = bytes[6];
  if (major !== 1 && major !== 2 && major !== 3) throw new InvalidFileError(file, `has unsupported .npy format version ${major}.${bytes[7]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.byteLength < 8 + lengthBytes) throw new InvalidFileError(file, 'is truncated inside its .npy preamble');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerLength > NPY_MAX_HEADER_BYTES) {
    throw new InvalidFileError(file, `declares a ${headerLength}-byte .npy header, over the ${NPY_MAX_HEADER_BYTES}-byte limit`);
  }
  const headerStart = 8 + lengthBytes;
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.byteLength) throw new InvalidFileError(file, 'is truncated inside its .npy header');
  let headerText: string;
  try {
    headerText = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(bytes.subarray(headerStart, dataStart));
  } catch {
    throw new InvalidFileError(file, '.npy header is not valid text');
  }
  let header: PyLiteral;
  try {
    header = parsePythonLiteral(headerText);
  } catch (error) {
    throw new InvalidFileError(file, `.npy header is not a plain dict literal (${(error as Error).message})`);
  }
  if (!(header instanceof Map)) throw new InvalidFileError(file, '.npy header is not a dict');
  const descr = header.get('descr');
  const fortranOrder = header.get('fortran_order');
  const shapeValue = header.get('shape');
  if (typeof descr !== 'string') {
    throw new InvalidFileError(file, 'has a structured or missing .npy dtype (descr); only plain numeric arrays are read');
  }
  if (/^[|<>=]?O/.test(descr)) throw new InvalidFileError(file, 'holds a Python object array (a pickle); pickles are never loaded');
  if (typeof fortranOrder !== 'boolean') throw new InvalidFileError(file, '.npy header has no fortran_order True/False');
  if (!Array.isArray(shapeValue) || !shapeValue.every((dimension) => typeof dimension === 'number' && Number.isSafeInteger(dimension) && dimension >= 0)) {
    throw new InvalidFileError(file, '.npy header shape is not a tuple of non-negative integers');
  }
  const shape = shapeValue as number[];
  const itemSize = npyItemSize(descr);
  if (itemSize === null) throw new InvalidFileError(file, `has unsupported .npy dtype ${JSON.stringify(descr)}`);
  let expectedBytes = BigInt(itemSize);
  for (const dimension of shape) expectedBytes *= BigInt(dimension);
  const available = bytes.byteLength - dataStart;
  if (expectedBytes !== BigInt(available)) {
    throw new InvalidFileError(
      file,
      `shape (${shape.join(', ')}) of ${descr} needs ${expectedBytes} data bytes but the file has ${available}${expectedBytes > BigInt(available) ? ' (truncated)' : ''}`,
    );
  }
  return { descr, fortranOrder, shape, data: bytes.subarray(dataStart) };
}

function npyItemSize(descr: string): number | null {
  const match = /^[|<>=]?[a-zA-Z](\d+)$/.exec(descr);
  if (match) return Number(match[1]);
  if (/^[|<>=]?[?bB]$/.test(descr)) return 1;
  return null;
}

/**
 * The array's values as float64 in C (row-major) order, for floating-point dtypes (<f2, <f4, <f8 and their
 * big-endian forms); a Fortran-ordered 2-D array is transposed into row-major.
 */
export function npyToFloat64(file: string, array: NpyArray): Float64Array {
  const match = /^([<>=|]?)f([248])$/.exec(array.descr);
  if (!match) throw new InvalidFileError(file, `has .npy dtype ${JSON.stringify(array.descr)}; a direction must be float16, float32 or float64`);
  const littleEndian = match[1] !== '>';
  const itemSize = Number(match[2]);
  const view = new DataView(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  const count = array.data.byteLength / itemSize;
  const stored = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const offset = i * itemSize;
    stored[i] =
      itemSize === 8
        ? view.getFloat64(offset, littleEndian)
        : itemSize === 4
          ? view.getFloat32(offset, littleEndian)
          : float16BitsToFloat32(view.getUint16(offset, littleEndian));
  }
  if (!array.fortranOrder || array.shape.length < 2) return stored;
  if (array.shape.length > 2) throw new InvalidFileError(file, 'is a Fortran-ordered array of more than 2 dimensions');
  const [rows, columns] = array.shape as [number, number];
  const rowMajor = new Float64Array(count); // [rows, columns]
  for (let row = 0; row < rows; row++) {
    for (let column = 0; column < columns; column++) rowMajor[row * columns + column] = stored[column * rows + row];
  }
  return rowMajor;
}

const MAX_LITERAL_DEPTH = 4;

/** Parses the subset of Python literals numpy writes in .npy headers: dict, tuple, list, str, int, True/False. */
function parsePythonLiteral(text: string): PyLiteral {
  let position = 0;
  const skip = () => {
    while (position < text.length && /\s/.test(text[position])) position++;
  };
  const fail = (problem: string): never => {
    throw new Error(`${problem} at character ${position}`);
  };
  const parseValue = (depth: number): PyLiteral => {
    if (depth > MAX_LITERAL_DEPTH) fail('nested too deeply');
    skip();
    const char = text[position];
    if (char === "'" || char === '"') {
      const end = text.indexOf(char, position + 1);
      if (end < 0) fail('unterminated string');
      const value = text.slice(position + 1, end);
      if (value.includes('\\')) fail('escapes are not supported in header strings');
      position = end + 1;
      return value;
    }
    if (char === '{' || char === '(' || char === '[') {
      const close = char === '{' ? '}' : char === '(' ? ')' : ']';
      position++;
      const items: PyLiteral[] = [];
      const dict = new Map<string, PyLiteral>();
      for (;;) {
        skip();
        if (text[position] === close) {
          position++;
          return char === '{' ? dict : items;
        }
        const item = parseValue(depth + 1);
        skip();
        if (char === '{') {
          if (typeof item !== 'string') fail('dict key is not a string');
          if (text[position] !== ':') fail("expected ':'");
          position++;
          if (dict.has(item as string)) fail(`duplicate key ${item as string}`);
          dict.set(item as string, parseValue(depth + 1));
          skip();
        } else {
          items.push(item);
        }
        if (text[position] === ',') position++;
        else if (text[position] !== close) fail(`expected ',' or '${close}'`);
      }
    }
    const word = /^(True|False|\d+L?)/.exec(text.slice(position, position + 24));
    if (!word) return fail('unexpected token');
    position += word[0].length;
    if (word[0] === 'True') return true;
    if (word[0] === 'False') return false;
    const value = Number(word[0].replace('L', ''));
    if (!Number.isSafeInteger(value)) fail('integer too large');
    return value;
  };
  const value = parseValue(0);
  skip();
  if (position < text.length) fail('trailing characters');
  return value;
}
