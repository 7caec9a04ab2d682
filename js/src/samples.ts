/**
 * Small, real files for a curl line's body, made without a DOM (so unit-testable in node): a solid PNG of
 * any size (zlib-compressed with deflate's fixed codes, small even for large sizes) and an empty zip.
 */

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) {
      c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (PNG chunks, zip). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) {
    c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < bytes.length; i++) {
    a = (a + bytes[i]) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** Bits packed least-significant first, as deflate writes them. */
class BitWriter {
  bytes: number[] = [];
  private bit = 0;
  private current = 0;

  write(value: number, count: number): void {
    for (let i = 0; i < count; i++) {
      this.current |= ((value >>> i) & 1) << this.bit;
      if (++this.bit === 8) {
        this.bytes.push(this.current);
        this.bit = 0;
        this.current = 0;
      }
    }
  }

  /** A Huffman code: its most significant bit first. */
  writeCode(code: number, length: number): void {
    for (let i = length - 1; i >= 0; i--) {
      this.write((code >>> i) & 1, 1);
    }
  }

  finish(): number[] {
    if (this.bit) {
      this.bytes.push(this.current);
    }
    return this.bytes;
  }
}

const LENGTH_BASE = [
  3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163,
  195, 227, 258
];
const LENGTH_EXTRA = [
  0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0
];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049,
  3073, 4097, 6145, 8193, 12289, 16385, 24577
];
const DIST_EXTRA = [
  0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13
];

function writeLiteral(out: BitWriter, symbol: number): void {
  if (symbol < 144) {
    out.writeCode(0x30 + symbol, 8);
  } else if (symbol < 256) {
    out.writeCode(0x190 + symbol - 144, 9);
  } else if (symbol < 280) {
    out.writeCode(symbol - 256, 7);
  } else {
    out.writeCode(0xc0 + symbol - 280, 8);
  }
}

function lastIndexAtMost(table: number[], value: number): number {
  let i = table.length - 1;
  while (table[i] > value) {
    i--;
  }
  return i;
}

function writeMatch(out: BitWriter, length: number, distance: number): void {
  const l = lastIndexAtMost(LENGTH_BASE, length);
  writeLiteral(out, 257 + l);
  out.write(length - LENGTH_BASE[l], LENGTH_EXTRA[l]);
  const d = lastIndexAtMost(DIST_BASE, distance);
  out.writeCode(d, 5);
  out.write(distance - DIST_BASE[d], DIST_EXTRA[d]);
}

/**
 * zlib data (RFC 1950) of one deflate block with the fixed codes (RFC 1951), matching only at the given
 * distances: enough to make repetitive data (an image's rows) small, and simple.
 */
export function zlibCompress(data: Uint8Array, distances: number[] = [1]): Uint8Array {
  const out = new BitWriter();
  out.write(1, 1); // the last block
  out.write(1, 2); // fixed Huffman codes
  const usable = distances.filter(d => d >= 1 && d <= 32768);
  let i = 0;
  while (i < data.length) {
    let best = 0;
    let bestDistance = 0;
    for (const d of usable) {
      if (d > i) {
        continue;
      }
      let n = 0;
      while (n < 258 && i + n < data.length && data[i + n] === data[i + n - d]) {
        n++;
      }
      if (n > best) {
        best = n;
        bestDistance = d;
      }
    }
    if (best >= 3) {
      writeMatch(out, best, bestDistance);
      i += best;
    } else {
      writeLiteral(out, data[i]);
      i++;
    }
  }
  writeLiteral(out, 256); // end of block
  const body = out.finish();
  const sum = adler32(data);
  return Uint8Array.from([
    0x78,
    0x01,
    ...body,
    sum >>> 24,
    (sum >>> 16) & 0xff,
    (sum >>> 8) & 0xff,
    sum & 0xff
  ]);
}

function u32(value: number): number[] {
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}

function chunk(type: string, data: Uint8Array): number[] {
  const typed = Uint8Array.from([...type].map(c => c.charCodeAt(0)).concat(Array.from(data)));
  return [...u32(data.length), ...typed, ...u32(crc32(typed))];
}

/**
 * A grayscale PNG of one shade: white in 1 bit per pixel (`gray` undefined), or 8 bits per pixel of
 * value `gray` (a segmentation map's label id, say).
 */
export function solidPng(width: number, height: number, gray?: number): Uint8Array {
  const eight = gray !== undefined;
  const rowBytes = eight ? width : Math.ceil(width / 8);
  const row = 1 + rowBytes;
  const raw = new Uint8Array(row * height); // each row: filter type 0, then the pixels
  for (let y = 0; y < height; y++) {
    raw.fill(eight ? gray & 0xff : 0xff, y * row + 1, (y + 1) * row);
  }
  const header = Uint8Array.from([
    ...u32(width),
    ...u32(height),
    eight ? 8 : 1, // bit depth
    0, // grayscale
    0,
    0,
    0
  ]);
  return Uint8Array.from([
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a,
    ...chunk('IHDR', header),
    ...chunk('IDAT', zlibCompress(raw, [1, row])),
    ...chunk('IEND', new Uint8Array(0))
  ]);
}

/** An empty zip archive: its end-of-central-directory record alone. */
export const EMPTY_ZIP = Uint8Array.from([0x50, 0x4b, 0x05, 0x06, ...new Array(18).fill(0)]);

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard base64 with padding. */
export function base64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out +=
      BASE64[n >>> 18] +
      BASE64[(n >>> 12) & 63] +
      (i + 1 < bytes.length ? BASE64[(n >>> 6) & 63] : '=') +
      (i + 2 < bytes.length ? BASE64[n & 63] : '=');
  }
  return out;
}

/** A data URI of bytes. */
export function dataUri(mime: string, bytes: Uint8Array): string {
  return `data:${mime};base64,${base64(bytes)}`;
}
