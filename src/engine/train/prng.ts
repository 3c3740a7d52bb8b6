/**
 * A seeded, deterministic pseudo-random generator for training: LoRA initialisation, dropout
 * masks and data shuffling.
 *
 * Why not `Math.random`: it cannot be seeded, so two runs (or two machines) would train different
 * adapters from the same data and settings, and nothing could be re-checked later. Why
 * xoshiro128** (Blackman and Vigna, 2018): 128 bits of state and a period of 2^128 − 1, it passes
 * BigCrush, and it needs only 32-bit integer operations, which JavaScript does exactly with
 * `Math.imul`, `>>>` and `|`, so the stream is bit-identical on every engine and platform. The
 * simpler mulberry32 has only 2^32 states (a dropout mask of a few million draws per step would
 * revisit them within hours of training) and fails some statistical tests. The state is filled
 * from the seed by splitmix32, as the xoshiro authors recommend, so nearby seeds give unrelated
 * streams.
 */
export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** The second normal of the last Box–Muller pair, or NaN. */
  private spare = Number.NaN;

  /**
   * @param seed any integer (taken modulo 2^32)
   * @param stream an independent stream of the same seed (e.g. 0 for init, 1 for dropout)
   */
  constructor(seed: number, stream = 0) {
    let state = (seed ^ Math.imul(stream, 0x85ebca6b)) >>> 0;
    const splitmix32 = (): number => {
      state = (state + 0x9e3779b9) | 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = splitmix32();
    this.s1 = splitmix32();
    this.s2 = splitmix32();
    this.s3 = splitmix32();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the one forbidden state
  }

  /** The next 32 random bits, as an unsigned integer. */
  nextUint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform number in [0, 1) with 32 random bits. */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** A uniform number in [low, high). */
  range(low: number, high: number): number {
    return low + (high - low) * this.uniform();
  }

  /** A uniform integer in [0, n), without modulo bias (n ≤ 2^32). */
  int(n: number): number {
    if (!(n >= 1 && n <= 4294967296) || !Number.isInteger(n)) {
      throw new RangeError(`Prng.int: n must be an integer in 1 … 2^32, got ${n}`);
    }
    const limit = 4294967296 - (4294967296 % n); // accept draws below a multiple of n
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** A standard normal number (Box–Muller; the pair's second value is kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const z = this.spare;
      this.spare = Number.NaN;
      return z;
    }
    const u = 1 - this.uniform(); // (0, 1]: log(u) is finite
    const r = Math.sqrt(-2 * Math.log(u));
    const phi = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(phi);
    return r * Math.cos(phi);
  }

  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i]!;
      items[i] = items[j]!;
      items[j] = tmp;
    }
    return items;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
