/**
 * CRC-32 (ISO-HDLC: reflected polynomial 0xEDB88320, initial value and final XOR 0xFFFFFFFF), the checksum every
 * zip entry carries. Slicing-by-8: eight 256-entry tables let the loop consume eight bytes per step, which keeps
 * a multi-gigabyte export's checksum a small share of its time. Incremental: feed chunks of any size in order.
 */

const POLYNOMIAL = 0xedb88320;

/** TABLES[k][b]: the CRC register after byte b followed by k zero bytes. [8 × 256] */
const TABLES: Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL : crc >>> 1;
    tables[0][byte] = crc >>> 0;
  }
  for (let byte = 0; byte < 256; byte++) {
    for (let k = 1; k < 8; k++) tables[k][byte] = (tables[k - 1][byte] >>> 8) ^ tables[0][tables[k - 1][byte] & 0xff];
  }
  return tables;
})();

export class Crc32 {
  /** The register, before the final XOR. */
  private crc = 0xffffffff;

  update(bytes: Uint8Array): this {
    const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES;
    let crc = this.crc;
    let at = 0;
    const fast = bytes.byteLength - (bytes.byteLength % 8);
    while (at < fast) {
      const low = (crc ^ (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24))) >>> 0;
      crc =
        t7[low & 0xff] ^
        t6[(low >>> 8) & 0xff] ^
        t5[(low >>> 16) & 0xff] ^
        t4[low >>> 24] ^
        t3[bytes[at + 4]] ^
        t2[bytes[at + 5]] ^
        t1[bytes[at + 6]] ^
        t0[bytes[at + 7]];
      at += 8;
    }
    while (at < bytes.byteLength) crc = (crc >>> 8) ^ t0[(crc ^ bytes[at++]) & 0xff];
    this.crc = crc >>> 0;
    return this;
  }

  /** The checksum of everything fed so far, as an unsigned 32-bit integer. */
  value(): number {
    return (this.crc ^ 0xffffffff) >>> 0;
  }
}

export function crc32(bytes: Uint8Array): number {
  return new Crc32().update(bytes).value();
}
