import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apportion, normalisePpb } from '../src/attribution/fixed.ts';
import {
  DEFAULT_CHANNEL_WEIGHTS,
  exactWeight,
  splitFee,
  type ContributorWeight,
  type SplitInput,
} from '../src/attribution/split.ts';
import { PLATFORM_FEE_BPS } from '../src/chain/index.ts';
import { isOpenLedgerError } from '../src/errors.ts';

/** A deterministic generator (LCG) of uniform numbers in [0, 1). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const addr = (i: number) => `0x${(i + 1).toString(16).padStart(40, '0')}`;
const PLATFORM = addr(101);
const OWNER = addr(100);
const SPLIT = { owner: 6000, stakers: 1000, contributors: 3000 };

function shuffle<T>(items: readonly T[], rnd: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** A random split case: big and tiny fees, any split, 0–4 stakers, 0–3 channels of 0–8 people. */
function randomCase(rnd: () => number): SplitInput {
  const int = (n: number) => Math.floor(rnd() * n);
  const fee =
    rnd() < 0.2 ? BigInt(int(5)) : BigInt(int(2 ** 30)) * BigInt(int(2 ** 30)) + BigInt(int(1000));
  const owner = int(10_001);
  const stakers = int(10_001 - owner);
  const weights = (): ContributorWeight[] =>
    Array.from({ length: int(9) }, () => ({
      // A pool of 12 addresses, so that duplicates, owners and stakers who contribute occur.
      contributor: rnd() < 0.1 ? OWNER : addr(int(12)),
      weight:
        rnd() < 0.5
          ? (rnd() - 0.15) * 10 ** int(6) // fractions, some negative
          : BigInt(int(1_000_000_001)) - (rnd() < 0.1 ? 500_000_000n : 0n),
    }));
  return {
    fee,
    platformBps: rnd() < 0.5 ? PLATFORM_FEE_BPS : int(10_001),
    platform: rnd() < 0.05 ? OWNER : PLATFORM,
    owner: OWNER,
    split: { owner, stakers, contributors: 10_000 - owner - stakers },
    stakers: Array.from({ length: int(5) }, () => ({
      address: addr(int(12)),
      stake: BigInt(int(10 ** 6)) * 10n ** BigInt(int(18)),
    })),
    channels: {
      span: rnd() < 0.8 ? weights() : null,
      influence: rnd() < 0.5 ? weights() : undefined,
      rag: rnd() < 0.3 ? weights() : undefined,
    },
    channelWeights:
      rnd() < 0.7
        ? DEFAULT_CHANNEL_WEIGHTS
        : { span: int(10_001), influence: int(10_001), rag: int(10_001) },
  };
}

function amountOf(result: ReturnType<typeof splitFee>, who: string): bigint {
  return result.payouts.find((p) => p.address === who)?.amount ?? 0n;
}

describe('fee split', () => {
  it('pays exactly the fee, in positive amounts, one payout per address, on 3,000 random cases', () => {
    const rnd = random(6);
    for (let trial = 0; trial < 3000; trial++) {
      const input = randomCase(rnd);
      const result = splitFee(input);
      const sum = result.payouts.reduce((s, p) => s + p.amount, 0n);
      assert.equal(sum, input.fee, `trial ${trial}`);
      const addresses = result.payouts.map((p) => p.address);
      assert.deepEqual(addresses, [...new Set(addresses)].sort());
      for (const p of result.payouts) {
        assert.ok(p.amount > 0n);
        const detail = Object.values(p.detail).reduce((s, v) => s + v, 0n);
        assert.equal(detail, p.amount);
        assert.ok(p.detail[p.role]! > 0n);
      }
      assert.equal(result.totals.platform, (input.fee * BigInt(input.platformBps!)) / 10_000n);
      assert.equal(
        Object.values(result.totals).reduce((s, v) => s + v, 0n),
        input.fee,
      );
    }
  });

  it('is the same whatever the order of stakers and weights', () => {
    const rnd = random(7);
    for (let trial = 0; trial < 300; trial++) {
      const input = randomCase(rnd);
      const shuffled: SplitInput = {
        ...input,
        stakers: shuffle(input.stakers!, rnd),
        channels: Object.fromEntries(
          Object.entries(input.channels!).map(([c, w]) => [c, w ? shuffle(w, rnd) : w]),
        ),
      };
      assert.deepEqual(splitFee(shuffled), splitFee(input));
    }
  });

  it('never lowers a contributor’s payout when their weight rises (random cases)', () => {
    const rnd = random(8);
    let checked = 0;
    for (let trial = 0; trial < 600; trial++) {
      const input = randomCase(rnd);
      const span = input.channels!.span;
      if (!span || span.length === 0) continue;
      const k = Math.floor(rnd() * span.length);
      const who = span[k]!.contributor;
      const raised = span.map((w, i) =>
        i !== k
          ? w
          : {
              ...w,
              weight:
                typeof w.weight === 'bigint'
                  ? w.weight + BigInt(1 + Math.floor(rnd() * 1e6))
                  : w.weight + rnd() * 100,
            },
      );
      const before = splitFee(input).payouts.find((p) => p.address === who)?.detail.contributor;
      const after = splitFee({
        ...input,
        channels: { ...input.channels, span: raised },
      }).payouts.find((p) => p.address === who)?.detail.contributor;
      assert.ok((after ?? 0n) >= (before ?? 0n), `trial ${trial}: ${before} → ${after}`);
      checked++;
    }
    assert.ok(checked > 300);
  });

  it('takes the platform share as ⌊fee · bps / 10,000⌋ and splits the rest by largest remainder', () => {
    // 10,007 wei: platform ⌊500.35⌋ = 500; the rest 9,507 → 5,704.2 / 950.7 / 2,852.1, the
    // leftover wei to the largest remainder (stakers); 2,852 to A and B at 3:1 → 2,139 / 713.
    const result = splitFee({
      fee: 10_007n,
      platform: PLATFORM,
      owner: OWNER,
      split: SPLIT,
      stakers: [{ address: addr(5), stake: 7n }],
      channels: {
        span: [
          { contributor: addr(1), weight: 3n },
          { contributor: addr(2), weight: 1n },
        ],
      },
    });
    assert.deepEqual(
      result.payouts.map((p) => [p.address, p.amount, p.role]),
      [
        [addr(1), 2139n, 'contributor'],
        [addr(2), 713n, 'contributor'],
        [addr(5), 951n, 'staker'],
        [OWNER, 5704n, 'owner'],
        [PLATFORM, 500n, 'platform'],
      ],
    );
    assert.deepEqual(result.channelBps, { span: 10_000 });
  });

  it('handles fees of 0 and 1 wei', () => {
    const base = { platform: PLATFORM, owner: OWNER, split: SPLIT };
    const channels = { span: [{ contributor: addr(1), weight: 1 }] };
    assert.deepEqual(splitFee({ ...base, fee: 0n, channels }).payouts, []);
    // 1 wei: no platform share (⌊0.05⌋); the owner's 0.6 is the largest remainder.
    assert.deepEqual(
      splitFee({ ...base, fee: 1n, channels }).payouts.map((p) => [p.address, p.amount]),
      [[OWNER, 1n]],
    );
  });

  it('pays stakers in proportion to stake, and the owner when there is none', () => {
    const stakers = [
      { address: addr(3), stake: 10n ** 18n },
      { address: addr(4), stake: 3n * 10n ** 18n },
      { address: addr(6), stake: 0n },
    ];
    const input = { fee: 400_000n, platformBps: 0, platform: PLATFORM, owner: OWNER };
    const staked = splitFee({
      ...input,
      split: { owner: 0, stakers: 10_000, contributors: 0 },
      stakers,
    });
    assert.deepEqual(
      staked.payouts.map((p) => [p.address, p.amount]),
      [
        [addr(3), 100_000n],
        [addr(4), 300_000n],
      ],
    );
    const none = splitFee({ ...input, split: SPLIT, stakers: [] });
    assert.deepEqual(
      none.payouts.map((p) => [p.address, p.amount]),
      [[OWNER, 400_000n]],
    );
  });

  it('pays no one with a zero or negative weight, and the owner when no channel credits anyone', () => {
    const result = splitFee({
      fee: 1_000_000n,
      platform: PLATFORM,
      owner: OWNER,
      split: SPLIT,
      channels: {
        span: [
          { contributor: addr(1), weight: 1 },
          { contributor: addr(2), weight: 0 },
          { contributor: addr(3), weight: -0.5 },
        ],
        influence: [
          { contributor: addr(3), weight: -2n },
          { contributor: addr(4), weight: 0n },
        ],
      },
    });
    assert.deepEqual(
      result.payouts.map((p) => p.address),
      [addr(1), OWNER, PLATFORM],
    );
    // Only the span channel credits anyone: it takes the whole contributors' part.
    assert.equal(amountOf(result, addr(1)), 285_000n);
    assert.deepEqual(result.channelBps, { span: 10_000 });
    const nobody = splitFee({
      fee: 1_000_000n,
      platform: PLATFORM,
      owner: OWNER,
      split: SPLIT,
      channels: { span: [{ contributor: addr(1), weight: 0 }], influence: [] },
    });
    assert.deepEqual(
      nobody.payouts.map((p) => [p.address, p.amount]),
      [
        [OWNER, 950_000n],
        [PLATFORM, 50_000n],
      ],
    );
  });

  it('renormalises the channel weights over the channels that credit anyone', () => {
    // span 5000 and influence 3000 (rag empty): 5/8 and 3/8 of 300,000 wei.
    const result = splitFee({
      fee: 1_000_000n,
      platformBps: 0,
      platform: PLATFORM,
      owner: OWNER,
      split: { owner: 7000, stakers: 0, contributors: 3000 },
      channels: {
        span: [{ contributor: addr(1), weight: 0.25 }],
        influence: [{ contributor: addr(2), weight: 123n }],
        rag: [],
      },
    });
    assert.equal(amountOf(result, addr(1)), 187_500n);
    assert.equal(amountOf(result, addr(2)), 112_500n);
    assert.deepEqual(result.channelBps, { span: 6250, influence: 3750 });
  });

  it('merges duplicate addresses and addresses paid in several roles', () => {
    const upper = addr(1).replace('0x', '0X').toUpperCase().replace('0X', '0x');
    const result = splitFee({
      fee: 1_000_000n,
      platformBps: 0,
      platform: PLATFORM,
      owner: OWNER,
      split: { owner: 5000, stakers: 2000, contributors: 3000 },
      stakers: [
        { address: OWNER, stake: 1n },
        { address: addr(1), stake: 1n },
      ],
      channels: {
        span: [
          { contributor: addr(1), weight: 1 },
          { contributor: upper, weight: 1 },
          { contributor: OWNER, weight: 2 },
        ],
      },
    });
    assert.deepEqual(
      result.payouts.map((p) => [p.address, p.amount, p.role, p.detail]),
      [
        [addr(1), 250_000n, 'staker', { staker: 100_000n, contributor: 150_000n }],
        [OWNER, 750_000n, 'owner', { owner: 500_000n, staker: 100_000n, contributor: 150_000n }],
      ],
    );
  });

  it('reads number weights exactly; Hamilton apportionment sums exactly, each share within a unit of its quota', () => {
    assert.deepEqual(exactWeight(0.5), { num: 1n, den: 2n });
    assert.deepEqual(exactWeight(0.1), { num: 3602879701896397n, den: 36028797018963968n });
    assert.deepEqual(exactWeight(3), { num: 3n, den: 1n });
    assert.equal(exactWeight(-1), null);
    assert.equal(exactWeight(0n), null);
    assert.deepEqual(exactWeight(Number.MIN_VALUE), { num: 1n, den: 1n << 1074n });
    assert.throws(() => exactWeight(Number.NaN), isOpenLedgerError);
    const rnd = random(9);
    for (let trial = 0; trial < 200; trial++) {
      const credits = new Map(
        Array.from({ length: 1 + Math.floor(rnd() * 8) }, (_, i) => [
          addr(i),
          { num: BigInt(Math.floor(rnd() * 1000)), den: BigInt(1 + Math.floor(rnd() * 7)) },
        ]),
      );
      const total = BigInt(1 + Math.floor(rnd() * 1e6));
      const parts = apportion(total, credits);
      const sum = [...credits.values()].reduce((a, f) => a + Number(f.num) / Number(f.den), 0);
      if (sum === 0) {
        assert.equal(parts.size, 0);
        continue;
      }
      assert.equal(
        [...parts.values()].reduce((a, b) => a + b, 0n),
        total,
      );
      for (const [key, f] of credits) {
        const quota = (Number(total) * Number(f.num)) / Number(f.den) / sum;
        const got = Number(parts.get(key) ?? 0n);
        assert.ok(
          got >= Math.floor(quota) - 1e-6 && got <= Math.ceil(quota) + 1e-6,
          `${got} vs ${quota}`,
        );
      }
      assert.equal(
        [...normalisePpb(credits).values()].reduce((a, b) => a + b, 0n),
        1_000_000_000n,
      );
    }
  });

  it('refuses bad terms with VALIDATION_FAILED', () => {
    const base: SplitInput = { fee: 10n, platform: PLATFORM, owner: OWNER, split: SPLIT };
    for (const bad of [
      { split: { owner: 6000, stakers: 1000, contributors: 2999 } },
      { split: { owner: 6000.5, stakers: 999.5, contributors: 3000 } },
      { platformBps: 10_001 },
      { fee: -1n },
      { owner: '0x1234' },
      { channels: { span: [{ contributor: addr(1), weight: Number.POSITIVE_INFINITY }] } },
      { channelWeights: { span: -1, influence: 0, rag: 0 } },
    ] as Partial<SplitInput>[])
      assert.throws(
        () => splitFee({ ...base, ...bad }),
        (e: unknown) => isOpenLedgerError(e) && e.code === 'VALIDATION_FAILED',
        JSON.stringify(bad, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)),
      );
  });
});
