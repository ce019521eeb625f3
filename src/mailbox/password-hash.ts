/**
 * Password hashes of the users file, for SMTP AUTH: scrypt (RFC 7914) with a random salt,
 * stored as `scrypt$N$r$p$salt$hash` (salt and hash in unpadded base64), e.g.
 *
 *   scrypt$32768$8$1$9x8PBrr5i2c4B1Lc6Q4VJQ$ifl4x0ZJ8i0pQH6m1u3k…
 *
 * The parameters travel with the hash, so they can be raised later without invalidating old
 * hashes. Verification recomputes with the stored parameters (bounded, so a hostile file cannot
 * make one check take gigabytes) and compares with timingSafeEqual. A plain-text password is
 * never accepted in the file.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** 2^15 × 8 × 128 B = 32 MiB and ~50–100 ms per hash: fine for AUTH, expensive for guessing. */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };

const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Bounds a stored hash's parameters must keep (a file naming N = 2^30 must not stall the gateway). */
const LIMITS = { minN: 2 ** 10, maxN: 2 ** 20, maxR: 32, maxP: 16 } as const;

const HASH_FORMAT = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/]{16,})={0,2}\$([A-Za-z0-9+/]{22,})={0,2}$/;

export const PASSWORD_HASH_EXPECTED = 'expected a password hash like scrypt$32768$8$1$<salt>$<hash> (set it with `postern users passwd`), never a plain-text password';

interface ParsedHash extends ScryptParams {
  readonly salt: Buffer;
  readonly hash: Buffer;
}

function parseHash(stored: string): ParsedHash | null {
  const m = HASH_FORMAT.exec(stored);
  if (!m) return null;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (!validParams({ N, r, p })) return null;
  const salt = Buffer.from(stored.split('$')[4], 'base64');
  const hash = Buffer.from(stored.split('$')[5], 'base64');
  if (salt.length < 8 || hash.length < 16 || hash.length > 128) return null;
  return { N, r, p, salt, hash };
}

function validParams({ N, r, p }: ScryptParams): boolean {
  const powerOfTwo = Number.isInteger(N) && N > 1 && (N & (N - 1)) === 0;
  return powerOfTwo && N >= LIMITS.minN && N <= LIMITS.maxN
    && Number.isInteger(r) && r >= 1 && r <= LIMITS.maxR
    && Number.isInteger(p) && p >= 1 && p <= LIMITS.maxP;
}

/** True when `stored` is a hash this module can verify. */
export function isPasswordHash(stored: string): boolean {
  return parseHash(stored) !== null;
}

function scryptAsync(password: string | Buffer, salt: Buffer, length: number, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(password, salt, length, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');

/** A new hash of `password` with a fresh random salt. */
export async function hashPassword(password: string | Buffer, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> {
  if (!validParams(params)) throw new RangeError(`scrypt parameters out of range: N=${params.N} r=${params.r} p=${params.p}`);
  const salt = randomBytes(SALT_BYTES);
  const hash = await scryptAsync(password, salt, HASH_BYTES, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${b64(salt)}$${b64(hash)}`;
}

/** A hash nobody knows the password of: verified against when a user has none, so timing says nothing. */
const DUMMY_HASH = `scrypt$${DEFAULT_SCRYPT_PARAMS.N}$8$1$${b64(Buffer.alloc(SALT_BYTES, 1))}$${b64(Buffer.alloc(HASH_BYTES, 0))}`;

/**
 * True when `password` matches `stored`. A malformed or missing hash gives false after the same
 * amount of work as a real check (so an unknown user cannot be told apart by timing).
 */
export async function verifyPassword(password: string | Buffer, stored: string | null | undefined): Promise<boolean> {
  const parsed = stored ? parseHash(stored) : null;
  const target = parsed ?? parseHash(DUMMY_HASH)!;
  const computed = await scryptAsync(password, target.salt, target.hash.length, target);
  const equal = timingSafeEqual(computed, target.hash);
  return parsed !== null && equal;
}
