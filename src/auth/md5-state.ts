import { createHash } from 'node:crypto';

/**
 * HMAC-MD5 split at its 64-byte key blocks, the way Dovecot's CRAM-MD5
 * scheme and E-MailRelay store CRAM-MD5 secrets: the MD5 chaining state after
 * the inner (key XOR ipad) and the outer (key XOR opad) block. With those two
 * states the bridge answers a CRAM-MD5 challenge without knowing the password.
 *
 * node's crypto cannot start an MD5 from a saved state, hence the RFC 1321
 * compression function below; the tests hold it to node's own MD5 and HMAC.
 */
export interface HmacMd5Pads {
  inner: Uint32Array;
  outer: Uint32Array;
}

const BLOCK = 64;
const INITIAL = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
const SHIFTS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
// RFC 1321 3.4: K[i] = floor(abs(sin(i + 1)) * 2^32).
const K = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) >>> 0);

/** Runs one 64-byte block through MD5, updating `state` (a, b, c, d) in place. */
function compress(state: Uint32Array, block: Buffer, offset: number): void {
  let [a, b, c, d] = state;
  for (let i = 0; i < 64; i++) {
    let f: number;
    let g: number;
    if (i < 16) [f, g] = [(b & c) | (~b & d), i];
    else if (i < 32) [f, g] = [(d & b) | (~d & c), (5 * i + 1) % 16];
    else if (i < 48) [f, g] = [b ^ c ^ d, (3 * i + 5) % 16];
    else [f, g] = [c ^ (b | ~d), (7 * i) % 16];
    const shift = SHIFTS[(i >> 4) * 4 + (i % 4)];
    const sum = (a + f + K[i] + block.readUInt32LE(offset + g * 4)) | 0;
    [a, d, c] = [d, c, b];
    b = (b + ((sum << shift) | (sum >>> (32 - shift)))) | 0;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
}

/** MD5 of (the `done` bytes that produced `state`) followed by `data`; `done` is a multiple of 64. */
function md5From(state: Uint32Array, done: number, data: Buffer): Buffer {
  const current = Uint32Array.from(state);
  // Padding (RFC 1321 3.1-3.2): 0x80, zeros up to 56 mod 64, then the total length in bits.
  const padded = Buffer.alloc(Math.ceil((data.length + 9) / BLOCK) * BLOCK);
  data.copy(padded);
  padded[data.length] = 0x80;
  padded.writeBigUInt64LE(BigInt(done + data.length) * 8n, padded.length - 8);
  for (let offset = 0; offset < padded.length; offset += BLOCK) compress(current, padded, offset);
  const digest = Buffer.alloc(16);
  current.forEach((word, i) => digest.writeUInt32LE(word, i * 4));
  return digest;
}

function stateAfterBlock(block: Buffer): Uint32Array {
  const state = Uint32Array.from(INITIAL);
  compress(state, block, 0);
  return state;
}

/** The two pad states of HMAC-MD5 keyed with `key` (RFC 2104). */
export function hmacMd5Pads(key: Buffer): HmacMd5Pads {
  const padded = Buffer.alloc(BLOCK);
  (key.length > BLOCK ? createHash('md5').update(key).digest() : key).copy(padded);
  return {
    inner: stateAfterBlock(padded.map((byte) => byte ^ 0x36) as Buffer),
    outer: stateAfterBlock(padded.map((byte) => byte ^ 0x5c) as Buffer),
  };
}

/** HMAC-MD5 of `message`, continuing from saved pad states. */
export function hmacMd5WithPads(pads: HmacMd5Pads, message: Buffer): Buffer {
  return md5From(pads.outer, BLOCK, md5From(pads.inner, BLOCK, message));
}

/** Dovecot's 32-byte CRAM-MD5 context: outer then inner state, each as four little-endian words. */
export function padsToBytes(pads: HmacMd5Pads): Buffer {
  const bytes = Buffer.alloc(32);
  [...pads.outer, ...pads.inner].forEach((word, i) => bytes.writeUInt32LE(word, i * 4));
  return bytes;
}

export function padsFromBytes(bytes: Buffer): HmacMd5Pads {
  const words = Array.from({ length: 8 }, (_, i) => bytes.readUInt32LE(i * 4));
  return { outer: Uint32Array.from(words.slice(0, 4)), inner: Uint32Array.from(words.slice(4)) };
}
