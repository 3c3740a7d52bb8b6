/* eslint-disable @typescript-eslint/no-explicit-any -- JSON answers of the API and the CLI */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eq } from 'drizzle-orm';
import { privateKeyToAccount } from 'viem/accounts';
import {
  SpanIndex,
  SpanShard,
  delimiterTokens,
  log2Fixed,
  rowsToIndex,
  suffixArray,
  type ShardRow,
} from '../src/attribution/index.ts';
import { devAccount } from '../src/chain/index.ts';
import { schema } from '../src/db/index.ts';
import { loadBuiltinCorpus } from '../src/factory/builtin/corpus.ts';
import { BUILTIN_MODELS_DIR, BUILTIN_MODEL_NAME } from '../src/factory/builtin/paths.ts';
import { loadTokenizer } from '../src/factory/tokenizers.ts';
import { DatanetActor } from './helpers/datanets.ts';
import { call } from './helpers/http.ts';
import { startTestNode, type TestNode } from './helpers/node.ts';
import { CLI_ENTRY } from './helpers/cli.ts';

const BUILTIN_GGUF = path.join(BUILTIN_MODELS_DIR, `${BUILTIN_MODEL_NAME}.gguf`);
const NO_MODEL = existsSync(BUILTIN_GGUF) ? false : 'the built-in model is not built';

/** A deterministic generator (LCG) of uniform numbers in [0, 1). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function naiveSuffixArray(s: ArrayLike<number>): number[] {
  const n = s.length;
  return Array.from({ length: n }, (_, i) => i).sort((a, b) => {
    while (a < n && b < n) {
      if (s[a] !== s[b]) return s[a]! - s[b]!;
      a++;
      b++;
    }
    return a === n ? -1 : 1;
  });
}

const ADDRESSES = Array.from(
  { length: 12 },
  (_, i) => privateKeyToAccount(`0x${(i + 1).toString(16).padStart(64, '0')}`).address,
);

interface PlainRow {
  tokens: number[];
  /** Default: the tokens (identical rows share a hash, as identical content does). */
  hash?: string;
  contributor: string;
  contributionId?: string;
  submittedAt?: number;
}

function shardOf(
  rows: readonly PlainRow[],
  meta: { datanetId?: number; version?: number; committedAt?: number; vocab: number },
  earlier: ReadonlySet<string> = new Set(),
): SpanShard {
  const candidates = rows.map((r, i) => ({
    row: {
      rowHash: r.hash ?? r.tokens.join(','),
      contributor: r.contributor,
      contributionId: r.contributionId ?? `c${String(i).padStart(6, '0')}`,
      committedAt: meta.committedAt ?? 1000 * (meta.version ?? 1),
      submittedAt: r.submittedAt ?? i,
    } satisfies ShardRow,
    tokens: r.tokens,
  }));
  return SpanShard.build(
    {
      datanetId: meta.datanetId ?? 1,
      version: meta.version ?? 1,
      tokenizer: 'test',
      separator: meta.vocab,
    },
    rowsToIndex(candidates, earlier),
  );
}

function randomRows(seed: number, count: number, vocab: number, maxLength: number): PlainRow[] {
  const rnd = random(seed);
  return Array.from({ length: count }, (_, i) => ({
    // A skewed distribution, so that n-grams repeat.
    tokens: Array.from({ length: 1 + Math.floor(rnd() * maxLength) }, () =>
      Math.floor(rnd() * rnd() * vocab),
    ),
    contributor: ADDRESSES[i % ADDRESSES.length]!,
    hash: `row-${i}`,
  }));
}

/** Brute-force occurrences of `ngram` in the rows: (row, offset) pairs. */
function bruteForce(rows: readonly PlainRow[], ngram: readonly number[]): [number, number][] {
  const found: [number, number][] = [];
  rows.forEach((row, r) => {
    for (let o = 0; o + ngram.length <= row.tokens.length; o++)
      if (ngram.every((t, k) => row.tokens[o + k] === t)) found.push([r, o]);
  });
  return found;
}

describe('suffix array (SA-IS)', () => {
  it('equals a naive sort of the suffixes on random inputs', () => {
    const rnd = random(11);
    for (let trial = 0; trial < 400; trial++) {
      const n = Math.floor(rnd() * 400);
      const upper = trial % 4 === 0 ? 1 : 1 + Math.floor(rnd() * 300);
      // Periodic inputs too: they exercise the recursion.
      const s = Int32Array.from({ length: n }, (_, k) =>
        trial % 5 === 0 ? (k % 3) % (upper + 1) : Math.floor(rnd() * (upper + 1)),
      );
      assert.deepEqual(Array.from(suffixArray(s, upper)), naiveSuffixArray(s), `trial ${trial}`);
    }
  });

  it('rejects symbols outside the alphabet', () => {
    assert.throws(() => suffixArray(Int32Array.of(1, 5, 2), 4), RangeError);
  });
});

describe('count and find', () => {
  const vocab = 40;
  const rows = randomRows(3, 300, vocab, 30);
  const single = new SpanIndex([shardOf(rows, { vocab })]);

  it('agree with brute force for random n-grams, present and absent', () => {
    const rnd = random(5);
    for (let trial = 0; trial < 500; trial++) {
      let ngram: number[];
      if (trial % 2 === 0) {
        const row = rows[Math.floor(rnd() * rows.length)]!;
        const start = Math.floor(rnd() * row.tokens.length);
        ngram = row.tokens.slice(start, start + 1 + Math.floor(rnd() * 6));
      } else
        ngram = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => Math.floor(rnd() * vocab));
      const expected = bruteForce(rows, ngram);
      assert.equal(single.count(ngram), expected.length, `count ${ngram}`);
      const found = single.find(ngram, 10_000);
      assert.equal(found.count, expected.length);
      const got = found.occurrences.map((o) => `${o.rowHash}@${o.offset}`).sort();
      const want = expected.map(([r, o]) => `row-${r}@${o}`).sort();
      assert.deepEqual(got, want);
      for (const o of found.occurrences)
        assert.equal(o.contributor, rows.find((r) => r.hash === o.rowHash)!.contributor);
    }
  });

  it('survives the blob format unchanged, and refuses other bytes', () => {
    const shard = shardOf(rows, { vocab });
    const bytes = shard.encode();
    const back = SpanShard.decode(bytes);
    assert.deepEqual(Array.from(back.sa), Array.from(shard.sa));
    assert.deepEqual(back.rows, shard.rows);
    assert.deepEqual(SpanShard.decode(back.encode()), back);
    const bad = Buffer.from(bytes);
    bad[3] = 0;
    assert.throws(() => SpanShard.decode(bad), /BLOB_CORRUPT|Not a span-index shard/);
    assert.throws(() => SpanShard.decode(bytes.subarray(0, bytes.length - 1)), /wrong length/);
  });

  it('answers ∞-gram probabilities by the longest context that occurs', () => {
    // "1 2 3" twice then 4 once, 5 once; "9 2 3 7" once.
    const small = new SpanIndex([
      shardOf(
        [
          { tokens: [1, 2, 3, 4], contributor: ADDRESSES[0]! },
          { tokens: [1, 2, 3, 5], contributor: ADDRESSES[1]! },
          { tokens: [9, 2, 3, 7], contributor: ADDRESSES[2]! },
        ],
        { vocab: 10 },
      ),
    ]);
    const p = small.probability([1, 2, 3, 4]);
    assert.deepEqual(p, { contextLength: 3, contextCount: 2, count: 1, probability: 0.5 });
    // Context 8 1 2 3 never occurs: backs off to 1 2 3.
    assert.equal(small.probability([8, 1, 2, 3, 5]).probability, 0.5);
    // 6 never occurs anywhere: unigram back-off, where 7 has 1 of 12 tokens.
    assert.deepEqual(small.probability([6, 7]), {
      contextLength: 0,
      contextCount: 12,
      count: 1,
      probability: 1 / 12,
    });
    const next = small.nextTokens([2, 3]);
    assert.equal(next.contextLength, 2);
    assert.deepEqual(
      next.next.map((n) => [n.token, n.count]),
      [
        [4, 1],
        [5, 1],
        [7, 1],
      ],
    );
    // A row's last tokens are followed by its end, which is no next token.
    assert.equal(small.probability([3, 4, 1]).contextLength, 0);
  });
});

describe('additive shards', () => {
  const vocab = 30;
  const rows = randomRows(8, 400, vocab, 25);
  const parts = [rows.slice(0, 90), rows.slice(90, 250), rows.slice(250)];
  const single = new SpanIndex([shardOf(rows, { vocab })]);
  const sharded = new SpanIndex(parts.map((p, v) => shardOf(p, { vocab, version: v + 1 })));

  it('count, find, probabilities and traces equal those of one index over all rows', () => {
    const rnd = random(9);
    for (let trial = 0; trial < 300; trial++) {
      const row = rows[Math.floor(rnd() * rows.length)]!;
      const start = Math.floor(rnd() * row.tokens.length);
      const ngram = row.tokens.slice(start, start + 1 + Math.floor(rnd() * 5));
      assert.equal(sharded.count(ngram), single.count(ngram));
      assert.equal(sharded.find(ngram).count, single.find(ngram).count);
      assert.deepEqual(sharded.probability(ngram), single.probability(ngram));
      assert.deepEqual(sharded.nextTokens(ngram), single.nextTokens(ngram));
    }
    for (let trial = 0; trial < 40; trial++) {
      // An output stitched from pieces of rows and noise.
      const output: number[] = [];
      while (output.length < 120) {
        if (rnd() < 0.5) output.push(Math.floor(rnd() * vocab));
        else {
          const row = rows[Math.floor(rnd() * rows.length)]!;
          output.push(...row.tokens);
        }
      }
      const options = { minTokens: 4, maxOccurrences: 3 };
      const a = sharded.trace(output, options);
      const b = single.trace(output, options);
      assert.deepEqual(a.weightsPpb, b.weightsPpb);
      assert.deepEqual(
        a.spans.map((s) => [s.start, s.end, s.occurrences, s.credit]),
        b.spans.map((s) => [s.start, s.end, s.occurrences, s.credit]),
      );
    }
  });
});

describe('fixed-point arithmetic', () => {
  it('log2 is exact on powers of two and within 2^-16 elsewhere', () => {
    for (let e = 0; e < 40; e++) assert.equal(log2Fixed(2 ** e), e * 65536);
    for (const x of [3, 10, 12345, 987654321, 2 ** 40 + 7])
      assert.ok(Math.abs(log2Fixed(x) / 65536 - Math.log2(x)) < 2 / 65536, `${x}`);
  });
});

describe('planted canaries (built-in tokenizer)', { skip: NO_MODEL }, () => {
  const CONTRIBUTORS = 8;
  const DISTRACTORS_PER = 150;
  let tokenizer: Awaited<ReturnType<typeof loadTokenizer>>;
  let delimiters: Uint8Array;
  let corpus: string[];
  let canaries: string[];
  let index: SpanIndex;
  const words: string[] = [];
  const encode = (text: string) => tokenizer.encode(text, { addBos: false, addEos: false });

  /** A passage nobody wrote before: random corpus words and numbers, in three sentences. */
  function canary(rnd: () => number): string {
    const sentence = () => {
      const n = 9 + Math.floor(rnd() * 6);
      const parts = Array.from({ length: n }, () =>
        rnd() < 0.15
          ? String(Math.floor(rnd() * 100_000))
          : words[Math.floor(rnd() * words.length)]!,
      );
      return `${parts.join(' ')}.`;
    };
    const text = `${sentence()} ${sentence()} ${sentence()}`;
    return text[0]!.toUpperCase() + text.slice(1);
  }

  /** Ordinary sentences written for the test (not from the corpus). */
  const SUBJECTS = [
    'The weather',
    'My neighbour',
    'Our little team',
    'The new library',
    'A friend of mine',
    'The school bus',
    'This recipe',
    'The garden',
  ];
  const VERBS = ['seems', 'is', 'looks', 'felt', 'was', 'will be'];
  const REST = [
    'much better than it was last week',
    'quite busy on most Monday mornings',
    'open again after the long holiday',
    'a little too expensive for us',
    'ready before the guests arrive tonight',
    'the best place to meet in town',
    'easy to follow if you read slowly',
    'closed because of the heavy rain',
  ];
  function generic(rnd: () => number): string {
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
    return Array.from({ length: 3 }, () => `${pick(SUBJECTS)} ${pick(VERBS)} ${pick(REST)}.`).join(
      ' ',
    );
  }

  before(async () => {
    tokenizer = await loadTokenizer(BUILTIN_GGUF);
    delimiters = delimiterTokens(tokenizer);
    corpus = loadBuiltinCorpus().train;
    for (const doc of corpus.slice(0, 400))
      for (const w of doc.split(/\s+/)) if (/^[a-z]{3,}$/.test(w)) words.push(w);
    const rnd = random(2024);
    canaries = Array.from({ length: CONTRIBUTORS }, () => canary(rnd));
    const rows: PlainRow[] = [];
    // Distractors: real paragraphs, dealt out to all contributors; each contributor also owns a
    // canary, stored in the middle of one of its rows.
    for (let c = 0; c < CONTRIBUTORS; c++) {
      for (let d = 0; d < DISTRACTORS_PER; d++) {
        const doc = corpus[c * DISTRACTORS_PER + d]!;
        rows.push({ tokens: encode(doc), contributor: ADDRESSES[c]! });
      }
      const host = corpus[CONTRIBUTORS * DISTRACTORS_PER + c]!;
      rows.push({ tokens: encode(`${host}\n${canaries[c]}\n${host}`), contributor: ADDRESSES[c]! });
    }
    const half = Math.floor(rows.length / 2);
    index = new SpanIndex(
      [
        shardOf(rows.slice(0, half), { vocab: tokenizer.vocabSize, version: 1 }),
        shardOf(rows.slice(half), { vocab: tokenizer.vocabSize, version: 2 }),
      ],
      delimiters,
    );
  });

  it('delimiters are the sentence-ending and newline tokens', () => {
    for (const text of ['.', '!', '?', '\n'])
      assert.ok(
        encode(`a${text}`).some((t) => delimiters[t]),
        JSON.stringify(text),
      );
    assert.ok(!encode(' the whale').some((t) => delimiters[t]));
  });

  it('credits the canary owner with precision and recall ≥ 0.99', (t) => {
    const rnd = random(77);
    let tp = 0;
    let fp = 0;
    let fn = 0;
    let ownerMass = 0;
    const TRIALS = 300;
    for (let trial = 0; trial < TRIALS; trial++) {
      const owner = trial % CONTRIBUTORS;
      const sentences = canaries[owner]!.split(/(?<=\.) /);
      // The model reproduces one to three sentences of the canary, amid text of its own.
      const from = Math.floor(rnd() * sentences.length);
      const to = from + 1 + Math.floor(rnd() * (sentences.length - from));
      const output = `${generic(rnd)} ${sentences.slice(from, to).join(' ')} ${generic(rnd)}`;
      const { weights } = index.trace(encode(output));
      const credited = Object.keys(weights);
      if (credited.includes(ADDRESSES[owner]!)) tp++;
      else fn++;
      fp += credited.filter((c) => c !== ADDRESSES[owner]).length;
      ownerMass += weights[ADDRESSES[owner]!] ?? 0;
    }
    const precision = tp / (tp + fp);
    const recall = tp / (tp + fn);
    t.diagnostic(
      `precision ${precision}, recall ${recall}, mean owner weight ${ownerMass / TRIALS}`,
    );
    assert.ok(precision >= 0.99, `precision ${precision}`);
    assert.ok(recall >= 0.99, `recall ${recall}`);
    assert.ok(ownerMass / TRIALS >= 0.99, `mean owner weight ${ownerMass / TRIALS}`);
  });

  it('pays nobody for canary-free outputs in ≤ 1 % of cases', (t) => {
    const rnd = random(99);
    let paid = 0;
    const TRIALS = 400;
    for (let trial = 0; trial < TRIALS; trial++) {
      const tokens =
        trial % 2 === 0
          ? // Random text over the model's vocabulary (its normal tokens).
            Array.from(
              { length: 120 },
              () => 3 + 256 + Math.floor(rnd() * (tokenizer.vocabSize - 259)),
            )
          : encode(generic(rnd));
      if (Object.keys(index.trace(tokens).weights).length > 0) paid++;
    }
    t.diagnostic(`${paid} of ${TRIALS} canary-free outputs paid someone`);
    assert.ok(paid / TRIALS <= 0.01, `${paid} of ${TRIALS} paid`);
  });

  it('gives the same weights, bit for bit, for the same input', () => {
    const output = encode(`${canaries[2]} ${canaries[5]!.split('. ')[0]}.`);
    const a = index.trace(output);
    const b = index.trace(Array.from(output));
    assert.deepEqual(a, b);
    assert.equal(
      Object.values(a.weightsPpb).reduce((s, x) => s + BigInt(x), 0n),
      1_000_000_000n,
    );
    assert.ok(a.weights[ADDRESSES[2]!]! > a.weights[ADDRESSES[5]!]!);
  });

  it('never raises a share when someone re-uploads a duplicate row', () => {
    const canaryRow = (c: number) => encode(canaries[c]!);
    const base: PlainRow[] = [
      { tokens: canaryRow(0), contributor: ADDRESSES[0]!, submittedAt: 10 },
      { tokens: canaryRow(1), contributor: ADDRESSES[1]!, submittedAt: 11 },
      ...corpus.slice(0, 50).map((d, i) => ({
        tokens: encode(d),
        contributor: ADDRESSES[2 + (i % 3)]!,
        submittedAt: 20 + i,
      })),
    ];
    const vocab = tokenizer.vocabSize;
    const output = encode(`${canaries[0]} ${canaries[1]}`);
    const before = new SpanIndex([shardOf(base, { vocab })], delimiters).trace(output).weightsPpb;
    assert.deepEqual(Object.keys(before).sort(), [ADDRESSES[0], ADDRESSES[1]].sort());
    const copies = (who: number, at: number): PlainRow[] => [
      { tokens: canaryRow(0), contributor: ADDRESSES[who]!, submittedAt: at },
      { tokens: canaryRow(0), contributor: ADDRESSES[who]!, submittedAt: at + 1 },
    ];
    const layouts: SpanShard[][] = [
      // The owner re-uploads its own row, and another contributor copies it, in the same version.
      [shardOf([...base, ...copies(0, 100), ...copies(9, 101)], { vocab })],
      // In a later version (rows an earlier version holds are not indexed again).
      [
        shardOf(base, { vocab }),
        shardOf(
          [...copies(9, 200), ...copies(1, 202)],
          { vocab, version: 2 },
          new Set(base.map((r) => r.tokens.join(','))),
        ),
      ],
      // In another datanet, committed later.
      [
        shardOf(base, { vocab }),
        shardOf([...copies(9, 300), ...copies(0, 302)], { vocab, datanetId: 2, committedAt: 5000 }),
      ],
    ];
    for (const shards of layouts) {
      const after = new SpanIndex(shards, delimiters).trace(output).weightsPpb;
      assert.deepEqual(after, before);
    }
  });
});

function cli(url: string, args: string[]): Promise<{ code: number | null; json: any }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_ENTRY, ...args, '--json', '--url', url], {
      env: { ...process.env, OPENLEDGER_API_KEY: '', OPENLEDGER_PRIVATE_KEY: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) =>
      resolve({ code, json: JSON.parse((code === 0 ? stdout : stderr) || 'null') }),
    );
  });
}

describe('span indexes of committed datanet versions (node, API, CLI)', () => {
  let node: TestNode;
  const owner = () => new DatanetActor(node.url, devAccount(0));
  const alice = () => new DatanetActor(node.url, devAccount(1));
  const bob = () => new DatanetActor(node.url, devAccount(2));
  const stranger = () => new DatanetActor(node.url, devAccount(3));
  let openId: number;
  let closedId: number;
  const CANARY_A =
    'Alice keeps 41 copper lanterns in the violet lighthouse at Quillhaven harbour every winter.';
  const CANARY_B =
    'Bob counts 977 paper cranes beneath the orange bridge of Marrowind on quiet Sundays.';
  const FILLER = [
    'The committee met on Tuesday to discuss the budget for the coming year.',
    'Rain fell over the hills for most of the afternoon and the roads were wet.',
    'Several ships left the harbour early in the morning before the tide turned.',
  ];

  async function waitReady(id: number, version: number): Promise<Record<string, any>> {
    for (let i = 0; i < 200; i++) {
      const status = await call(node.url, 'GET', `/api/attribution/index/${id}/${version}`);
      assert.equal(status.status, 200, JSON.stringify(status.body));
      if (status.body.status === 'ready') return status.body;
      if (status.body.status === 'failed') assert.fail(JSON.stringify(status.body));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.fail(`datanet ${id} v${version} was not indexed`);
  }

  before(async () => {
    node = await startTestNode();
    const created = await owner().create({
      name: 'Harbour notes',
      description:
        'Short notes about harbours, lighthouses and the things kept in them over winter.',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    openId = created.body.id;
    const a = await alice().contributeRows(openId, [
      { type: 'document', text: `${FILLER[0]} ${CANARY_A}` },
      { type: 'document', text: FILLER[1]! },
    ]);
    assert.equal(a.status, 201, JSON.stringify(a.body));
    const approved = await owner().approve(openId, [a.body.id]);
    assert.equal(approved.status, 201, JSON.stringify(approved.body));
  });

  after(async () => {
    await node?.close();
  });

  it('indexes a committed version by itself (a job queued at commit)', async () => {
    const status = await waitReady(openId, 1);
    assert.equal(status.versions.length, 1);
    assert.equal(status.versions[0].rows, 2);
    assert.ok(status.tokens > 20);
    assert.equal(status.model, BUILTIN_MODEL_NAME);
    const jobs = await alice().call('GET', '/api/jobs');
    assert.equal(jobs.status, 200);
  });

  it('counts, finds and traces over HTTP, crediting the contributor', async () => {
    const count = await call(node.url, 'POST', '/api/attribution/count', {
      body: { datanets: [{ id: openId }], text: 'copper lanterns' },
    });
    assert.equal(count.status, 200, JSON.stringify(count.body));
    assert.equal(count.body.count, 1);
    const found = await call(node.url, 'POST', '/api/attribution/find', {
      body: { datanets: [{ id: openId, version: 1 }], text: 'violet lighthouse' },
    });
    assert.equal(found.body.count, 1);
    assert.equal(found.body.occurrences[0].contributor, devAccount(1).address);
    const ngram = await call(node.url, 'POST', '/api/attribution/ngram', {
      body: { datanets: [{ id: openId }], text: 'Rain fell over the hills', mode: 'next' },
    });
    assert.equal(ngram.status, 200, JSON.stringify(ngram.body));
    assert.ok(ngram.body.next.length >= 1);
    const trace = await call(node.url, 'POST', '/api/attribution/trace', {
      body: { datanets: [{ id: openId }], text: `I heard that ${CANARY_A} Nice.` },
    });
    assert.equal(trace.status, 200, JSON.stringify(trace.body));
    assert.deepEqual(trace.body.weights, { [devAccount(1).address]: 1 });
    assert.ok(trace.body.spans[0].text.includes('copper lanterns'));
  });

  it('indexes a new version from its new rows only; queries cover the whole lineage', async () => {
    const b = await bob().contributeRows(openId, [
      { type: 'document', text: `${FILLER[2]} ${CANARY_B}` },
      // A copy of Alice's row: never indexed again, never credited.
      { type: 'document', text: `${FILLER[0]} ${CANARY_A}` },
    ]);
    assert.equal(b.status, 201, JSON.stringify(b.body));
    const approved = await owner().approve(openId, [b.body.id]);
    assert.equal(approved.status, 201, JSON.stringify(approved.body));
    const status = await waitReady(openId, 2);
    assert.equal(status.versions[0].rows, 2);
    assert.ok(status.versions[1].rows <= 1, JSON.stringify(status.versions[1]));
    const trace = await call(node.url, 'POST', '/api/attribution/trace', {
      body: { datanets: [{ id: openId, version: 2 }], text: `${CANARY_A} ${CANARY_B}` },
    });
    assert.equal(trace.status, 200, JSON.stringify(trace.body));
    assert.deepEqual(
      Object.keys(trace.body.weights).sort(),
      [devAccount(1).address, devAccount(2).address].sort(),
    );
    // Version 1 alone knows nothing of Bob.
    const old = await call(node.url, 'POST', '/api/attribution/trace', {
      body: { datanets: [{ id: openId, version: 1 }], text: CANARY_B },
    });
    assert.deepEqual(old.body.weights, {});
  });

  it('serves a permissioned datanet only to callers with a grant', async () => {
    const created = await owner().create({
      name: 'Closed notes',
      description:
        'Private notes about harbours and lighthouses that only granted readers may see.',
      policy: 'permissioned',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    closedId = created.body.id;
    const a = await alice().contributeRows(closedId, [
      { type: 'document', text: `${FILLER[1]} ${CANARY_A}` },
    ]);
    assert.equal(a.status, 201, JSON.stringify(a.body));
    assert.equal((await owner().approve(closedId, [a.body.id])).status, 201);
    // The owner may read it; the index gets built.
    for (let i = 0; i < 200; i++) {
      const s = await owner().call('GET', `/api/attribution/index/${closedId}/1`);
      if (s.body.status === 'ready') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const body = { datanets: [{ id: closedId }], text: CANARY_A };
    const anonymous = await call(node.url, 'POST', '/api/attribution/trace', { body });
    assert.equal(anonymous.status, 401, JSON.stringify(anonymous.body));
    const denied = await stranger().call('POST', '/api/attribution/trace', body);
    assert.equal(denied.status, 403, JSON.stringify(denied.body));
    assert.equal(denied.body.error.code, 'FORBIDDEN');
    const status = await stranger().call('GET', `/api/attribution/index/${closedId}/1`);
    assert.equal(status.status, 403);
    const allowed = await owner().call('POST', '/api/attribution/trace', body);
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
    assert.deepEqual(allowed.body.weights, { [devAccount(1).address]: 1 });
  });

  it('answers the CLI: index status, build, count, find and trace', async () => {
    const status = await cli(node.url, ['attribution', 'index', String(openId)]);
    assert.equal(status.code, 0, JSON.stringify(status.json));
    assert.equal(status.json.status, 'ready');
    const count = await cli(node.url, [
      'attribution',
      'count',
      '--datanet',
      `${openId}@2`,
      '--text',
      'paper cranes',
    ]);
    assert.equal(count.json.count, 1);
    const found = await cli(node.url, [
      'attribution',
      'find',
      '--datanet',
      String(openId),
      '--text',
      'paper cranes',
    ]);
    assert.equal(found.json.occurrences[0].contributor, devAccount(2).address);
    const trace = await cli(node.url, [
      'attribution',
      'trace',
      '--datanet',
      String(openId),
      '--text',
      CANARY_B,
    ]);
    assert.deepEqual(trace.json.weights, { [devAccount(2).address]: 1 });
    const denied = await cli(node.url, [
      'attribution',
      'trace',
      '--datanet',
      String(closedId),
      '--text',
      CANARY_B,
      '--account',
      '3',
    ]);
    assert.equal(denied.code, 1);
    assert.equal(denied.json.error.code, 'FORBIDDEN');
    const built = await cli(node.url, [
      'attribution',
      'index',
      String(closedId),
      '1',
      '--build',
      '--force',
      '--wait',
      '--account',
      '0',
    ]);
    assert.equal(built.code, 0, JSON.stringify(built.json));
    assert.equal(built.json.status, 'ready');
  });

  it('rebuilds on demand, answers INDEX_NOT_READY and validation errors clearly', async () => {
    const { db } = node.node.context.database;
    await db
      .delete(schema.attributionIndexes)
      .where(eq(schema.attributionIndexes.datanetId, closedId));
    const notReady = await owner().call('POST', '/api/attribution/count', {
      datanets: [{ id: closedId }],
      text: 'copper',
    });
    assert.equal(notReady.status, 409, JSON.stringify(notReady.body));
    assert.equal(notReady.body.error.code, 'INDEX_NOT_READY');
    assert.equal(
      (await owner().call('GET', `/api/attribution/index/${closedId}/1`)).body.status,
      'missing',
    );

    const built = await alice().call('POST', `/api/attribution/index/${openId}/latest`, {
      force: true,
    });
    assert.equal(built.status, 202, JSON.stringify(built.body));
    assert.equal(built.body.job.kind, 'attribution.index');
    const missing = await call(node.url, 'POST', '/api/attribution/count', {
      body: { datanets: [{ id: openId, version: 9 }], text: 'x' },
    });
    assert.equal(missing.status, 404);
    const both = await call(node.url, 'POST', '/api/attribution/count', {
      body: { datanets: [{ id: openId }], text: 'x', tokens: [1] },
    });
    assert.equal(both.status, 400);
    const outside = await call(node.url, 'POST', '/api/attribution/count', {
      body: { datanets: [{ id: openId }], tokens: [999_999] },
    });
    assert.equal(outside.status, 400);
    const unknownModel = await call(node.url, 'POST', '/api/attribution/count', {
      body: { datanets: [{ id: openId }], text: 'x', model: 'no-such-model' },
    });
    assert.ok(unknownModel.status >= 400 && unknownModel.status < 500);
  });
});
