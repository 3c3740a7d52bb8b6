import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  attributionReceiptHash,
  attributionReceiptJson,
  buildAttributionReceipt,
  recomputePayouts,
  verifyAttributionReceipt,
  type AttributionReceipt,
  type BuildReceiptInput,
} from '../src/attribution/receipt.ts';
import {
  SpanIndex,
  SpanShard,
  influenceWeights,
  rowsToIndex,
  type ContributorWeight,
  type ShardRow,
} from '../src/attribution/index.ts';
import { blobIdOf } from '../src/blobs/index.ts';
import { isOpenLedgerError } from '../src/errors.ts';
import { receiptHash, type InferenceReceipt } from '../src/serving/usage.ts';

/** A deterministic generator (LCG) of uniform numbers in [0, 1). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function shuffle<T>(items: readonly T[], rnd: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

// Checksummed-looking (mixed case) addresses, as shards hold them: receipts lower-case them.
const addr = (i: number) => `0x${'Ab'.repeat(19)}${(i + 16).toString(16).padStart(2, '0')}`;
const A = addr(1);
const B = addr(2);
const OWNER = addr(50);
const PLATFORM = addr(60);
const VOCAB = 64;

function shard(
  datanetId: number,
  rows: { tokens: number[]; contributor: string }[],
  vocab = VOCAB,
): SpanShard {
  return SpanShard.build(
    { datanetId, version: 1, tokenizer: 'test', separator: vocab },
    rowsToIndex(
      rows.map((r, i) => ({
        row: {
          rowHash: createHash('sha256').update(r.tokens.join(',')).digest('hex'),
          contributor: r.contributor,
          contributionId: `c${datanetId}-${i}`,
          committedAt: 1000,
          submittedAt: i,
        } satisfies ShardRow,
        tokens: r.tokens,
      })),
      new Set(),
    ),
  );
}

function inference(
  completionTokens: number,
  fee: bigint,
): { receipt: InferenceReceipt; hash: string } {
  const receipt: InferenceReceipt = {
    version: 1,
    id: '3b1f1c9e-2f7a-4c55-9e43-0a4f6f1d2c11',
    chainId: 31337,
    caller: addr(70).toLowerCase(),
    endpoint: 'chat.completions',
    model: 'published:7',
    baseModel: { name: 'openledger-base-1m', sha256: 'a'.repeat(64) },
    adapters: [{ id: 'adapter-1', weight: 1 }],
    publishedModelId: 7,
    promptTokens: 12,
    completionTokens,
    inputSha256: 'b'.repeat(64),
    outputSha256: 'c'.repeat(64),
    status: 'completed',
    latencyMs: 12.5,
    createdAt: '2025-01-02T03:04:05.678Z',
    fee: fee.toString(),
  };
  return { receipt, hash: receiptHash(receipt) };
}

/**
 * The hand-checked case: A's row is 12 distinct tokens, B's 8; the output reproduces both, so
 * (every token occurring once) A's credit is 12 and B's 8 units of information: 0.6 / 0.4.
 * Fee 20 · 500,350 / 1000 = 10,007 wei: platform ⌊500.35⌋ = 500; the rest 9,507 → owner 5,704
 * (5,704.2), stakers 951 (950.7, the leftover wei), contributors 2,852 (2,852.1); stakers 1:2 →
 * 317 / 634; contributors 0.6 / 0.4 → 1,711.2 / 1,140.8 → 1,711 / 1,141.
 */
function handCase(): BuildReceiptInput {
  const shards = [
    shard(1, [{ tokens: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], contributor: A }]),
    shard(2, [{ tokens: [21, 22, 23, 24, 25, 26, 27, 28], contributor: B }]),
  ];
  const index = new SpanIndex(shards);
  const output = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 21, 22, 23, 24, 25, 26, 27, 28];
  const { receipt, hash } = inference(output.length, 10_007n);
  return {
    inferenceReceipt: receipt,
    inferenceReceiptHash: hash,
    model: {
      id: 7,
      owner: OWNER,
      manifestHash: `0x${'d'.repeat(64)}`,
      price: { pricePer1kInput: 0n, pricePer1kOutput: 500_350n },
      split: { owner: 6000, stakers: 1000, contributors: 3000 },
    },
    datanets: [
      { id: 2, version: 1, shards: [blobIdOf(shards[1]!.encode())] },
      { id: 1, version: 1, shards: [blobIdOf(shards[0]!.encode())] },
    ],
    span: {
      tokenizer: 'e'.repeat(64),
      trace: index.trace(output),
      text: (start, end) => output.slice(start, end).join(' '),
    },
    stakers: [
      { address: addr(10), stake: 2n },
      { address: addr(9), stake: 1n },
    ],
    platform: PLATFORM,
    block: 7,
  };
}

/** A random case on a random index: rows from 8 contributors, an output splicing a few of them. */
function randomCase(seed: number): BuildReceiptInput {
  const rnd = random(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const vocab = 400;
  const rows = Array.from({ length: 40 }, (_, i) => ({
    tokens: Array.from({ length: 10 + int(30) }, () => int(vocab)),
    contributor: addr(i % 8),
  }));
  const shards = [shard(1, rows.slice(0, 20), vocab), shard(2, rows.slice(20), vocab)];
  const output: number[] = [];
  for (let k = 0; k < 3; k++) {
    const row = rows[int(rows.length)]!.tokens;
    const from = int(row.length - 9);
    output.push(...row.slice(from, from + 9 + int(row.length - from - 9)), int(vocab));
  }
  const trace = new SpanIndex(shards).trace(output);
  const price = { pricePer1kInput: BigInt(int(1e9)), pricePer1kOutput: BigInt(int(1e12)) };
  const { receipt, hash } = inference(
    output.length,
    (12n * price.pricePer1kInput + BigInt(output.length) * price.pricePer1kOutput) / 1000n,
  );
  return {
    inferenceReceipt: receipt,
    inferenceReceiptHash: hash,
    model: {
      id: 7,
      owner: OWNER,
      manifestHash: 'f'.repeat(64),
      price,
      split: { owner: 5000, stakers: 2000, contributors: 3000 },
    },
    datanets: shards.map((s, i) => ({ id: i + 1, version: 1, shards: [blobIdOf(s.encode())] })),
    span: { tokenizer: 'e'.repeat(64), trace },
    influence: {
      method: 'datainf',
      weights: Array.from({ length: int(6) }, () => ({
        contributor: addr(int(8)),
        weight: rnd() - 0.3,
      })),
      evidence: Array.from({ length: 3 }, (_, i) => ({
        datanetId: 1,
        version: 1,
        rowHash: `${i}`.repeat(64),
        contributor: addr(i),
        score: rnd() - 0.5,
      })),
    },
    stakers: Array.from({ length: int(4) }, () => ({
      address: addr(20 + int(3)),
      stake: BigInt(int(1e6)),
    })),
    platform: PLATFORM,
    block: 7,
  };
}

/** Every leaf of a JSON value with its path, in the syntax verify reports. */
function leaves(value: unknown, path = ''): { path: string; value: unknown }[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, `${path}[${i}]`));
  if (value !== null && typeof value === 'object')
    return Object.entries(value).flatMap(([k, v]) => leaves(v, path ? `${path}.${k}` : k));
  return [{ path, value }];
}

function setAt(root: unknown, path: string, value: unknown): void {
  const keys = path.match(/[^.[\]]+/g)!;
  let node = root as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) node = node[k] as Record<string, unknown>;
  node[keys.at(-1)!] = value;
}

function tampered(value: unknown): unknown {
  if (typeof value === 'string') return /^\d+$/.test(value) ? `${BigInt(value) + 1n}` : `${value}0`;
  if (typeof value === 'number') return value + 1;
  if (typeof value === 'boolean') return !value;
  return 0;
}

describe('attribution receipts', () => {
  it('matches the hand-checked example: spans → weights → payouts that sum to the fee', () => {
    const receipt = buildAttributionReceipt(handCase());
    const span = receipt.channels.span!;
    assert.deepEqual(span.weights, [
      { contributor: A.toLowerCase(), weight: '600000000' },
      { contributor: B.toLowerCase(), weight: '400000000' },
    ]);
    assert.deepEqual(
      span.evidence.map((e) => [
        e.start,
        e.end,
        e.text,
        e.count,
        e.occurrences.map((o) => o.datanetId),
      ]),
      [
        [0, 12, '1 2 3 4 5 6 7 8 9 10 11 12', 1, [1]],
        [12, 20, '21 22 23 24 25 26 27 28', 1, [2]],
      ],
    );
    assert.deepEqual(
      receipt.payouts.map((p) => [p.address, p.amount, p.role]),
      [
        [A.toLowerCase(), '1711', 'contributor'],
        [B.toLowerCase(), '1141', 'contributor'],
        [addr(9).toLowerCase(), '317', 'staker'],
        [addr(10).toLowerCase(), '634', 'staker'],
        [OWNER.toLowerCase(), '5704', 'owner'],
        [PLATFORM.toLowerCase(), '500', 'platform'],
      ],
    );
    assert.equal(
      receipt.payouts.reduce((s, p) => s + BigInt(p.amount), 0n),
      10_007n,
    );
    assert.deepEqual(
      receipt.datanets.map((d) => d.id),
      [1, 2],
    );
    assert.equal(receipt.model.manifestHash, 'd'.repeat(64));
    assert.deepEqual(receipt.model.channelWeights, { span: 5000, influence: 3000, rag: 2000 });
    assert.equal(receipt.model.platformBps, 500);
    assert.deepEqual(receipt.channels.influence, null);
    assert.deepEqual(receipt.channels.rag, null);
    assert.equal(receipt.inference.createdAt, '2025-01-02T03:04:05.678Z');
    // The hash is sha256 over the canonical JSON, which has sorted keys and no whitespace.
    const json = attributionReceiptJson(receipt);
    assert.ok(
      json.startsWith('{"block":7,"channels":{"influence":null,"rag":null,"span":{"evidence":'),
    );
    assert.equal(attributionReceiptHash(receipt), createHash('sha256').update(json).digest('hex'));
  });

  it('leaves penalized contributors out of the payouts, their part going to the others', () => {
    const receipt = buildAttributionReceipt({ ...handCase(), penalized: [B] });
    assert.deepEqual(receipt.penalized, [B.toLowerCase()]);
    // B's evidence stays; A now takes the whole contributors' part (1711 + 1141).
    assert.equal(receipt.channels.span!.weights.length, 2);
    const paid = new Map(receipt.payouts.map((p) => [p.address, p.amount]));
    assert.equal(paid.get(A.toLowerCase()), '2852');
    assert.equal(paid.has(B.toLowerCase()), false);
    assert.equal(
      receipt.payouts.reduce((s, p) => s + BigInt(p.amount), 0n),
      10_007n,
    );
  });

  it('gives the same bytes and hash for the same input, whatever the order of its lists', () => {
    for (let seed = 1; seed <= 25; seed++) {
      const input = randomCase(seed);
      const receipt = buildAttributionReceipt(input);
      const again = buildAttributionReceipt(randomCase(seed));
      assert.equal(attributionReceiptJson(again), attributionReceiptJson(receipt));
      const rnd = random(seed + 1000);
      const reordered = buildAttributionReceipt({
        ...input,
        datanets: shuffle(input.datanets, rnd),
        stakers: shuffle(input.stakers!, rnd),
        span: {
          ...input.span!,
          trace: { ...input.span!.trace, spans: shuffle(input.span!.trace.spans, rnd) },
        },
        influence: {
          ...input.influence!,
          weights: shuffle(input.influence!.weights as ContributorWeight[], rnd),
          evidence: shuffle(input.influence!.evidence!, rnd),
        },
      });
      assert.equal(attributionReceiptHash(reordered), attributionReceiptHash(receipt));
      assert.equal(
        receipt.payouts.reduce((s, p) => s + BigInt(p.amount), 0n),
        BigInt(receipt.inference.fee),
      );
      assert.deepEqual(recomputePayouts(receipt), receipt.payouts);
      assert.deepEqual(
        verifyAttributionReceipt(JSON.parse(attributionReceiptJson(receipt)), again),
        {
          ok: true,
          hash: attributionReceiptHash(receipt),
        },
      );
    }
  });

  it('carries the span channel’s own weights for a real trace, and pays in proportion to them', () => {
    let traced = 0;
    for (let seed = 100; seed < 110; seed++) {
      const input = randomCase(seed);
      const trace = input.span!.trace;
      const receipt = buildAttributionReceipt({ ...input, influence: null });
      const weights = Object.fromEntries(
        receipt.channels.span!.weights.map((w) => [w.contributor, w.weight]),
      );
      assert.deepEqual(
        weights,
        Object.fromEntries(Object.entries(trace.weightsPpb).map(([k, v]) => [k.toLowerCase(), v])),
      );
      if (trace.spans.length === 0) continue;
      traced++;
      assert.equal(receipt.channels.span!.evidence.length, trace.spans.length);
      // Contributors share the contributors' part by these weights, each within one wei.
      const fee = BigInt(receipt.inference.fee);
      const rest = fee - (fee * 500n) / 10_000n;
      const part = receipt.payouts.reduce((s, p) => s + BigInt(p.detail.contributor ?? '0'), 0n);
      assert.ok(part - (rest * 3000n) / 10_000n <= 1n);
      for (const p of receipt.payouts.filter((x) => x.detail.contributor !== undefined)) {
        const exact = (part * BigInt(weights[p.address]!)) / 1_000_000_000n;
        const paid = BigInt(p.detail.contributor!);
        assert.ok(paid === exact || paid === exact + 1n, `${paid} vs ${exact}`);
      }
    }
    assert.ok(traced >= 5);
  });

  it('carries influence.ts weights bit for bit, and pays only positive influence', () => {
    const computed = influenceWeights([0.3, -1, 0.1, 0.2, 0], [A, B, addr(3), addr(3), addr(4)]);
    const receipt = buildAttributionReceipt({
      ...handCase(),
      influence: { method: 'datainf', weights: computed.weightsPpb },
    });
    assert.deepEqual(
      receipt.channels.influence!.weights,
      [...computed.weightsPpb].map(([k, v]) => ({ contributor: k.toLowerCase(), weight: `${v}` })),
    );
    const paid = new Set(receipt.payouts.map((p) => p.address));
    assert.ok(paid.has(addr(3).toLowerCase()) && !paid.has(addr(4).toLowerCase()));
    // B has only the span channel's weight now (5/8 of 0.4 of the contributors' 2,852 wei).
    const b = receipt.payouts.find((p) => p.address === B.toLowerCase())!;
    assert.ok(['713', '714'].includes(b.detail.contributor!), b.detail.contributor);
    assert.equal(
      receipt.payouts.reduce((s, p) => s + BigInt(p.amount), 0n),
      10_007n,
    );
  });

  it('changes its hash when any field is tampered with, and verify names the path', () => {
    const input = randomCase(3);
    const receipt = buildAttributionReceipt(input);
    const hash = attributionReceiptHash(receipt);
    const all = leaves(receipt);
    assert.ok(all.length > 60);
    for (const leaf of all) {
      const copy = structuredClone(receipt) as AttributionReceipt;
      setAt(copy, leaf.path, tampered(leaf.value));
      assert.notEqual(attributionReceiptHash(copy), hash, leaf.path);
      const result = verifyAttributionReceipt(copy, receipt);
      assert.equal(result.ok, false);
      if (!result.ok) {
        assert.equal(result.path, leaf.path);
        assert.deepEqual(result.expected, leaf.value);
        assert.equal(result.expectedHash, hash);
      }
    }
    // An added field and a dropped array item.
    const extra = { ...structuredClone(receipt), note: 'x' };
    assert.deepEqual(
      (({ ok, path }) => ({ ok, path }))(
        verifyAttributionReceipt(extra, receipt) as { ok: boolean; path: string },
      ),
      { ok: false, path: 'note' },
    );
    const dropped = structuredClone(receipt);
    dropped.payouts.pop();
    const r = verifyAttributionReceipt(dropped, receipt);
    assert.ok(
      !r.ok && r.path === `payouts[${receipt.payouts.length - 1}]` && r.actual === undefined,
    );
  });

  it('refuses inputs it cannot attest with VALIDATION_FAILED', () => {
    const input = handCase();
    const free = inference(20, 0n);
    free.receipt.fee = null;
    free.hash = receiptHash(free.receipt);
    for (const bad of [
      { inferenceReceiptHash: '0'.repeat(64) },
      { inferenceReceipt: free.receipt, inferenceReceiptHash: free.hash },
      { model: { ...input.model, id: 8 } },
      { model: { ...input.model, price: { pricePer1kInput: 0n, pricePer1kOutput: 600_000n } } },
      { model: { ...input.model, manifestHash: 'xyz' } },
      { datanets: [...input.datanets, input.datanets[0]!] },
      { datanets: [{ id: 3, version: 1, shards: ['not-a-blob'] }] },
      { stakers: [{ address: 'nobody', stake: 1n }] },
    ] as Partial<BuildReceiptInput>[])
      assert.throws(
        () => buildAttributionReceipt({ ...input, ...bad }),
        (e: unknown) => isOpenLedgerError(e) && e.code === 'VALIDATION_FAILED',
        Object.keys(bad).join(),
      );
  });
});
