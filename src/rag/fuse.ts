/**
 * Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009): the hybrid retriever's way of
 * merging the full-text ranking with the vector ranking. It uses ranks only, so the two lists'
 * incomparable scores (IDF-weighted full text and cosine) never meet.
 */
import { OpenLedgerError } from '../errors.ts';

export interface FusedScore {
  id: number;
  score: number;
}

/** The constant of the paper (and of most hybrid search engines): it damps the top ranks. */
export const RRF_K = 60;

/**
 * score(id) = Σ over the lists holding id of 1 / (k + rank), rank counted from 1; an id repeated
 * within one list counts at its first (best) rank only. Sorted by score descending, then id
 * ascending, so equal scores come out in the same order everywhere. The sums run over the lists in
 * the order given, so the scores themselves are the same bits everywhere too.
 */
export function reciprocalRankFusion(
  lists: readonly (readonly number[])[],
  k: number = RRF_K,
): FusedScore[] {
  if (!Number.isFinite(k) || k < 0)
    throw new OpenLedgerError('VALIDATION_FAILED', `rrf: k must be a finite number ≥ 0, not ${k}`);
  const scores = new Map<number, number>();
  for (const list of lists) {
    const seen = new Set<number>();
    for (const [i, id] of list.entries()) {
      if (seen.has(id)) continue;
      seen.add(id);
      scores.set(id, (scores.get(id) ?? 0) + 1 / (k + i + 1));
    }
  }
  return [...scores]
    .map(([id, score]) => ({ id, score }))
    .sort((a, b) => b.score - a.score || a.id - b.id);
}
