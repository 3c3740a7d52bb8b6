/**
 * The fee split of one paid inference (issue #6, item 5): the platform's share, then the model's
 * Split (owner / stakers / contributors, in basis points, ModelRegistry), the stakers' part by
 * stake and the contributors' part by attribution weight over the channels (span, influence,
 * RAG). Everything is integer arithmetic with largest-remainder rounding (Hamilton's method), so
 * the payouts always sum to exactly the fee, and the result depends only on the inputs' values,
 * never on their order.
 *
 * Hamilton's method is written here rather than taken from npm: the packages there work on
 * floating-point numbers, and a payout must be the same to the wei on every machine.
 */
import { PLATFORM_FEE_BPS } from '../chain/deploy.ts';
import { OpenLedgerError } from '../errors.ts';
import { addFraction, apportion, fraction, type Fraction } from './fixed.ts';

/** Basis points in a whole (ModelRegistry.BPS). */
export const BPS = 10_000;

export type Channel = 'span' | 'influence' | 'rag';
export const CHANNELS: readonly Channel[] = ['span', 'influence', 'rag'];

/** How the contributors' part is shared between the channels, in basis points. */
export type ChannelWeights = Record<Channel, number>;

/**
 * The published defaults: verbatim reuse of data weighs most, gradient influence (adapters
 * trained here) next, retrieved rows last. Renormalised over the channels that credit anyone.
 */
export const DEFAULT_CHANNEL_WEIGHTS: Readonly<ChannelWeights> = Object.freeze({
  span: 5000,
  influence: 3000,
  rag: 2000,
});

/** The platform's share when the caller does not pass the registry's `platformFeeBps`. */
export const DEFAULT_PLATFORM_BPS = PLATFORM_FEE_BPS;

export interface RevenueSplitBps {
  owner: number;
  stakers: number;
  contributors: number;
}

/**
 * A contributor's weight in one channel: a number is read as the exact binary fraction it is
 * (so 0.1 means 0.1000000000000000055…, the same on every machine), a bigint as an integer
 * weight (parts per billion, say). Only positive weights pay; the scale does not matter, the
 * channel's weights are normalised.
 */
export interface ContributorWeight {
  contributor: string;
  weight: number | bigint;
}

export type Role = 'platform' | 'owner' | 'staker' | 'contributor';
const ROLES: readonly Role[] = ['platform', 'owner', 'staker', 'contributor'];

export interface SplitInput {
  /** OPEN wei (src/payments/typed-data.ts `inferenceFee`). */
  fee: bigint;
  /** ModelRegistry `platformFeeBps`; default PLATFORM_FEE_BPS (500). */
  platformBps?: number;
  platform: string;
  owner: string;
  split: RevenueSplitBps;
  stakers?: readonly { address: string; stake: bigint }[];
  channels?: Partial<Record<Channel, readonly ContributorWeight[] | null>>;
  /** Default DEFAULT_CHANNEL_WEIGHTS. */
  channelWeights?: Readonly<ChannelWeights>;
}

export interface Payout {
  /** Lower-case 0x address. */
  address: string;
  /** OPEN wei. */
  amount: bigint;
  /** The first of platform, owner, staker, contributor that this address is paid as. */
  role: Role;
  /** What it gets in each role (only the roles it is paid in). */
  detail: Partial<Record<Role, bigint>>;
}

export interface SplitResult {
  /** One per address, by address; only positive amounts. They sum to exactly the fee. */
  payouts: Payout[];
  /** Paid per role (the stakers' and contributors' parts counted as the owner's when redirected). */
  totals: Record<Role, bigint>;
  /** The channel weights applied, renormalised to basis points over the channels that paid. */
  channelBps: Partial<Record<Channel, number>>;
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

function address(value: string, what: string): string {
  if (typeof value !== 'string' || !ADDRESS.test(value))
    throw new OpenLedgerError('VALIDATION_FAILED', `${what} "${String(value)}" is not an address.`);
  return value.toLowerCase();
}

function bps(value: number, what: string): bigint {
  if (!Number.isInteger(value) || value < 0 || value > BPS)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `${what} must be an integer number of basis points in [0, ${BPS}], got ${value}.`,
    );
  return BigInt(value);
}

/**
 * The exact value of a finite number as a fraction (a double is m·2^e), or of a bigint;
 * null when it is not positive.
 */
export function exactWeight(weight: number | bigint): Fraction | null {
  if (typeof weight === 'bigint') return weight > 0n ? { num: weight, den: 1n } : null;
  if (typeof weight !== 'number' || !Number.isFinite(weight))
    throw new OpenLedgerError('VALIDATION_FAILED', `A weight must be finite, got ${weight}.`);
  if (!(weight > 0)) return null;
  if (Number.isSafeInteger(weight)) return { num: BigInt(weight), den: 1n };
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, weight);
  const bits = view.getBigUint64(0);
  const exponent = Number((bits >> 52n) & 0x7ffn);
  const mantissa = (bits & ((1n << 52n) - 1n)) | (exponent === 0 ? 0n : 1n << 52n);
  // value = mantissa · 2^(e − 1075), with e = 1 for subnormals.
  const shift = (exponent === 0 ? 1 : exponent) - 1075;
  return shift >= 0
    ? { num: mantissa << BigInt(shift), den: 1n }
    : fraction(mantissa, 1n << BigInt(-shift));
}

/**
 * A channel's positive weights per (lower-case) contributor, duplicates summed; empty when no
 * one has a positive weight.
 */
export function channelCredits(weights: readonly ContributorWeight[]): Map<string, Fraction> {
  const credits = new Map<string, Fraction>();
  for (const { contributor, weight } of weights) {
    const who = address(contributor, 'Contributor');
    const f = exactWeight(weight);
    if (!f) continue;
    credits.set(who, addFraction(credits.get(who) ?? { num: 0n, den: 1n }, f));
  }
  return credits;
}

/**
 * Splits a fee:
 *
 * 1. the platform gets ⌊fee · platformBps / 10,000⌋ (its fraction of a wei stays with the rest);
 * 2. the rest is shared between owner, stakers and contributors by the model's Split (largest
 *    remainder; ties in the order owner, stakers, contributors);
 * 3. the stakers' part by stake (no staker with a positive stake: it goes to the owner);
 * 4. the contributors' part by Σ_channels channelWeight · (contributor's weight / channel total),
 *    the channel weights renormalised over the channels in which someone has a positive weight,
 *    in one exact step, so that raising a contributor's weight never lowers their payout (no
 *    channel credits anyone: it goes to the owner);
 *
 * ties in 3 and 4 go to the smaller address. An address paid in several roles gets one payout.
 */
export function splitFee(input: SplitInput): SplitResult {
  const { fee } = input;
  if (typeof fee !== 'bigint' || fee < 0n)
    throw new OpenLedgerError('VALIDATION_FAILED', 'The fee must be a non-negative bigint (wei).');
  const platformBps = bps(input.platformBps ?? DEFAULT_PLATFORM_BPS, 'The platform fee');
  const platform = address(input.platform, 'The platform');
  const owner = address(input.owner, 'The owner');
  const split = {
    owner: bps(input.split.owner, 'The owner share'),
    stakers: bps(input.split.stakers, 'The stakers share'),
    contributors: bps(input.split.contributors, 'The contributors share'),
  };
  if (split.owner + split.stakers + split.contributors !== BigInt(BPS))
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `The split must add up to ${BPS} basis points, got ${split.owner} + ${split.stakers} + ${split.contributors}.`,
    );
  const channelWeights = input.channelWeights ?? DEFAULT_CHANNEL_WEIGHTS;
  for (const c of CHANNELS) bps(channelWeights[c], `The ${c} channel weight`);

  const paid = new Map<string, Partial<Record<Role, bigint>>>();
  const pay = (who: string, role: Role, amount: bigint) => {
    if (amount === 0n) return;
    const entry = paid.get(who) ?? {};
    entry[role] = (entry[role] ?? 0n) + amount;
    paid.set(who, entry);
  };

  const platformAmount = (fee * platformBps) / BigInt(BPS);
  pay(platform, 'platform', platformAmount);
  const rest = fee - platformAmount;
  const parts = apportion(
    rest,
    new Map([
      ['owner', { num: split.owner, den: 1n }],
      ['stakers', { num: split.stakers, den: 1n }],
      ['contributors', { num: split.contributors, den: 1n }],
    ]),
    ['owner', 'stakers', 'contributors'],
  );
  pay(owner, 'owner', parts.get('owner') ?? 0n);

  const stakersPart = parts.get('stakers') ?? 0n;
  const stakes = new Map<string, Fraction>();
  for (const s of input.stakers ?? []) {
    const who = address(s.address, 'A staker');
    if (typeof s.stake !== 'bigint')
      throw new OpenLedgerError('VALIDATION_FAILED', 'A stake must be a bigint (wei).');
    if (s.stake <= 0n) continue;
    stakes.set(who, { num: (stakes.get(who)?.num ?? 0n) + s.stake, den: 1n });
  }
  if (stakes.size === 0) pay(owner, 'owner', stakersPart);
  else for (const [who, amount] of apportion(stakersPart, stakes)) pay(who, 'staker', amount);

  const contributorsPart = parts.get('contributors') ?? 0n;
  const active: { channel: Channel; weight: bigint; credits: Map<string, Fraction> }[] = [];
  for (const channel of CHANNELS) {
    const weights = input.channels?.[channel];
    if (!weights || channelWeights[channel] === 0) continue;
    const credits = channelCredits(weights);
    if (credits.size > 0)
      active.push({ channel, weight: BigInt(channelWeights[channel]), credits });
  }
  const channelBps: Partial<Record<Channel, number>> = {};
  if (active.length === 0) pay(owner, 'owner', contributorsPart);
  else {
    const shares = new Map<string, Fraction>();
    for (const { weight, credits } of active) {
      let total: Fraction = { num: 0n, den: 1n };
      for (const f of credits.values()) total = addFraction(total, f);
      // weight · f / total, exactly; the common factor 1 / Σ weights does not change the ratios.
      for (const [who, f] of credits) {
        const share = fraction(weight * f.num * total.den, f.den * total.num);
        shares.set(who, addFraction(shares.get(who) ?? { num: 0n, den: 1n }, share));
      }
    }
    for (const [who, amount] of apportion(contributorsPart, shares))
      pay(who, 'contributor', amount);
    const renormalised = apportion(
      BigInt(BPS),
      new Map(active.map((a) => [a.channel, { num: a.weight, den: 1n }])),
      CHANNELS,
    );
    for (const [c, v] of renormalised) channelBps[c as Channel] = Number(v);
  }

  const totals: Record<Role, bigint> = { platform: 0n, owner: 0n, staker: 0n, contributor: 0n };
  const payouts: Payout[] = [...paid]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([who, detail]) => {
      let amount = 0n;
      for (const role of ROLES) {
        amount += detail[role] ?? 0n;
        totals[role] += detail[role] ?? 0n;
      }
      return { address: who, amount, role: ROLES.find((r) => detail[r] !== undefined)!, detail };
    });
  return { payouts, totals, channelBps };
}
