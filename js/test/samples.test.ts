/**
 * The sample files of a curl line's body, checked against node's own zlib and Buffer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 as zlibCrc32, inflateSync } from 'node:zlib';

import { base64, crc32, dataUri, EMPTY_ZIP, solidPng, zlibCompress } from '../src/samples';

/** Deterministic pseudo-random bytes. */
function noise(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

test('base64 is standard base64, padding included', () => {
  for (let n = 0; n < 40; n++) {
    const bytes = noise(n, n + 7);
    assert.equal(base64(bytes), Buffer.from(bytes).toString('base64'), `${n} bytes`);
  }
  assert.equal(dataUri('text/plain', Uint8Array.from([104, 105])), 'data:text/plain;base64,aGk=');
});

test("crc32 is zlib's", () => {
  for (const bytes of [new Uint8Array(0), noise(1), noise(1000, 3), new Uint8Array(70000)]) {
    assert.equal(crc32(bytes), zlibCrc32(bytes));
  }
});

test('zlibCompress is zlib data that inflates back, small when the data repeats', () => {
  const cases: [Uint8Array, number[]][] = [
    [new Uint8Array(0), [1]],
    [noise(1), [1]],
    [noise(5000, 9), [1, 17]],
    [new Uint8Array(100000).fill(7), [1]],
    [Uint8Array.from({ length: 30000 }, (_, i) => (i % 33 ? 255 : 0)), [1, 33]],
    [Uint8Array.from({ length: 300 }, (_, i) => i % 3), [3, 1]],
    [Uint8Array.from({ length: 70000 }, (_, i) => (i % 40000 === 0 ? 1 : 2)), [1, 40000]]
  ];
  for (const [data, distances] of cases) {
    const packed = zlibCompress(data, distances);
    assert.deepEqual(new Uint8Array(inflateSync(packed)), data);
  }
  assert.ok(zlibCompress(new Uint8Array(100000).fill(7)).length < 1000);
});

/** The chunks of a PNG, each with its CRC checked. */
function chunks(png: Uint8Array): Map<string, Buffer> {
  const buf = Buffer.from(png);
  assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const found = new Map<string, Buffer>();
  let at = 8;
  while (at < buf.length) {
    const length = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    const data = buf.subarray(at + 8, at + 8 + length);
    const crc = zlibCrc32(buf.subarray(at + 4, at + 8 + length));
    assert.equal(buf.readUInt32BE(at + 8 + length), crc, type);
    found.set(type, data);
    at += 12 + length;
  }
  assert.equal(at, buf.length);
  return found;
}

test('solidPng: a valid grayscale PNG, white at 1 bit or one value at 8 bits', () => {
  for (const [width, height, gray] of [
    [1, 1, undefined],
    [13, 5, undefined],
    [8, 8, undefined],
    [7, 3, 42],
    [300, 2, 0]
  ] as [number, number, number | undefined][]) {
    const parts = chunks(solidPng(width, height, gray));
    assert.deepEqual([...parts.keys()], ['IHDR', 'IDAT', 'IEND']);
    const header = parts.get('IHDR')!;
    assert.equal(header.readUInt32BE(0), width);
    assert.equal(header.readUInt32BE(4), height);
    assert.deepEqual([...header.subarray(8)], [gray === undefined ? 1 : 8, 0, 0, 0, 0]);
    const raw = inflateSync(parts.get('IDAT')!);
    const rowBytes = gray === undefined ? Math.ceil(width / 8) : width;
    const row = [0, ...new Array(rowBytes).fill(gray === undefined ? 255 : gray)];
    assert.deepEqual([...raw], new Array(height).fill(row).flat());
  }
});

test('solidPng stays small for large images', () => {
  assert.ok(solidPng(1024, 1024).length < 4000, String(solidPng(1024, 1024).length));
  assert.ok(solidPng(512, 512, 3).length < 6000, String(solidPng(512, 512, 3).length));
});

test('EMPTY_ZIP is an end-of-central-directory record of no entries', () => {
  const zip = Buffer.from(EMPTY_ZIP);
  assert.equal(zip.length, 22);
  assert.equal(zip.readUInt32LE(0), 0x06054b50);
  assert.equal(zip.readUInt16LE(10), 0); // entries
});
