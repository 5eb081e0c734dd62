import { InvalidInputError } from '../base/errors';

/** The dtypes the safetensors format names, and their element sizes in bytes. */
export type SafetensorsDType =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'F64'
  | 'I64'
  | 'U64';

const DTYPE_BYTE_SIZES: Readonly<Record<SafetensorsDType, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

export const SAFETENSORS_DTYPES = Object.keys(DTYPE_BYTE_SIZES) as SafetensorsDType[];

export function isSafetensorsDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTE_SIZES, value);
}

export function dtypeByteSize(dtype: SafetensorsDType): number {
  const size = DTYPE_BYTE_SIZES[dtype];
  if (size === undefined) throw new InvalidInputError(`unknown safetensors dtype ${String(dtype)}; known: ${SAFETENSORS_DTYPES.join(', ')}`);
  return size;
}
