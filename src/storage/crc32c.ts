/**
 * CRC-32C (Castagnoli), table driven. Node 20 has no zlib.crc32, and CRC-32C is what LevelDB,
 * ext4 and iSCSI use: it detects all burst errors up to 32 bits and has better Hamming distance
 * than the zlib polynomial for the record sizes we write.
 */

/** CRC32C_POLYNOMIAL_REVERSED is 0x1EDC6F41 with its bits reversed, as the right-shifting loop needs. */
const CRC32C_POLYNOMIAL_REVERSED = 0x82f63b78;

const TABLE = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) {
      c = c & 1 ? (c >>> 1) ^ CRC32C_POLYNOMIAL_REVERSED : c >>> 1;
    }
    table[n] = c >>> 0;
  }
  return table;
}

/**
 * crc32c returns the CRC-32C of bytes as an unsigned 32-bit number. Pass the result of an earlier
 * call as `previous` to continue a checksum over several pieces.
 */
export function crc32c(bytes: Uint8Array, previous = 0): number {
  let crc = ~previous >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    crc = TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  }
  return ~crc >>> 0;
}
