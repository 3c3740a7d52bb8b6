/**
 * The RAG channel of an attribution receipt: which retrieved sources an answer actually used, and
 * how much each mattered. "Used" is a citation that passed the support check; "how much" is the
 * ContextCite weight of the source (Cohen-Wang et al. 2024): the answer is scored with random
 * halves of the sources left out, and a sparse linear surrogate of those scores gives each source
 * its weight. Only the scores are model output; the masks come from the inference receipt's hash
 * and the fit is exact float64 in a fixed order, so anyone recomputes the weights — and the
 * payouts — bit for bit from the scores recorded in the receipt.
 */
import { OpenLedgerError } from '../errors.ts';
import type { SourceRef } from '../rag/answer.ts';
import { ablationMasks, CONTEXTCITE_DEFAULTS, refitFromRecorded } from '../rag/contextcite.ts';
import type { Citation } from '../rag/types.ts';
import { normalisePpb } from './fixed.ts';
import { channelCredits } from './split.ts';

/** The scores of a ContextCite run: enough to redraw the masks and refit. */
export interface RagAblation {
  /** The mask seed: the inference receipt's hash. */
  seed: string;
  masks: number;
  holdout: number;
  alpha: number;
  /** The answer's logit per mask (multiples of 2^-16), full mask first. */
  y: number[];
}

export interface RagSourceEvidence {
  n: number;
  datanetId: number;
  version: number;
  rowHash: string;
  contributor: string;
  charStart: number;
  charEnd: number;
  /** sha256 of the chunk's text (the text itself stays in the datanet, behind its grants). */
  chunkSha256: string;
  /** A supported `[n]` in the answer. */
  cited: boolean;
  /** Its ContextCite weight (0 when not cited, or when the fit fell back). */
  weight: number;
}

export interface RagChannel {
  /** "contextcite", or "citations" (equal weights over cited sources) when there is no usable fit. */
  method: 'contextcite' | 'citations';
  ablation: (RagAblation & { lds: number }) | null;
  sources: RagSourceEvidence[];
  weights: { contributor: string; weight: string }[];
}

/** A source as the channel needs it: where its row is, not which stored chunk it came from. */
export type RagSource = Omit<SourceRef, 'chunkId' | 'rowId'>;

/** What the channel is computed from: the stored answer's sources and citations, and the scores. */
export interface RagEvidence {
  sources: readonly RagSource[];
  citations: readonly Citation[];
  ablation: RagAblation | null;
}

function bad(message: string): OpenLedgerError {
  return new OpenLedgerError('VALIDATION_FAILED', message);
}

/** The RAG channel from its evidence; null when the answer cites no source it is supported by. */
export function ragChannel(evidence: RagEvidence): RagChannel | null {
  const sources = [...evidence.sources].sort((a, b) => a.n - b.n);
  sources.forEach((s, i) => {
    if (s.n !== i + 1) throw bad(`RAG sources must be numbered 1..${sources.length}.`);
  });
  const cited = new Set(evidence.citations.filter((c) => c.supported).map((c) => c.n));
  for (const n of cited)
    if (n < 1 || n > sources.length) throw bad(`Citation [${n}] names no source.`);
  if (cited.size === 0) return null;

  let fitted: number[] | null = null;
  let ablation: RagChannel['ablation'] = null;
  if (evidence.ablation) {
    const a = evidence.ablation;
    const masks = ablationMasks(a.seed, sources.length, a.masks, a.holdout);
    const fit = refitFromRecorded(masks, a.y, a.alpha, a.holdout);
    ablation = { ...a, y: [...a.y], lds: fit.lds };
    const used = sources.map((s, j) => (cited.has(s.n) ? fit.weights[j]! : 0));
    if (!fit.fallback && used.some((w) => w > 0)) fitted = used;
  }
  const weightOf = (s: RagSource, j: number) => (fitted ? fitted[j]! : cited.has(s.n) ? 1 : 0);
  const ppb = normalisePpb(
    channelCredits(
      sources
        .map((s, j) => ({ contributor: s.contributor.toLowerCase(), weight: weightOf(s, j) }))
        .filter((w) => w.weight > 0),
    ),
  );
  return {
    method: fitted ? 'contextcite' : 'citations',
    ablation,
    sources: sources.map((s, j) => ({
      n: s.n,
      datanetId: s.datanetId,
      version: s.version,
      rowHash: s.rowHash,
      contributor: s.contributor.toLowerCase(),
      charStart: s.charStart,
      charEnd: s.charEnd,
      chunkSha256: s.textSha256,
      cited: cited.has(s.n),
      weight: fitted ? fitted[j]! : 0,
    })),
    weights: [...ppb]
      .map(([contributor, w]) => ({ contributor, weight: w.toString() }))
      .sort((a, b) => (a.contributor < b.contributor ? -1 : a.contributor > b.contributor ? 1 : 0)),
  };
}

/** The evidence a receipt's RAG channel was built from (what a verifier rebuilds it with). */
export function ragEvidenceOf(channel: RagChannel): RagEvidence {
  return {
    sources: channel.sources.map((s) => ({
      n: s.n,
      datanetId: s.datanetId,
      version: s.version,
      rowHash: s.rowHash,
      contributor: s.contributor,
      charStart: s.charStart,
      charEnd: s.charEnd,
      textSha256: s.chunkSha256,
    })),
    citations: channel.sources
      .filter((s) => s.cited)
      .map((s) => ({ n: s.n, sentence: 0, supported: true })),
    ablation: channel.ablation
      ? {
          seed: channel.ablation.seed,
          masks: channel.ablation.masks,
          holdout: channel.ablation.holdout,
          alpha: channel.ablation.alpha,
          y: channel.ablation.y,
        }
      : null,
  };
}

/** ContextCite's settings for a run seeded by an inference receipt's hash. */
export function ablationSettings(seed: string): Omit<RagAblation, 'y'> {
  return {
    seed,
    masks: CONTEXTCITE_DEFAULTS.m,
    holdout: CONTEXTCITE_DEFAULTS.holdout,
    alpha: CONTEXTCITE_DEFAULTS.alpha,
  };
}
