/**
 * Suffix arrays over integer alphabets by SA-IS (Nong, Zhang & Chan 2009): linear time, and about
 * 13 bytes per symbol of working memory on top of the input and the output.
 *
 * Written here because npm has no maintained suffix-array package for integer alphabets: the
 * general collections (mnemonist's SuffixArray) sort strings by comparison, O(n log n) string
 * comparisons, which is hours on the tens of millions of token ids of a datanet; token ids also
 * do not fit in a string's 16-bit code units. The structure follows the AtCoder Library's
 * `sa_is` (CC0), a compact and well-tested formulation, with typed arrays throughout.
 */

/** Below this length a comparison sort is faster than setting up the induced sort. */
const NAIVE_BELOW = 16;

/**
 * The suffix array of `s`, whose symbols are integers in [0, upper]: the start positions of the
 * suffixes in lexicographic order (a proper prefix sorts before the longer suffix).
 */
export function suffixArray(s: Int32Array, upper: number): Int32Array {
  const n = s.length;
  for (let i = 0; i < n; i++)
    if (s[i]! < 0 || s[i]! > upper)
      throw new RangeError(`symbol ${s[i]} at ${i} is outside [0, ${upper}]`);
  return saIs(s, upper);
}

function naive(s: Int32Array): Int32Array {
  const n = s.length;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => {
    if (a === b) return 0;
    while (a < n && b < n) {
      if (s[a] !== s[b]) return s[a]! - s[b]!;
      a++;
      b++;
    }
    return a === n ? -1 : 1;
  });
  return Int32Array.from(order);
}

function saIs(s: Int32Array, upper: number): Int32Array {
  const n = s.length;
  if (n === 0) return new Int32Array(0);
  if (n === 1) return Int32Array.of(0);
  if (n < NAIVE_BELOW) return naive(s);

  const sa = new Int32Array(n);
  // ls[i]: whether suffix i is S-type (smaller than suffix i + 1).
  const ls = new Uint8Array(n);
  for (let i = n - 2; i >= 0; i--)
    ls[i] = s[i] === s[i + 1] ? ls[i + 1]! : s[i]! < s[i + 1]! ? 1 : 0;

  // Bucket boundaries: sumL[c] where the L-type suffixes starting with c begin, sumS[c] where the
  // S-type ones begin.
  const sumL = new Int32Array(upper + 2);
  const sumS = new Int32Array(upper + 2);
  for (let i = 0; i < n; i++) {
    if (!ls[i]) sumS[s[i]!]!++;
    else sumL[s[i]! + 1]!++;
  }
  for (let c = 0; c <= upper; c++) {
    sumS[c]! += sumL[c]!;
    if (c < upper) sumL[c + 1]! += sumS[c]!;
  }

  const buf = new Int32Array(upper + 2);
  const induce = (lms: Int32Array, m: number) => {
    sa.fill(-1);
    buf.set(sumS);
    for (let j = 0; j < m; j++) {
      const d = lms[j]!;
      if (d === n) continue;
      sa[buf[s[d]!]!++] = d;
    }
    buf.set(sumL);
    sa[buf[s[n - 1]!]!++] = n - 1;
    for (let i = 0; i < n; i++) {
      const v = sa[i]!;
      if (v >= 1 && !ls[v - 1]) sa[buf[s[v - 1]!]!++] = v - 1;
    }
    buf.set(sumL);
    for (let i = n - 1; i >= 0; i--) {
      const v = sa[i]!;
      if (v >= 1 && ls[v - 1]) sa[--buf[s[v - 1]! + 1]!] = v - 1;
    }
  };

  // LMS positions (an S-type suffix right after an L-type one), numbered left to right.
  const lmsMap = new Int32Array(n + 1).fill(-1);
  let m = 0;
  for (let i = 1; i < n; i++) if (!ls[i - 1] && ls[i]) lmsMap[i] = m++;
  const lms = new Int32Array(m);
  for (let i = 1, j = 0; i < n; i++) if (!ls[i - 1] && ls[i]) lms[j++] = i;

  induce(lms, m);

  if (m > 0) {
    // Name the LMS substrings in their induced order; equal substrings get equal names.
    const sorted = new Int32Array(m);
    for (let i = 0, j = 0; i < n; i++) if (lmsMap[sa[i]!]! !== -1) sorted[j++] = sa[i]!;
    const rec = new Int32Array(m);
    let recUpper = 0;
    rec[lmsMap[sorted[0]!]!] = 0;
    for (let i = 1; i < m; i++) {
      let l = sorted[i - 1]!;
      let r = sorted[i]!;
      const endL = lmsMap[l]! + 1 < m ? lms[lmsMap[l]! + 1]! : n;
      const endR = lmsMap[r]! + 1 < m ? lms[lmsMap[r]! + 1]! : n;
      let same = true;
      if (endL - l !== endR - r) same = false;
      else {
        while (l < endL && s[l] === s[r]) {
          l++;
          r++;
        }
        if (l === n || s[l] !== s[r]) same = false;
      }
      if (!same) recUpper++;
      rec[lmsMap[sorted[i]!]!] = recUpper;
    }
    const recSa = saIs(rec, recUpper);
    for (let i = 0; i < m; i++) sorted[i] = lms[recSa[i]!]!;
    induce(sorted, m);
  }
  return sa;
}
