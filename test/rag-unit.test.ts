import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chunkText } from '../src/rag/chunk.ts';
import {
  NOT_IN_SOURCES,
  answerFromSources,
  checkCitations,
  parseCitations,
  splitSentences,
  stem,
  supports,
} from '../src/rag/cite.ts';
import {
  ablationMasks,
  ablationWeights,
  answerLogit,
  lasso,
  refitFromRecorded,
  spearman,
} from '../src/rag/contextcite.ts';
import { reciprocalRankFusion } from '../src/rag/fuse.ts';
import type { Source, TokenSpan } from '../src/rag/types.ts';

/** A deterministic generator (LCG) of uniform numbers in [0, 1). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Standard normal numbers (Box–Muller) from a uniform generator. */
function gaussian(rnd: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

/** A stand-in tokenizer: words and single punctuation marks. */
function spans(text: string): TokenSpan[] {
  return [...text.matchAll(/\w+|[^\w\s]/g)].map((m) => ({
    start: m.index,
    end: m.index + m[0].length,
  }));
}

const WORDS = 'alpha beta gamma delta epsilon zeta theta iota kappa lambda mu nu xi omicron'.split(
  ' ',
);

/** `count` sentences of 6–17 words each (plus the full stop), now and then a paragraph break. */
function prose(count: number, seed: number): string {
  const rnd = random(seed);
  const out: string[] = [];
  for (let s = 0; s < count; s++) {
    const words = Array.from(
      { length: 6 + Math.floor(rnd() * 12) },
      () => WORDS[Math.floor(rnd() * WORDS.length)]!,
    );
    out.push(`${words.join(' ')}.${rnd() < 0.1 ? '\n\n' : ' '}`);
  }
  return out.join('').trimEnd();
}

describe('chunkText', () => {
  /** Tokens within a character range, by the spans. */
  const within = (all: TokenSpan[], from: number, to: number) =>
    all.filter((t) => t.start >= from && t.end <= to).length;

  function checkCover(text: string, all: TokenSpan[], opts: { target: number; max: number }) {
    const chunks = chunkText(text, all, opts);
    assert.ok(chunks.length > 0);
    assert.equal(chunks[0]!.charStart, 0);
    assert.equal(chunks.at(-1)!.charEnd, text.length);
    for (const [i, c] of chunks.entries()) {
      assert.equal(c.ord, i);
      assert.ok(c.tokens <= opts.max, `chunk ${i} has ${c.tokens} tokens > ${opts.max}`);
      assert.equal(c.tokens, within(all, c.charStart, c.charEnd), `chunk ${i} token count`);
      if (i > 0) {
        const prev = chunks[i - 1]!;
        assert.ok(c.charStart <= prev.charEnd, `gap before chunk ${i}`);
        assert.ok(c.charStart > prev.charStart, `chunk ${i} does not move on`);
        assert.ok(c.charEnd > prev.charEnd);
      }
    }
    return chunks;
  }

  it('returns nothing for empty or blank text and one chunk for a short text', () => {
    assert.deepEqual(chunkText('', []), []);
    assert.deepEqual(chunkText(' \n\t', spans(' \n\t')), []);
    const short = '  Call me Ishmael. Some years ago, never mind how long.  ';
    assert.deepEqual(chunkText(short, spans(short)), [
      { ord: 0, charStart: 0, charEnd: short.length, tokens: spans(short).length },
    ]);
  });

  it('cuts long prose at sentence ends near the target, overlapping by about `overlap`', () => {
    const text = prose(400, 7);
    const all = spans(text);
    assert.ok(all.length > 4000);
    const chunks = checkCover(text, all, { target: 200, max: 480 });
    assert.ok(chunks.length >= all.length / 200, `${chunks.length} chunks`);
    for (const [i, c] of chunks.entries()) {
      if (i === chunks.length - 1) break;
      // Every sentence here is under 20 tokens, so a sentence end lies near every target.
      assert.ok(c.tokens >= 180 && c.tokens <= 220, `chunk ${i}: ${c.tokens} tokens`);
      assert.match(text.slice(c.charStart, c.charEnd), /\.$/, `chunk ${i} ends mid-sentence`);
      const next = chunks[i + 1]!;
      const shared = within(all, next.charStart, c.charEnd);
      assert.ok(shared >= 20 && shared <= 60, `chunks ${i}/${i + 1} share ${shared} tokens`);
      // The overlap starts at a sentence start where one is close.
      assert.match(text.slice(0, next.charStart), /[.\n]\s*$/);
    }
    assert.deepEqual(chunkText(text, all), chunks, 'defaults are 200/40/480');
    assert.deepEqual(chunkText(text, all), chunkText(text, spans(text)), 'deterministic');
  });

  it('falls back to token windows (at word boundaries) without sentence ends', () => {
    const rnd = random(3);
    const text = Array.from({ length: 1500 }, () => WORDS[Math.floor(rnd() * 14)]).join(' ');
    const all = spans(text);
    const chunks = checkCover(text, all, { target: 200, max: 480 });
    for (const c of chunks.slice(0, -1)) assert.equal(c.tokens, 200);
    // No separators at all: exact windows, cut inside the "word".
    const blob = 'x'.repeat(1000);
    const pieces = Array.from({ length: 250 }, (_, i) => ({ start: i * 4, end: i * 4 + 4 }));
    const windows = checkCover(blob, pieces, { target: 100, max: 120 });
    assert.deepEqual(
      windows.map((c) => c.tokens),
      [100, 100, 100, 70],
    );
  });

  it('never exceeds max, even when sentences are longer than the target', () => {
    // Sentences of 70 tokens against a target of 50 and a max of 60: no sentence end fits.
    const sentence = `${Array.from({ length: 69 }, (_, i) => WORDS[i % 14]).join(' ')}.`;
    const text = Array.from({ length: 12 }, () => sentence).join(' ');
    const chunks = checkCover(text, spans(text), { target: 50, max: 60 });
    assert.ok(chunks.every((c) => c.tokens <= 60));
    // A custom overlap of 0 still covers every character.
    checkCover(text, spans(text), { target: 50, max: 60 });
    const flush = chunkText(text, spans(text), { target: 50, overlap: 0, max: 60 });
    for (let i = 1; i < flush.length; i++) assert.equal(flush[i]!.charStart, flush[i - 1]!.charEnd);
  });

  it('refuses options that cannot work and spans out of order', () => {
    const text = 'one two three';
    assert.throws(() => chunkText(text, spans(text), { target: 40, overlap: 40 }), /overlap/);
    assert.throws(() => chunkText(text, spans(text), { target: 500, max: 480 }), /target/);
    assert.throws(
      () =>
        chunkText(text, [
          { start: 4, end: 7 },
          { start: 0, end: 3 },
        ]),
      /order/,
    );
    assert.throws(() => chunkText(text, [{ start: 0, end: 99 }]), /order/);
  });
});

describe('reciprocalRankFusion', () => {
  it('adds 1/(k + rank) over the lists and breaks ties by id', () => {
    const fused = reciprocalRankFusion([
      [1, 2, 3],
      [3, 1, 4],
    ]);
    assert.deepEqual(
      fused.map((f) => f.id),
      [1, 3, 2, 4],
    );
    assert.equal(fused[0]!.score, 1 / 61 + 1 / 62);
    assert.equal(fused[3]!.score, 1 / 63);
    // Equal scores: the smaller id first, whatever the list order.
    for (const lists of [
      [[9], [5]],
      [[5], [9]],
    ])
      assert.deepEqual(
        reciprocalRankFusion(lists, 10).map((f) => f.id),
        [5, 9],
      );
  });

  it('counts an id once per list, handles empty input, and is deterministic', () => {
    assert.deepEqual(reciprocalRankFusion([[7, 7, 8]]), [
      { id: 7, score: 1 / 61 },
      { id: 8, score: 1 / 63 },
    ]);
    assert.deepEqual(reciprocalRankFusion([]), []);
    assert.deepEqual(reciprocalRankFusion([[], []]), []);
    const rnd = random(11);
    const lists = Array.from({ length: 3 }, () =>
      Array.from({ length: 50 }, () => Math.floor(rnd() * 80)),
    );
    const once = reciprocalRankFusion(lists);
    assert.deepEqual(reciprocalRankFusion(lists.map((l) => [...l])), once);
    for (let i = 1; i < once.length; i++)
      assert.ok(
        once[i - 1]!.score > once[i]!.score ||
          (once[i - 1]!.score === once[i]!.score && once[i - 1]!.id < once[i]!.id),
      );
    assert.throws(() => reciprocalRankFusion([[1]], -1), /k must/);
  });
});

describe('ContextCite', () => {
  it('draws the same masks from the same seed and others from another', () => {
    const a = ablationMasks('inference-1', 10);
    assert.equal(a.length, 1 + 32 + 8);
    assert.deepEqual(
      a[0],
      Array.from({ length: 10 }, () => true),
    );
    assert.deepEqual(ablationMasks('inference-1', 10), a);
    assert.deepEqual(ablationMasks(new TextEncoder().encode('inference-1'), 10), a);
    assert.notDeepEqual(ablationMasks('inference-2', 10), a);
    // About half of the sources are kept.
    const kept = a.slice(1).flat().filter(Boolean).length;
    assert.ok(kept > 0.4 * 400 && kept < 0.6 * 400, `${kept} of 400 kept`);
    // A longer draw starts with the same masks (the stream is a prefix).
    assert.deepEqual(ablationMasks('inference-1', 10, 64, 8).slice(0, 33), a.slice(0, 33));
  });

  it('computes Spearman with averaged ties', () => {
    assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
    assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
    assert.equal(spearman([1, 1, 1], [1, 2, 3]), 0);
    // Ranks (1.5, 1.5, 3) against (1, 2, 3): the textbook value √3/2.
    assert.ok(Math.abs(spearman([5, 5, 9], [1, 2, 3]) - Math.sqrt(3) / 2) < 1e-15);
  });

  const truth = [0, 2.5, 0, 0, 1.2, 0, 0, 0, 0.6, 0];
  const planted = (mask: readonly boolean[]) =>
    mask.reduce((sum, kept, j) => sum + (kept ? truth[j]! : 0), -4);

  it('lasso recovers 3 planted weights out of 10 sources from noisy y', () => {
    // Noise σ = 0.05 with α = 0.05: α must be about the noise for the true zeros to come out
    // exactly 0 (α = 0.01 leaves small spurious weights there, which cost rank correlation).
    for (let s = 0; s < 10; s++) {
      const masks = ablationMasks(`lasso-${s}`, 10);
      const noise = gaussian(random(1000 + s));
      const y = masks.map((mask) => planted(mask) + 0.05 * noise());
      const { weights, bias } = lasso(masks.slice(0, 33), y.slice(0, 33), 0.05);
      const clipped = weights.map((w) => Math.max(w, 0));
      const rho = spearman(clipped, truth);
      assert.ok(rho >= 0.9, `seed ${s}: Spearman ${rho} (${weights.map((w) => w.toFixed(3))})`);
      for (const [j, w] of truth.entries())
        if (w > 0) assert.ok(Math.abs(weights[j]! - w) < 0.2, `seed ${s} weight ${j}`);
      assert.ok(Math.abs(bias + 4) < 0.3, `seed ${s} bias ${bias}`);
    }
    // Exact data and no penalty: ordinary least squares, to float precision.
    const masks = ablationMasks('exact', 10, 64, 0);
    const exact = lasso(masks, masks.map(planted), 0, 500);
    exact.weights.forEach((w, j) => assert.ok(Math.abs(w - truth[j]!) < 1e-9));
  });

  it('turns log-probabilities into stable, quantised logits', () => {
    assert.equal(answerLogit(Math.log(0.5)), 0);
    assert.ok(Math.abs(answerLogit(-1e-20) - 46.0517018599) < 2 ** -16);
    assert.ok(Math.abs(answerLogit(-50) - (-50 - Math.log1p(-Math.exp(-50)))) < 2 ** -16);
    assert.equal(answerLogit(0), 2 ** 20);
    assert.equal(answerLogit(-Infinity), -(2 ** 20));
    for (const lp of [-0.1, -3, -123.456]) {
      const y = answerLogit(lp);
      assert.equal(y * 65536, Math.round(y * 65536), 'a multiple of 2^-16');
    }
    assert.throws(() => answerLogit(NaN), /NaN/);
  });

  it('weights sources from scored ablations, and a verifier refits them bit for bit', async () => {
    const calls: boolean[][] = [];
    // The scorer a model would be: log σ(planted logit), so y recovers the planted logit.
    const score = async (mask: readonly boolean[]) => {
      calls.push([...mask]);
      return -Math.log1p(Math.exp(-planted(mask)));
    };
    const result = await ablationWeights({ sources: 10, score, seed: 'inference-42' });
    assert.equal(calls.length, 41);
    assert.deepEqual(calls, result.masks);
    assert.deepEqual(result.masks, ablationMasks('inference-42', 10));
    assert.equal(result.fallback, false);
    assert.ok(result.lds > 0.9, `lds ${result.lds}`);
    assert.ok(result.weights.every((w) => w >= 0));
    assert.ok(spearman(result.weights, truth) >= 0.9);
    for (const y of result.y) assert.equal(y * 65536, Math.round(y * 65536));
    assert.deepEqual(refitFromRecorded(result.masks, result.y, 0.01), result);
    assert.deepEqual(refitFromRecorded(result.masks, result.y, 0.01, 8), result);

    // Sources that only lower the answer's probability: nothing to credit.
    const harmful = await ablationWeights({
      sources: 4,
      seed: 'inference-43',
      m: 16,
      holdout: 4,
      score: async (mask) => -1 - mask.filter(Boolean).length,
    });
    assert.equal(harmful.fallback, true);
    assert.deepEqual(harmful.weights, [0, 0, 0, 0]);
    assert.throws(() => refitFromRecorded(result.masks, result.y.slice(1)), /masks/);
  });
});

// ---- Citations ---------------------------------------------------------------------------------

const SOURCE_TEXTS = [
  'The Velmora Bridge was completed in 1887 after nine years of work. It spans 412 metres across the Tarn estuary and carries two railway tracks. Its chief engineer was Odile Fanchette, who had trained in Lyon.',
  'Saffron harvests in the Zorbanian highlands reached 4,213 tonnes in 1893. Treasury minister Ilsa Marrow credited new irrigation canals for the record crop. Most of the saffron was shipped through the port of Kessel.',
  'The Greyhollow lighthouse stands 37 metres tall on Brannock Point. Its lamp was first lit in 1862 and could be seen 22 nautical miles out to sea. Keeper Tobias Quill tended it for forty-one years.',
  "The Amberley Choir Society was founded in 1921 by organist Hester Vane. The society performs a winter concert every December in St Aldric's chapel. Membership peaked at 140 singers in 1958.",
  'Copperleaf beetles feed almost exclusively on alder leaves. Adult beetles measure about 8 millimetres and shine a metallic green. Larvae pupate in the soil beneath the host tree during late summer.',
  'The Rellington canal opened in 1798 and linked the coalfields of Dunmere with the river Ouse. Horse-drawn barges carried up to 30 tons of coal per trip. The canal closed to commercial traffic in 1931.',
  'Professor Anika Strand measured glacier retreat on Mount Heller between 1970 and 2010. Her survey found the Heller glacier lost 1.8 kilometres of length over that period. The data were published by the Nordic Alpine Institute.',
  'The Kestrel Cup is a rowing race held each May on the river Wend. Crews row a course of 6,800 metres from Ashby lock to Parr bridge. The Linfield college crew won the race eleven times in a row.',
  'The Marlow Bridge was completed in 1903 and spans 280 metres across the river Wend. It carries a single road and two footpaths.',
  'The Ashby canal opened in 1805 and carried coal and lime to the river Wend. Barges on the Ashby canal were drawn by horses until 1920.',
];

const SOURCES: Source[] = SOURCE_TEXTS.map((text, i) => ({
  n: i + 1,
  chunkId: 100 + i,
  datanetId: 1,
  version: 1,
  rowId: `row-${i}`,
  rowHash: `0x${i.toString(16).padStart(64, '0')}`,
  contributor: `0x${(i + 1).toString(16).padStart(40, '0')}`,
  charStart: 0,
  charEnd: text.length,
  text,
  score: 1 / (61 + i),
}));

/**
 * 40 answer sentences with the sources that truly support them, labelled by meaning (not by the
 * checker's rule): correct [n], paraphrases, wrong [n] (some naming a source on the same topic
 * with other names and figures), missing [n], and claims no source supports (one of them reusing
 * a source's words for a claim it does not make).
 */
const PLANTED: { sentence: string; truth: number[] }[] = [
  // Correct citations.
  { sentence: 'The Velmora Bridge was completed in 1887 [1].', truth: [1] },
  { sentence: 'It spans 412 metres across the Tarn estuary [1].', truth: [1] },
  { sentence: 'Odile Fanchette, its chief engineer, had trained in Lyon [1].', truth: [1] },
  {
    sentence: 'In 1893 the Zorbanian highlands harvested a record 4,213 tonnes of saffron [2].',
    truth: [2],
  },
  { sentence: 'Ilsa Marrow credited the new irrigation canals [2].', truth: [2] },
  { sentence: 'The Greyhollow lighthouse is 37 metres tall [3].', truth: [3] },
  { sentence: 'Its lamp could be seen 22 nautical miles out to sea [3].', truth: [3] },
  { sentence: 'Tobias Quill kept the light for forty-one years [3].', truth: [3] },
  { sentence: 'Organist Hester Vane founded the Amberley Choir Society in 1921 [4].', truth: [4] },
  {
    sentence: "The society sings a winter concert each December in St Aldric's chapel [4].",
    truth: [4],
  },
  { sentence: 'Its largest membership, 140 singers, came in 1958 [4].', truth: [4] },
  { sentence: 'Copperleaf beetles feed almost only on alder leaves [5].', truth: [5] },
  { sentence: 'Adult beetles are about 8 millimetres long and metallic green [5].', truth: [5] },
  { sentence: 'Barges pulled by horses carried up to 30 tons of coal [6].', truth: [6] },
  {
    sentence: 'Anika Strand measured glacier retreat on Mount Heller from 1970 to 2010 [7].',
    truth: [7],
  },
  { sentence: 'The Heller glacier lost 1.8 kilometres of length [7].', truth: [7] },
  { sentence: 'The Kestrel Cup is rowed each May on the river Wend [8].', truth: [8] },
  { sentence: 'The course runs 6,800 metres from Ashby lock to Parr bridge [8].', truth: [8] },
  // Correct, but paraphrased past what a lexical check can see.
  { sentence: 'Construction of the crossing lasted almost a decade [1].', truth: [1] },
  { sentence: 'The waterway stopped carrying commercial cargo in 1931 [6].', truth: [6] },
  // Wrong citations.
  { sentence: 'The Velmora Bridge carries two railway tracks [3].', truth: [1] },
  { sentence: 'Most of the saffron was shipped through the port of Kessel [1].', truth: [2] },
  { sentence: 'The lamp of the Greyhollow lighthouse was first lit in 1862 [2].', truth: [3] },
  { sentence: 'Hester Vane was an organist [5].', truth: [4] },
  { sentence: 'Larvae pupate in the soil under the host tree in late summer [4].', truth: [5] },
  {
    sentence: 'The Rellington canal linked the Dunmere coalfields with the river Ouse [7].',
    truth: [6],
  },
  { sentence: 'The Nordic Alpine Institute published the glacier data [8].', truth: [7] },
  { sentence: 'The Linfield college crew won eleven times in a row [6].', truth: [8] },
  // Wrong citations to a source on the same topic.
  { sentence: 'The Velmora Bridge spans 412 metres [9].', truth: [1] },
  { sentence: 'The Rellington canal opened in 1798 and carried coal [10].', truth: [6] },
  { sentence: 'Barges on the Ashby canal were drawn by horses [6].', truth: [10] },
  { sentence: 'The Marlow Bridge was completed in 1903 [1].', truth: [9] },
  // Missing citations.
  { sentence: 'Odile Fanchette was the chief engineer of the Velmora Bridge.', truth: [1] },
  {
    sentence: 'Treasury minister Ilsa Marrow credited irrigation canals for the record crop.',
    truth: [2],
  },
  { sentence: 'Copperleaf beetles shine a metallic green.', truth: [5] },
  { sentence: 'Crews row a course of 6,800 metres on the river Wend.', truth: [8] },
  { sentence: 'The Heller glacier lost 1.8 kilometres between 1970 and 2010.', truth: [7] },
  // Supported by no source.
  { sentence: 'The Velmora Bridge was repainted in 1950 [1].', truth: [] },
  { sentence: 'The Greyhollow lighthouse stands 52 metres tall [3].', truth: [] },
  { sentence: 'Tobias Quill designed the Greyhollow lighthouse [3].', truth: [] },
];

describe('citations', () => {
  it('splits sentences and reads markers', () => {
    const answer =
      'Mr. Smith arrived at 3.15 on Friday [1]. Did he stay? Yes! [2][3]\n- a list item\n1. Numbered item [1, 4].';
    assert.deepEqual(
      splitSentences(answer).map((s) => s.text),
      [
        'Mr. Smith arrived at 3.15 on Friday [1].',
        'Did he stay?',
        'Yes! [2][3]',
        '- a list item',
        '1. Numbered item [1, 4].',
      ],
    );
    for (const s of splitSentences(answer)) assert.equal(answer.slice(s.start, s.end), s.text);
    assert.deepEqual(splitSentences(''), []);
    assert.deepEqual(
      parseCitations('a [1] b [1, 3] c [2][3] d [x] [4,5 ] [] [1a]'),
      [1, 3, 2, 4, 5],
    );
    assert.deepEqual(parseCitations('no markers'), []);
    assert.equal(stem('tonnes'), stem('tonne'));
    assert.equal(stem('reported'), stem('reports'));
    assert.equal(stem('hopping'), 'hop');
    assert.equal(stem('ponies'), 'poni');
  });

  it('checks support by content words, numbers and names', () => {
    const text = SOURCE_TEXTS[1]!;
    assert.deepEqual(supports('Saffron harvests reached 4,213 tonnes in 1893 [2].', text), {
      supported: true,
      recall: 1,
    });
    // A figure the source lacks fails, whatever the overlap.
    assert.equal(supports('Saffron harvests reached 5,000 tonnes in 1893.', text).supported, false);
    // So does a name it lacks.
    assert.equal(supports('Minister Ilsa Brennan credited the canals.', text).supported, false);
    assert.equal(supports('Yes.', text).supported, false);
  });

  it('keeps supported [n], drops wrong ones, adds missing ones: precision and recall ≥ 0.9', () => {
    const answer = PLANTED.map((p) => p.sentence).join(' ');
    const checked = checkCitations(answer, SOURCES);
    assert.equal(checked.sentences.length, PLANTED.length);

    const truth = new Set(PLANTED.flatMap((p, i) => p.truth.map((n) => `${i}:${n}`)));
    const kept = new Set(
      checked.citations.filter((c) => c.supported).map((c) => `${c.sentence}:${c.n}`),
    );
    const hits = [...kept].filter((k) => truth.has(k)).length;
    const precision = hits / kept.size;
    const recall = hits / truth.size;
    console.log(
      `# citation check: precision ${precision.toFixed(3)} (${hits}/${kept.size}), recall ${recall.toFixed(3)} (${hits}/${truth.size})`,
    );
    assert.ok(precision >= 0.9, `precision ${precision}`);
    assert.ok(recall >= 0.9, `recall ${recall}`);

    // The cleaned answer carries exactly the kept citations.
    const again = checkCitations(checked.cleaned, SOURCES);
    assert.equal(again.sentences.length, PLANTED.length);
    assert.deepEqual(
      again.citations.map((c) => [c.sentence, c.n, c.supported, c.added]),
      checked.citations.filter((c) => c.supported).map((c) => [c.sentence, c.n, true, false]),
    );
    assert.match(checked.cleaned, /carries two railway tracks\. \[1\] /);
    assert.match(checked.cleaned, /repainted in 1950\. /);
    assert.deepEqual(checkCitations(answer, SOURCES), checked, 'deterministic');
  });

  it('ignores numbers that name no source and rewrites marker groups', () => {
    const checked = checkCitations(
      'The Velmora Bridge was completed in 1887 [1, 7, 3]. Nothing here [12].',
      SOURCES.slice(0, 3),
    );
    assert.deepEqual(
      checked.citations.map((c) => [c.sentence, c.n, c.supported]),
      [
        [0, 1, true],
        [0, 3, false],
      ],
    );
    assert.equal(checked.cleaned, 'The Velmora Bridge was completed in 1887 [1]. Nothing here.');
    assert.equal(checkCitations(NOT_IN_SOURCES, SOURCES).cleaned, NOT_IN_SOURCES);
    assert.deepEqual(checkCitations(NOT_IN_SOURCES, SOURCES).citations, []);
  });

  it('answers from the sources only when they hold the answer', () => {
    const found = answerFromSources(
      'How many tonnes of saffron did the Zorbanian highlands harvest in 1893?',
      SOURCES,
    );
    assert.deepEqual(found, {
      answer: 'Saffron harvests in the Zorbanian highlands reached 4,213 tonnes in 1893. [2]',
      citations: [{ n: 2, sentence: 0, supported: true }],
    });
    const keeper = answerFromSources('Who tended the lighthouse for forty-one years?', SOURCES);
    assert.match(keeper!.answer, /Tobias Quill.*\[3\]$/);
    assert.equal(answerFromSources('What is the boiling point of mercury?', SOURCES), null);
    assert.equal(answerFromSources('What is the capital of Zorbania?', SOURCES), null);
    // A near miss: 2 of its 5 content words (treasury, minister) are in one sentence, under ½.
    assert.equal(
      answerFromSources('What did the treasury minister say about wheat exports?', SOURCES),
      null,
    );
    assert.equal(answerFromSources('What is it?', SOURCES), null);
    assert.equal(answerFromSources('saffron?', []), null);
    // The extractive answer passes the support check of its own source.
    const { answer, citations } = found!;
    const n = citations[0]!.n;
    assert.equal(supports(answer, SOURCES[n - 1]!.text).supported, true);
  });
});
