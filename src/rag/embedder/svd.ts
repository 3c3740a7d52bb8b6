/**
 * The linear algebra of the static embedder, in plain TypeScript and float64 with a fixed order of
 * operations (so the same input gives the same bits): token co-occurrence counts, their positive
 * pointwise mutual information (PPMI) as a sparse matrix, and a randomized truncated SVD
 * (Halko, Martinsson & Tropp 2011, algorithm 4.4 with Cholesky-QR re-orthonormalization).
 *
 * Dense matrices are row-major `Float64Array`s (`rows × cols`).
 */

/** A sparse matrix in compressed sparse row form. */
export interface Csr {
  rows: number;
  cols: number;
  /** `rowStart[i]` … `rowStart[i + 1]` index `colIndex`/`values` for row i. */
  rowStart: Int32Array;
  colIndex: Int32Array;
  values: Float64Array;
}

/**
 * Symmetric co-occurrence counts within `window` positions, as a CSR of counts. `sequences` hold
 * row indices (or -1 for a position that takes part in no pair but still counts as a position).
 * Each unordered pair of positions i < j ≤ i + window adds 1 to (a, b) and to (b, a).
 */
export function cooccurrence(sequences: readonly Int32Array[], rows: number, window: number): Csr {
  if (rows > 0xffff) throw new RangeError(`cooccurrence: at most 65535 rows, not ${rows}`);
  let pairs = 0;
  for (const seq of sequences) {
    for (let i = 0; i < seq.length; i++) {
      if ((seq[i] ?? -1) < 0) continue;
      const last = Math.min(seq.length - 1, i + window);
      for (let j = i + 1; j <= last; j++) if ((seq[j] ?? -1) >= 0) pairs += 2;
    }
  }
  // a pair (a, b) as one uint32 (a << 16 | b), so a numeric sort groups equal pairs
  const keys = new Uint32Array(pairs);
  let at = 0;
  for (const seq of sequences) {
    for (let i = 0; i < seq.length; i++) {
      const a = seq[i] ?? -1;
      if (a < 0) continue;
      const last = Math.min(seq.length - 1, i + window);
      for (let j = i + 1; j <= last; j++) {
        const b = seq[j] ?? -1;
        if (b < 0) continue;
        keys[at++] = ((a << 16) | b) >>> 0;
        keys[at++] = ((b << 16) | a) >>> 0;
      }
    }
  }
  keys.sort();
  let distinct = 0;
  for (let i = 0; i < keys.length; i++) if (i === 0 || keys[i] !== keys[i - 1]) distinct++;
  const rowStart = new Int32Array(rows + 1);
  const colIndex = new Int32Array(distinct);
  const values = new Float64Array(distinct);
  let k = -1;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] ?? 0;
    if (i === 0 || key !== keys[i - 1]) {
      k++;
      colIndex[k] = key & 0xffff;
      rowStart[(key >>> 16) + 1]!++;
    }
    values[k]!++;
  }
  for (let r = 0; r < rows; r++) rowStart[r + 1] = (rowStart[r + 1] ?? 0) + (rowStart[r] ?? 0);
  return { rows, cols: rows, rowStart, colIndex, values };
}

/**
 * PPMI of a co-occurrence count matrix with context-distribution smoothing (Levy, Goldberg &
 * Dagan 2015): max(0, log(P(w,c) / (P(w) · Pα(c)))) with Pα(c) = #(c)^α / Σ #(c')^α. Entries that
 * come out ≤ 0 are dropped.
 */
export function ppmi(counts: Csr, alpha: number): Csr {
  const rowSum = new Float64Array(counts.rows);
  const colSum = new Float64Array(counts.cols);
  for (let r = 0; r < counts.rows; r++) {
    for (let k = counts.rowStart[r] ?? 0; k < (counts.rowStart[r + 1] ?? 0); k++) {
      const v = counts.values[k] ?? 0;
      rowSum[r] = (rowSum[r] ?? 0) + v;
      const c = counts.colIndex[k] ?? 0;
      colSum[c] = (colSum[c] ?? 0) + v;
    }
  }
  let smoothedTotal = 0;
  const smoothed = new Float64Array(counts.cols);
  for (let c = 0; c < counts.cols; c++) {
    smoothed[c] = Math.pow(colSum[c] ?? 0, alpha);
    smoothedTotal += smoothed[c] ?? 0;
  }
  // log P(w,c) − log P(w) − log Pα(c) = log(#(w,c) · Σα / (#(w) · #(c)^α))
  const rowStart = new Int32Array(counts.rows + 1);
  const colIndex = new Int32Array(counts.values.length);
  const values = new Float64Array(counts.values.length);
  let n = 0;
  for (let r = 0; r < counts.rows; r++) {
    const rs = rowSum[r] ?? 0;
    for (let k = counts.rowStart[r] ?? 0; k < (counts.rowStart[r + 1] ?? 0); k++) {
      const c = counts.colIndex[k] ?? 0;
      const pmi = Math.log(((counts.values[k] ?? 0) * smoothedTotal) / (rs * (smoothed[c] ?? 1)));
      if (pmi > 0) {
        colIndex[n] = c;
        values[n] = pmi;
        n++;
      }
    }
    rowStart[r + 1] = n;
  }
  return {
    rows: counts.rows,
    cols: counts.cols,
    rowStart,
    colIndex: colIndex.slice(0, n),
    values: values.slice(0, n),
  };
}

/** out (rows × k) = A · X, X being (cols × k); two entries of a row at a time. */
function multiply(a: Csr, x: Float64Array, k: number): Float64Array {
  const out = new Float64Array(a.rows * k);
  const { rowStart, colIndex, values } = a;
  for (let r = 0; r < a.rows; r++) {
    const o = r * k;
    const last = rowStart[r + 1]!;
    let e = rowStart[r]!;
    for (; e + 1 < last; e += 2) {
      const v0 = values[e]!;
      const v1 = values[e + 1]!;
      const x0 = colIndex[e]! * k;
      const x1 = colIndex[e + 1]! * k;
      for (let j = 0; j < k; j++) out[o + j]! += v0 * x[x0 + j]! + v1 * x[x1 + j]!;
    }
    if (e < last) {
      const v0 = values[e]!;
      const x0 = colIndex[e]! * k;
      for (let j = 0; j < k; j++) out[o + j]! += v0 * x[x0 + j]!;
    }
  }
  return out;
}

/** Aᵀ in CSR form. */
export function transpose(a: Csr): Csr {
  const rowStart = new Int32Array(a.cols + 1);
  for (let e = 0; e < a.colIndex.length; e++) rowStart[a.colIndex[e]! + 1]!++;
  for (let c = 0; c < a.cols; c++) rowStart[c + 1]! += rowStart[c]!;
  const next = rowStart.slice(0, a.cols);
  const colIndex = new Int32Array(a.colIndex.length);
  const values = new Float64Array(a.values.length);
  for (let r = 0; r < a.rows; r++) {
    for (let e = a.rowStart[r]!; e < a.rowStart[r + 1]!; e++) {
      const at = next[a.colIndex[e]!]!++;
      colIndex[at] = r;
      values[at] = a.values[e]!;
    }
  }
  return { rows: a.cols, cols: a.rows, rowStart, colIndex, values };
}

/** G (k × k, symmetric) = Yᵀ · Y for Y (n × k); four rows of Y at a time. */
function gram(y: Float64Array, n: number, k: number): Float64Array {
  const g = new Float64Array(k * k);
  let i = 0;
  for (; i + 3 < n; i += 4) {
    const o0 = i * k;
    const o1 = o0 + k;
    const o2 = o1 + k;
    const o3 = o2 + k;
    for (let a = 0; a < k; a++) {
      const y0 = y[o0 + a]!;
      const y1 = y[o1 + a]!;
      const y2 = y[o2 + a]!;
      const y3 = y[o3 + a]!;
      const ga = a * k;
      for (let b = a; b < k; b++) {
        g[ga + b]! += y0 * y[o0 + b]! + y1 * y[o1 + b]! + y2 * y[o2 + b]! + y3 * y[o3 + b]!;
      }
    }
  }
  for (; i < n; i++) {
    const o = i * k;
    for (let a = 0; a < k; a++) {
      const ya = y[o + a]!;
      const ga = a * k;
      for (let b = a; b < k; b++) g[ga + b]! += ya * y[o + b]!;
    }
  }
  for (let a = 0; a < k; a++) for (let b = 0; b < a; b++) g[a * k + b] = g[b * k + a]!;
  return g;
}

/**
 * out (n × m) = Y (n × k) · M (k × m); four rows of Y at a time. With `upper`, M is
 * upper-triangular (entries below the diagonal are skipped).
 */
function timesSmall(
  y: Float64Array,
  n: number,
  k: number,
  matrix: Float64Array,
  m: number,
  upper = false,
): Float64Array {
  const out = new Float64Array(n * m);
  let i = 0;
  for (; i + 3 < n; i += 4) {
    const y0 = i * k;
    const o0 = i * m;
    for (let p = 0; p < k; p++) {
      const a0 = y[y0 + p]!;
      const a1 = y[y0 + k + p]!;
      const a2 = y[y0 + 2 * k + p]!;
      const a3 = y[y0 + 3 * k + p]!;
      const mp = p * m;
      for (let b = upper ? p : 0; b < m; b++) {
        const v = matrix[mp + b]!;
        out[o0 + b]! += a0 * v;
        out[o0 + m + b]! += a1 * v;
        out[o0 + 2 * m + b]! += a2 * v;
        out[o0 + 3 * m + b]! += a3 * v;
      }
    }
  }
  for (; i < n; i++) {
    for (let p = 0; p < k; p++) {
      const a0 = y[i * k + p]!;
      for (let b = upper ? p : 0; b < m; b++) out[i * m + b]! += a0 * matrix[p * m + b]!;
    }
  }
  return out;
}

/**
 * Orthonormal columns spanning Y's (n × k), by Cholesky QR: G = YᵀY = RᵀR, Y ← Y R⁻¹; `passes`
 * = 2 is CholeskyQR2 (orthogonal to working precision). A pivot that is not positive (a
 * rank-deficient Y) is replaced by a tiny one, so the step never fails.
 */
function orthonormalize(y: Float64Array, n: number, k: number, passes: number): Float64Array {
  let q = y;
  for (let pass = 0; pass < passes; pass++) {
    const g = gram(q, n, k);
    let scale = 0;
    for (let a = 0; a < k; a++) scale = Math.max(scale, g[a * k + a]!);
    const floor = Math.max(scale, 1e-300) * 1e-14;
    // upper-triangular R with RᵀR = G, row-major
    const r = new Float64Array(k * k);
    for (let a = 0; a < k; a++) {
      let d = g[a * k + a]!;
      for (let p = 0; p < a; p++) d -= r[p * k + a]! * r[p * k + a]!;
      const pivot = Math.sqrt(d > floor ? d : floor);
      r[a * k + a] = pivot;
      for (let b = a + 1; b < k; b++) {
        let s = g[a * k + b]!;
        for (let p = 0; p < a; p++) s -= r[p * k + a]! * r[p * k + b]!;
        r[a * k + b] = s / pivot;
      }
    }
    // R⁻¹ (upper-triangular), column by column: R · x = e_b
    const inv = new Float64Array(k * k);
    for (let b = 0; b < k; b++) {
      for (let a = b; a >= 0; a--) {
        let s = a === b ? 1 : 0;
        for (let p = a + 1; p <= b; p++) s -= r[a * k + p]! * inv[p * k + b]!;
        inv[a * k + b] = s / r[a * k + a]!;
      }
    }
    q = timesSmall(q, n, k, inv, k, true);
  }
  return q;
}

/**
 * Eigen-decomposition of a symmetric k × k matrix by cyclic Jacobi rotations (in place on a copy).
 * Returns the eigenvalues in descending order and the eigenvectors as the columns of `vectors`.
 */
export function symmetricEigen(
  matrix: Float64Array,
  k: number,
): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(k * k);
  for (let i = 0; i < k; i++) v[i * k + i] = 1;
  for (let sweep = 0; sweep < 64; sweep++) {
    let off = 0;
    let diag = 0;
    for (let p = 0; p < k; p++) {
      diag += a[p * k + p]! ** 2;
      for (let q = p + 1; q < k; q++) off += a[p * k + q]! ** 2;
    }
    if (off <= diag * 1e-30) break;
    for (let p = 0; p < k - 1; p++) {
      for (let q = p + 1; q < k; q++) {
        const apq = a[p * k + q]!;
        if (apq === 0) continue;
        const app = a[p * k + p]!;
        const aqq = a[q * k + q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let r = 0; r < k; r++) {
          const arp = a[r * k + p]!;
          const arq = a[r * k + q]!;
          a[r * k + p] = c * arp - s * arq;
          a[r * k + q] = s * arp + c * arq;
        }
        for (let r = 0; r < k; r++) {
          const apr = a[p * k + r]!;
          const aqr = a[q * k + r]!;
          a[p * k + r] = c * apr - s * aqr;
          a[q * k + r] = s * apr + c * aqr;
        }
        for (let r = 0; r < k; r++) {
          const vrp = v[r * k + p]!;
          const vrq = v[r * k + q]!;
          v[r * k + p] = c * vrp - s * vrq;
          v[r * k + q] = s * vrp + c * vrq;
        }
      }
    }
  }
  const order = Array.from({ length: k }, (_, i) => i).sort(
    (x, y) => a[y * k + y]! - a[x * k + x]! || x - y,
  );
  const values = new Float64Array(k);
  const vectors = new Float64Array(k * k);
  order.forEach((from, to) => {
    values[to] = a[from * k + from]!;
    for (let r = 0; r < k; r++) vectors[r * k + to] = v[r * k + from]!;
  });
  return { values, vectors };
}

/** A small, seeded PRNG (mulberry32): the same seed gives the same numbers everywhere. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TruncatedSvd {
  /** Left singular vectors, rows × rank. */
  u: Float64Array;
  /** Singular values, descending. */
  s: Float64Array;
  rank: number;
}

/**
 * The top `rank` singular triplets' U and Σ of a sparse matrix, by randomized range finding with
 * `oversample` extra columns and `powerIterations` rounds of (A Aᵀ), a uniform random test matrix
 * from `seed`. `onStep` is told after each product (for progress lines).
 */
export function randomizedSvd(
  a: Csr,
  options: {
    rank: number;
    oversample: number;
    powerIterations: number;
    seed: number;
    onStep?: (step: number, of: number) => void;
  },
): TruncatedSvd {
  const l = Math.min(options.rank + options.oversample, a.rows, a.cols);
  const rank = Math.min(options.rank, l);
  const random = mulberry32(options.seed);
  const omega = new Float64Array(a.cols * l);
  for (let i = 0; i < omega.length; i++) omega[i] = 2 * random() - 1;
  const steps = 2 + 2 * options.powerIterations;
  let step = 0;
  const tick = (): void => options.onStep?.(++step, steps);
  // one Cholesky-QR pass keeps the power iterations well-conditioned; the basis used at the end
  // gets two
  const at = transpose(a);
  let q = orthonormalize(multiply(a, omega, l), a.rows, l, options.powerIterations === 0 ? 2 : 1);
  tick();
  for (let it = 0; it < options.powerIterations; it++) {
    const z = orthonormalize(multiply(at, q, l), a.cols, l, 1);
    tick();
    const last = it === options.powerIterations - 1;
    q = orthonormalize(multiply(a, z, l), a.rows, l, last ? 2 : 1);
    tick();
  }
  // B = Qᵀ A (l × cols); B Bᵀ = (Aᵀ Q)ᵀ (Aᵀ Q) = V Λ Vᵀ, so A ≈ (Q V) Λ^½ (…)ᵀ
  const bt = multiply(at, q, l);
  const { values, vectors } = symmetricEigen(gram(bt, a.cols, l), l);
  tick();
  // U = Q V, the first `rank` columns
  const top = new Float64Array(l * rank);
  for (let p = 0; p < l; p++)
    for (let j = 0; j < rank; j++) top[p * rank + j] = vectors[p * l + j]!;
  const u = timesSmall(q, a.rows, l, top, rank);
  const s = new Float64Array(rank);
  for (let j = 0; j < rank; j++) s[j] = Math.sqrt(Math.max(0, values[j] ?? 0));
  return { u, s, rank };
}
