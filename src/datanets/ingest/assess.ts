import { textQuality } from './quality.ts';
import { relevance, terms } from './relevance.ts';

export interface AssessInput {
  text: string;
  /** The datanet's description, with its name, summary and tags if it has them. */
  description: string;
  /** Id of an existing row with the same row hash. */
  exactDuplicateOf?: string;
  /** The closest existing row by MinHash, when at or over the near-duplicate threshold. */
  nearDuplicateOf?: { id: string; similarity: number };
}

export interface AssessOptions {
  /**
   * A near-duplicate at or above this similarity is rejected as a copy (default 0.8); below it,
   * it is only flagged as similar for the curators, with a lower score: rows that share a template
   * or a question are not copies.
   */
  nearDuplicateRejectAt?: number;
  /** Rows whose quality score is below this are rejected (default 0.5). */
  minQuality?: number;
  /** Relevance below this earns an "off-topic" reason and a lower score (default 0.05). */
  offTopicBelow?: number;
  /** Relevance below this rejects the row, if the description is long enough (default 0.01). */
  rejectBelowRelevance?: number;
  /** Distinct content words a description needs before relevance can reject (default 8). */
  minDescriptionTerms?: number;
}

export interface Assessment {
  /** 0..1: quality, lowered a little for off-topic text, and to (near) zero for duplicates. */
  score: number;
  accepted: boolean;
  reasons: string[];
  quality: number;
  relevance: number;
}

/** Share of the score that relevance can take away: off-topic text is suspect, not worthless. */
const RELEVANCE_WEIGHT = 0.2;

const fixed = (value: number): string => value.toFixed(2);

/**
 * The validator's verdict on one row. Quality decides most of it; relevance to the description is
 * weighed lightly (an off-topic row loses at most a fifth of its score and is only rejected when it
 * shares next to nothing with a description long enough to judge by); an exact duplicate scores 0
 * and a near duplicate keeps only (1 - similarity) of its score, and both are rejected.
 */
export function assessRow(input: AssessInput, options: AssessOptions = {}): Assessment {
  const minQuality = options.minQuality ?? 0.5;
  const offTopicBelow = options.offTopicBelow ?? 0.05;
  const rejectBelow = options.rejectBelowRelevance ?? 0.01;
  const minDescriptionTerms = options.minDescriptionTerms ?? 8;

  const quality = textQuality(input.text);
  const reasons = [...quality.reasons];
  let accepted = quality.score >= minQuality;
  if (!accepted) reasons.push(`quality ${fixed(quality.score)} is below ${fixed(minQuality)}`);

  const judged = new Set(terms(input.description)).size >= minDescriptionTerms;
  const rel = input.text.trim() === '' ? 0 : relevance(input.text, input.description);
  let score = quality.score * (1 - RELEVANCE_WEIGHT * (1 - Math.min(1, rel / offTopicBelow)));
  if (rel < offTopicBelow && quality.score > 0) {
    reasons.push(`off-topic (relevance ${fixed(rel)})`);
    if (judged && rel < rejectBelow) accepted = false;
  }

  if (input.exactDuplicateOf !== undefined) {
    reasons.push(`exact duplicate of ${input.exactDuplicateOf}`);
    score = 0;
    accepted = false;
  } else if (input.nearDuplicateOf !== undefined) {
    const { id, similarity } = input.nearDuplicateOf;
    if (similarity >= (options.nearDuplicateRejectAt ?? 0.8)) {
      reasons.push(`near-duplicate of ${id} (similarity ${fixed(similarity)})`);
      score *= Math.max(0, 1 - similarity);
      accepted = false;
    } else {
      reasons.push(`similar to ${id} (similarity ${fixed(similarity)})`);
      score *= 1 - similarity / 2;
    }
  }
  return {
    score: Number(score.toFixed(4)),
    accepted,
    reasons,
    quality: quality.score,
    relevance: Number(rel.toFixed(4)),
  };
}
