/**
 * Units of the config file: sizes ("20MB", "512KB", "1GiB", or a plain number of bytes) and
 * durations ("60s", "5m", "1h30m", "250ms", or a plain number of seconds), as plain functions
 * and as zod schemas that turn them into bytes and milliseconds.
 *
 * Sizes follow the Postfix / mail-gateway habit of binary multiples: K, KB and KiB all mean
 * 1024; M, MB, MiB mean 1024²; G, GB, GiB 1024³ (T, TB, TiB 1024⁴). Unit letters are
 * case-insensitive. Durations use ms, s, m, h, d (lower case: "M" could be read as months).
 */
import { z } from 'zod';

const KIB = 1024;

const SIZE_MULTIPLIERS: Readonly<Record<string, number>> = {
  '': 1, b: 1,
  k: KIB, kb: KIB, kib: KIB,
  m: KIB ** 2, mb: KIB ** 2, mib: KIB ** 2,
  g: KIB ** 3, gb: KIB ** 3, gib: KIB ** 3,
  t: KIB ** 4, tb: KIB ** 4, tib: KIB ** 4,
};

const SIZE_TEXT = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

export const SIZE_EXPECTED = 'expected a size like 20MB (K/KB/KiB, M/MB/MiB, G/GB/GiB are multiples of 1024; a plain number is bytes)';
export const DURATION_EXPECTED = 'expected a duration like 5m (units ms, s, m, h, d, combinable as 1h30m; a plain number is seconds)';

/** Bytes for a size, or null when `input` is not one. */
export function sizeInBytes(input: string | number): number | null {
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) && input >= 0 ? input : null;
  }
  const m = SIZE_TEXT.exec(input.trim());
  if (!m) return null;
  const multiplier = SIZE_MULTIPLIERS[m[2].toLowerCase()];
  if (multiplier === undefined) return null;
  const amount = Number(m[1]);
  // A fraction of a byte is not a size; "1.5MB" is.
  if (multiplier === 1 && !Number.isInteger(amount)) return null;
  const bytes = Math.round(amount * multiplier);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** Parses a size into bytes; throws a RangeError naming the bad input. */
export function parseSize(input: string | number): number {
  const bytes = sizeInBytes(input);
  if (bytes === null) throw new RangeError(`${SIZE_EXPECTED}, got ${JSON.stringify(input)}`);
  return bytes;
}

const DURATION_MS: Readonly<Record<string, number>> = {
  ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000,
};

const DURATION_PART = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*/y;
const PLAIN_SECONDS = /^\d+(?:\.\d+)?$/;

/** Milliseconds for a duration, or null when `input` is not one. */
export function durationInMs(input: string | number): number | null {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) return null;
    return checkedMs(input * 1000);
  }
  const text = input.trim();
  if (text === '') return null;
  if (PLAIN_SECONDS.test(text)) return checkedMs(Number(text) * 1000);
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const start = DURATION_PART.lastIndex;
    const m = DURATION_PART.exec(text);
    if (!m || m.index !== start) return null;
    total += Number(m[1]) * DURATION_MS[m[2]];
  }
  return checkedMs(total);
}

function checkedMs(ms: number): number | null {
  const rounded = Math.round(ms);
  return Number.isSafeInteger(rounded) ? rounded : null;
}

/** Parses a duration into milliseconds; throws a RangeError naming the bad input. */
export function parseDuration(input: string | number): number {
  const ms = durationInMs(input);
  if (ms === null) throw new RangeError(`${DURATION_EXPECTED}, got ${JSON.stringify(input)}`);
  return ms;
}

/** Renders bytes the way the config file writes them: "100MB", "1536KB", "123" (bytes). */
export function formatSize(bytes: number): string {
  for (const [unit, multiplier] of [['GB', KIB ** 3], ['MB', KIB ** 2], ['KB', KIB]] as const) {
    if (bytes >= multiplier && bytes % multiplier === 0) return `${bytes / multiplier}${unit}`;
  }
  return String(bytes);
}

/** Renders milliseconds the way the config file writes them: "5m", "90s", "250ms". */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A size in the config file → bytes (a non-negative safe integer). */
export const sizeSchema = z
  .union([z.string(), z.number()], { error: SIZE_EXPECTED })
  .transform((input, ctx) => {
    const bytes = sizeInBytes(input);
    if (bytes === null) {
      ctx.addIssue({ code: 'custom', message: `${SIZE_EXPECTED}, got ${JSON.stringify(input)}`, input });
      return z.NEVER;
    }
    return bytes;
  });

/** A duration in the config file → milliseconds (a non-negative safe integer). */
export const durationSchema = z
  .union([z.string(), z.number()], { error: DURATION_EXPECTED })
  .transform((input, ctx) => {
    const ms = durationInMs(input);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `${DURATION_EXPECTED}, got ${JSON.stringify(input)}`, input });
      return z.NEVER;
    }
    return ms;
  });

/** A size that must be more than zero bytes. */
export const positiveSizeSchema = sizeSchema.refine((bytes) => bytes > 0, { error: 'must be more than 0 bytes' });

/** A duration that must be more than zero. */
export const positiveDurationSchema = durationSchema.refine((ms) => ms > 0, { error: 'must be longer than 0' });
