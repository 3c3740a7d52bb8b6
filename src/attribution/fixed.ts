/**
 * Exact arithmetic for attribution weights, so that anyone recomputing a trace gets the same
 * bits: information in Q16 fixed point from an integer log2 (Math.log2 may differ in the last
 * place between engines), credits as exact BigInt fractions, and weights as integer parts per
 * billion rounded by largest remainder, which sum to exactly 10^9.
 */

/** Fractional bits of the fixed-point information values (bits × 2^16). */
export const Q = 16;
const TWO = 2n << 30n;

const log2Cache = new Map<number, number>();

/**
 * floor(log2(x) · 2^16) for a positive integer x, by the bit-by-bit squaring method on a Q30
 * mantissa: integer operations only, so the same on every machine.
 */
export function log2Fixed(x: number): number {
  if (!Number.isSafeInteger(x) || x < 1)
    throw new RangeError(`log2Fixed needs a positive integer, got ${x}`);
  const hit = log2Cache.get(x);
  if (hit !== undefined) return hit;
  const big = BigInt(x);
  const exponent = big.toString(2).length - 1;
  // The mantissa x / 2^exponent in [1, 2), as Q30 (truncated when x has more than 31 bits).
  let z = exponent <= 30 ? big << BigInt(30 - exponent) : big >> BigInt(exponent - 30);
  let result = exponent << Q;
  for (let bit = Q - 1; bit >= 0; bit--) {
    z = (z * z) >> 30n;
    if (z >= TWO) {
      z >>= 1n;
      result += 1 << bit;
    }
  }
  if (log2Cache.size > 1 << 16) log2Cache.clear();
  log2Cache.set(x, result);
  return result;
}

/** A non-negative exact fraction. */
export interface Fraction {
  num: bigint;
  den: bigint;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

export function fraction(num: bigint, den: bigint): Fraction {
  const g = gcd(num, den);
  return g > 1n ? { num: num / g, den: den / g } : { num, den };
}

export function addFraction(a: Fraction, b: Fraction): Fraction {
  return fraction(a.num * b.den + b.num * a.den, a.den * b.den);
}

export const PPB = 1_000_000_000n;

/**
 * Normalised weights in parts per billion (Hamilton's method over 10^9, ties to the smaller key),
 * so they sum to exactly 10^9. Empty when the total is zero.
 */
export function normalisePpb(credits: ReadonlyMap<string, Fraction>): Map<string, bigint> {
  return apportion(PPB, credits);
}

/**
 * Hamilton's method: `total` units shared in proportion to `shares` — each key gets the floor of
 * its exact quota, and the units left over go one each to the largest remainders (ties: the
 * key earlier in `order`, by default the smaller key). Keys with no unit are absent.
 */
export function apportion(
  total: bigint,
  shares: ReadonlyMap<string, Fraction>,
  order?: readonly string[],
): Map<string, bigint> {
  const keys = order ? [...order].filter((k) => shares.has(k)) : [...shares.keys()].sort();
  let lcm = 1n;
  for (const k of keys) {
    const den = shares.get(k)!.den;
    lcm = (lcm / gcd(lcm, den)) * den;
  }
  const scaled = keys.map((k) => {
    const f = shares.get(k)!;
    return { k, v: f.num * (lcm / f.den) };
  });
  const sum = scaled.reduce((s, x) => s + x.v, 0n);
  const out = new Map<string, bigint>();
  if (sum <= 0n || total <= 0n) return out;
  let assigned = 0n;
  const rows = scaled.map(({ k, v }, rank) => {
    const units = (v * total) / sum;
    assigned += units;
    return { k, rank, units, rem: (v * total) % sum };
  });
  let left = total - assigned;
  const byRemainder = [...rows].sort((a, b) =>
    a.rem === b.rem ? a.rank - b.rank : a.rem > b.rem ? -1 : 1,
  );
  for (const row of byRemainder) {
    if (left === 0n) break;
    row.units += 1n;
    left -= 1n;
  }
  for (const row of rows) if (row.units > 0n) out.set(row.k, row.units);
  return out;
}
