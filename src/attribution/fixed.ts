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
 * Normalised weights in parts per billion: floor shares, then the leftover units one each to the
 * largest remainders (ties: the smaller key), so they sum to exactly 10^9. Empty when the total is
 * zero.
 */
export function normalisePpb(credits: ReadonlyMap<string, Fraction>): Map<string, bigint> {
  const keys = [...credits.keys()].sort();
  // Common denominator: Σ num_i · (D / den_i) over D = Π den_i would grow; use the lcm.
  let lcm = 1n;
  for (const k of keys) {
    const den = credits.get(k)!.den;
    lcm = (lcm / gcd(lcm, den)) * den;
  }
  const scaled = keys.map((k) => {
    const f = credits.get(k)!;
    return { k, v: f.num * (lcm / f.den) };
  });
  const total = scaled.reduce((sum, x) => sum + x.v, 0n);
  const out = new Map<string, bigint>();
  if (total === 0n) return out;
  let assigned = 0n;
  const rows = scaled.map(({ k, v }) => {
    const share = (v * PPB) / total;
    assigned += share;
    return { k, share, rem: (v * PPB) % total };
  });
  let left = PPB - assigned;
  const order = [...rows].sort((a, b) =>
    a.rem === b.rem ? (a.k < b.k ? -1 : 1) : a.rem > b.rem ? -1 : 1,
  );
  for (const row of order) {
    if (left === 0n) break;
    row.share += 1n;
    left -= 1n;
  }
  for (const row of rows) if (row.share > 0n) out.set(row.k, row.share);
  return out;
}
