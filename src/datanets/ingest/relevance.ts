// Common English function words: they say nothing about a topic.
const STOP_WORDS = new Set(
  (
    'a about above after again against all also am an and any are as at be because been before ' +
    'being below between both but by can could did do does doing down during each either else ' +
    'etc every few for from further had has have having he her here hers herself him himself his ' +
    'how however i if in into is it its itself just let like many may me might more most much must ' +
    'my myself no nor not now of off on once one only or other our ours ourselves out over own per ' +
    'same shall she should so some such than that the their theirs them themselves then there ' +
    'these they this those through thus to too under until up upon us use used using very via was ' +
    'we were what when where whether which while who whom whose why will with within without would ' +
    'yet you your yours yourself yourselves'
  ).split(' '),
);

/**
 * Crude suffix stripping (plurals, -ing, -ed, -ly, a final e), enough to match "datasets" with
 * "dataset" and "baking" with "bake". Not linguistics: both sides get the same treatment.
 */
export function stem(word: string): string {
  let w = word;
  if (w.length > 4 && w.endsWith('ies')) w = `${w.slice(0, -3)}y`;
  else if (w.length > 4 && w.endsWith('sses')) w = w.slice(0, -2);
  else if (w.length > 3 && w.endsWith('s') && !/(?:ss|us|is)$/.test(w)) w = w.slice(0, -1);
  if (w.length > 5 && w.endsWith('ing')) w = undouble(w.slice(0, -3));
  else if (w.length > 4 && w.endsWith('ied')) w = `${w.slice(0, -3)}y`;
  else if (w.length > 4 && w.endsWith('ed') && !w.endsWith('eed')) w = undouble(w.slice(0, -2));
  else if (w.length > 4 && w.endsWith('ly')) w = w.slice(0, -2);
  if (w.length > 3 && w.endsWith('e')) w = w.slice(0, -1);
  return w;
}

/** "runn" (from "running") to "run"; "fall" and "pass" keep their double letter. */
function undouble(word: string): string {
  const last = word.at(-1);
  return last !== undefined && last === word.at(-2) && !'lsz'.includes(last)
    ? word.slice(0, -1)
    : word;
}

/** Lower-cased, NFKC-normalised, stemmed words, without stop words, digits or single letters. */
export function terms(text: string): string[] {
  const words =
    text
      .normalize('NFKC')
      .toLowerCase()
      .match(/[\p{L}\p{N}]+/gu) ?? [];
  const out: string[] = [];
  for (const word of words) {
    if (word.length < 2 || STOP_WORDS.has(word) || /^\p{N}+$/u.test(word)) continue;
    out.push(stem(word));
  }
  return out;
}

/**
 * A contribution scores every row against the same description: keep the last few descriptions'
 * terms rather than tokenising one for every row (it was a third of validation time).
 */
const descriptionCache = new Map<string, string[]>();
function descriptionTerms(description: string): string[] {
  let cached = descriptionCache.get(description);
  if (!cached) {
    cached = terms(description);
    if (descriptionCache.size >= 16) descriptionCache.delete(descriptionCache.keys().next().value!);
    descriptionCache.set(description, cached);
  }
  return cached;
}

export interface RelevanceOptions {
  /**
   * Inverse document frequency of a term, e.g. from the datanet's accepted rows. By default the two
   * texts are the corpus, with smoothed idf: ln(3 / (1 + df)) + 1, so a term both share weighs 1 and
   * a term only one has weighs 1.41.
   */
  idf?: (term: string) => number;
}

function vector(words: readonly string[], idf: (term: string) => number): Map<string, number> {
  const counts = new Map<string, number>();
  for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1);
  const weights = new Map<string, number>();
  for (const [term, n] of counts) weights.set(term, (1 + Math.log(n)) * idf(term));
  return weights;
}

/**
 * How much a row is about the datanet's description (pass the tags in it too): the cosine of the
 * two TF-IDF vectors (sublinear term frequency), in [0, 1]. 0 when either has no content words.
 */
export function relevance(
  text: string,
  description: string,
  options: RelevanceOptions = {},
): number {
  const a = terms(text);
  const b = descriptionTerms(description);
  if (a.length === 0 || b.length === 0) return 0;
  const inA = new Set(a);
  const inB = new Set(b);
  const idf =
    options.idf ??
    ((term: string) => Math.log(3 / (1 + (inA.has(term) ? 1 : 0) + (inB.has(term) ? 1 : 0))) + 1);
  const va = vector(a, idf);
  const vb = vector(b, idf);
  let dot = 0;
  for (const [term, weight] of va) dot += weight * (vb.get(term) ?? 0);
  if (dot === 0) return 0;
  const norm = (v: Map<string, number>) =>
    Math.sqrt([...v.values()].reduce((s, w) => s + w * w, 0));
  const cosine = dot / (norm(va) * norm(vb));
  return Math.min(1, Math.max(0, cosine));
}
