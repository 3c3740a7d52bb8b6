import { and, asc, eq, isNotNull } from 'drizzle-orm';
import {
  getAddress,
  parseEventLogs,
  parseSignature,
  type Abi,
  type Address,
  type Hash,
  type Hex,
  type TransactionReceipt,
} from 'viem';
import type { ChainConnection } from '../chain/clients.ts';
import { revertOf } from '../chain/errors.ts';
import {
  ContributionBondsAbi,
  DatanetRegistryAbi,
  OpenTokenAbi,
} from '../chain/generated/contracts.ts';
import type { Relayer } from '../chain/relayer.ts';
import { schema, type Db } from '../db/index.ts';
import { OpenLedgerError, type ErrorCode } from '../errors.ts';
import { slashReasonHash } from './bonds-typed-data.ts';
import { contributionIdToBytes32 } from './merkle.ts';
import type { DatanetService } from './service.ts';

/**
 * ContributionBonds as users reach it through a node: reads of bonds, slashes and penalty
 * scores, and relayed actions that wallets sign (a permit bond, an unbond request, a curator's
 * slash) while the node pays the gas. A contribution is addressed by this node's contribution id
 * (a uuid); its datanet, its contributor and its bytes32 id on-chain come from the database.
 */

/** The bonds contract's errors with those of the token and registry it calls, for decoding. */
const ABI = [
  ...ContributionBondsAbi,
  ...OpenTokenAbi.filter((item) => item.type === 'error'),
  ...DatanetRegistryAbi.filter((item) => item.type === 'error'),
] as Abi;

/** Contract reverts a relayed call may hit, as codes and messages a caller can act on. */
const REVERTS: Record<string, [ErrorCode, string]> = {
  NotOwnerOrCurator: ['FORBIDDEN', 'Only the datanet owner or a curator may slash.'],
  NotBonded: ['CONFLICT', 'The contribution has no bond.'],
  AlreadySlashed: ['CONFLICT', 'The contribution was slashed already.'],
  UnbondNotRequested: ['CONFLICT', 'No unbond is requested for this bond.'],
  BondLocked: ['CONFLICT', 'The bond has not unlocked yet.'],
  InvalidSignature: [
    'INVALID_SIGNATURE',
    'The signature does not match the signer, the action and its bonds nonce.',
  ],
  ExpiredSignature: ['INVALID_SIGNATURE', 'The signature has expired (its deadline has passed).'],
  // bondWithPermit ignores a failed permit, so a bad one surfaces as the token's transferFrom.
  ERC20InsufficientAllowance: [
    'INVALID_SIGNATURE',
    'The permit does not match the contributor, the amount, the deadline and its token nonce.',
  ],
  ERC20InsufficientBalance: ['INSUFFICIENT_BALANCE', 'The wallet holds less OPEN than the amount.'],
  ZeroAmount: ['VALIDATION_FAILED', 'The amount must be more than 0.'],
  ZeroAddress: ['VALIDATION_FAILED', 'The zero address is not allowed here.'],
  UnknownDatanet: ['NOT_FOUND', 'The datanet is not on-chain.'],
  InvalidRowProof: ['CONFLICT', "A row proof does not match the version's on-chain root."],
};

function bondsError(error: unknown): unknown {
  const name = revertOf(error)?.data?.errorName;
  const mapped = name ? REVERTS[name] : undefined;
  if (!mapped) return error;
  return new OpenLedgerError(mapped[0], mapped[1], { details: { revert: name }, cause: error });
}

export interface BondParameters {
  penaltyPerSlash: bigint;
  penaltyThreshold: bigint;
  reporterShareBps: number;
  unbondDelaySeconds: bigint;
  treasury: Address;
}

export interface BondState {
  datanetId: number;
  contributionId: string;
  /** The contribution id as the chain sees it. */
  contributionIdBytes32: Hex;
  contributor: Address;
  amount: bigint;
  /** Unix seconds when `unbond` may pay it; null while no unbond is requested. */
  unlockAt: number | null;
  slashed: boolean;
  chainTime: number;
}

export interface Penalty {
  address: Address;
  score: bigint;
  threshold: bigint;
  rewardsCut: boolean;
}

export interface DuplicateSlash {
  txHash: Hash;
  rowHash: string;
  later: { version: number; contributionId: string; contributor: Address };
  earlier: { version: number; contributionId: string; contributor: Address };
  slashed: bigint;
  toReporter: bigint;
  penaltyScore: bigint;
}

export class BondService {
  constructor(
    private readonly deps: {
      db: Db;
      chain: ChainConnection;
      bonds: Address;
      token: Address;
      datanets: DatanetService;
      relayer: Relayer | undefined;
      /** The local dev chain, whose blocks are mined only on transactions. */
      local: boolean;
    },
  ) {}

  get address(): Address {
    return this.deps.bonds;
  }

  async parameters(): Promise<BondParameters> {
    const [penaltyPerSlash, penaltyThreshold, reporterShareBps, unbondDelay, treasury] =
      await Promise.all(
        (
          [
            'penaltyPerSlash',
            'penaltyThreshold',
            'reporterShareBps',
            'unbondDelay',
            'treasury',
          ] as const
        ).map((functionName) => this.read(functionName, [])),
      );
    return {
      penaltyPerSlash: penaltyPerSlash as bigint,
      penaltyThreshold: penaltyThreshold as bigint,
      reporterShareBps: Number(reporterShareBps),
      unbondDelaySeconds: unbondDelay as bigint,
      treasury: treasury as Address,
    };
  }

  /** What a wallet needs to sign bond actions: both domains' contracts and its nonces there. */
  async signingInfo(address: Address) {
    const account = getAddress(address);
    const [nonce, tokenNonce, parameters] = await Promise.all([
      this.read('nonces', [account]) as Promise<bigint>,
      this.deps.chain.publicClient.readContract({
        address: this.deps.token,
        abi: OpenTokenAbi,
        functionName: 'nonces',
        args: [account],
      }),
      this.parameters(),
    ]);
    return {
      chainId: this.deps.chain.chain.id,
      bonds: this.deps.bonds,
      token: this.deps.token,
      nonce,
      tokenNonce,
      parameters,
    };
  }

  async bond(contributionId: string): Promise<BondState> {
    const c = await this.contribution(contributionId);
    const [bond, slashed, chainTime] = await Promise.all([
      this.read('bondOf', [c.datanetId, c.idBytes32, c.contributor]) as Promise<{
        amount: bigint;
        unlockAt: bigint;
      }>,
      this.read('slashed', [c.datanetId, c.idBytes32, c.contributor]) as Promise<boolean>,
      this.chainTime(),
    ]);
    return {
      datanetId: Number(c.datanetId),
      contributionId,
      contributionIdBytes32: c.idBytes32,
      contributor: c.contributor,
      amount: bond.amount,
      unlockAt: bond.unlockAt === 0n ? null : Number(bond.unlockAt),
      slashed,
      chainTime,
    };
  }

  /** Relays `bondWithPermit`: the contributor signed an ERC-2612 permit to the bonds contract. */
  async bondWithPermit(input: {
    contributionId: string;
    amount: bigint;
    deadline: bigint;
    signature: Hex;
  }): Promise<Hash> {
    const c = await this.contribution(input.contributionId);
    const { v, yParity, r, s } = parseSignature(input.signature);
    const receipt = await this.relay('bondWithPermit', [
      c.contributor,
      c.datanetId,
      c.idBytes32,
      input.amount,
      input.deadline,
      Number(v ?? 27n + BigInt(yParity)),
      r,
      s,
    ]);
    return receipt.transactionHash;
  }

  async requestUnbond(input: {
    contributionId: string;
    deadline: bigint;
    signature: Hex;
  }): Promise<Hash> {
    const c = await this.contribution(input.contributionId);
    const receipt = await this.relay('requestUnbondWithSig', [
      c.contributor,
      c.datanetId,
      c.idBytes32,
      input.deadline,
      input.signature,
    ]);
    return receipt.transactionHash;
  }

  /** Pays an unlocked bond back to its contributor (anyone may ask: the money goes only there). */
  async unbond(contributionId: string): Promise<Hash> {
    const c = await this.contribution(contributionId);
    await this.catchUpLocalChain(c);
    try {
      const receipt = await this.relay('unbond', [c.datanetId, c.idBytes32, c.contributor]);
      return receipt.transactionHash;
    } catch (error) {
      if (
        error instanceof OpenLedgerError &&
        (error.details as { revert?: string } | undefined)?.revert === 'BondLocked'
      ) {
        const state = await this.bond(contributionId);
        throw new OpenLedgerError(
          'CONFLICT',
          `The bond unlocks at ${new Date((state.unlockAt ?? 0) * 1000).toISOString()}, in ${Math.max(0, (state.unlockAt ?? 0) - state.chainTime)} s by the chain's clock.`,
          {
            hint: 'Unbond once it has unlocked.',
            details: { revert: 'BondLocked', unlockAt: state.unlockAt, chainTime: state.chainTime },
            cause: error,
          },
        );
      }
      throw error;
    }
  }

  /**
   * Relays a curator's signed `slashMaliciousWithSig`. Refused here, before any gas, when the
   * signer does not curate the datanet or the contribution is not the datanet's.
   */
  async slashMalicious(input: {
    datanetId: number;
    contributionId: string;
    curator: Address;
    contributor?: Address | undefined;
    reason: string;
    deadline: bigint;
    signature: Hex;
  }): Promise<{ txHash: Hash; reasonHash: Hex; slashed: bigint; penaltyScore: bigint }> {
    const c = await this.contribution(input.contributionId);
    if (Number(c.datanetId) !== input.datanetId)
      throw new OpenLedgerError(
        'NOT_FOUND',
        `Contribution ${input.contributionId} is not in datanet ${input.datanetId}.`,
      );
    if (input.contributor && getAddress(input.contributor) !== c.contributor)
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `Contribution ${input.contributionId} was made by ${c.contributor}, not ${input.contributor}.`,
        { details: { field: 'contributor' } },
      );
    await this.deps.datanets.assertCurator(input.datanetId, getAddress(input.curator));
    const reasonHash = slashReasonHash(input.reason);
    const receipt = await this.relay('slashMaliciousWithSig', [
      getAddress(input.curator),
      c.datanetId,
      c.idBytes32,
      c.contributor,
      reasonHash,
      input.deadline,
      input.signature,
    ]);
    const [event] = parseEventLogs({
      abi: ContributionBondsAbi,
      logs: receipt.logs,
      eventName: 'SlashedMalicious',
    });
    return {
      txHash: receipt.transactionHash,
      reasonHash,
      slashed: event?.args.slashed ?? 0n,
      penaltyScore: event?.args.penaltyScore ?? 0n,
    };
  }

  /**
   * Finds a re-upload of `rowHash` in the datanet's committed versions, builds both row proofs
   * and relays `slashDuplicate` (the node is the reporter: it pays the gas and takes the
   * reporter's share). The earliest contribution holding the row is the original; the first
   * later contribution under another id that is not slashed yet is the re-upload.
   */
  async slashDuplicate(datanetId: number, rowHash: string): Promise<DuplicateSlash> {
    await this.deps.datanets.get(datanetId);
    const rows = await this.deps.db
      .select({
        contributionId: schema.datanetRows.contributionId,
        contributor: schema.datanetRows.contributor,
        version: schema.datanetRows.version,
      })
      .from(schema.datanetRows)
      .where(
        and(
          eq(schema.datanetRows.datanetId, datanetId),
          eq(schema.datanetRows.rowHash, rowHash),
          eq(schema.datanetRows.status, 'approved'),
          isNotNull(schema.datanetRows.version),
        ),
      )
      .orderBy(asc(schema.datanetRows.version));
    const [original] = rows;
    const later = rows.filter(
      (r) => r.version! > original!.version! && r.contributionId !== original!.contributionId,
    );
    if (!original || later.length === 0)
      throw new OpenLedgerError(
        'NOT_FOUND',
        `Row ${rowHash} was not re-uploaded in a later version of datanet ${datanetId} under another contribution.`,
      );
    let candidate: (typeof later)[number] | undefined;
    for (const row of later) {
      const slashed = (await this.read('slashed', [
        BigInt(datanetId),
        contributionIdToBytes32(row.contributionId),
        getAddress(row.contributor),
      ])) as boolean;
      if (!slashed) {
        candidate = row;
        break;
      }
    }
    if (!candidate)
      throw new OpenLedgerError(
        'CONFLICT',
        `Every re-upload of row ${rowHash} in datanet ${datanetId} was slashed already.`,
      );
    const [laterProof, earlierProof] = await Promise.all([
      this.deps.datanets.proof(datanetId, candidate.version!, rowHash, candidate.contributionId),
      this.deps.datanets.proof(datanetId, original.version!, rowHash, original.contributionId),
    ]);
    const side = (p: typeof laterProof) => ({
      version: BigInt(p.version),
      contributor: p.leaf.contributor,
      contributionId: p.leaf.contributionIdBytes32,
      proof: p.proof,
    });
    const receipt = await this.relay('slashDuplicate', [
      BigInt(datanetId),
      `0x${rowHash}`,
      side(laterProof),
      side(earlierProof),
    ]);
    const [event] = parseEventLogs({
      abi: ContributionBondsAbi,
      logs: receipt.logs,
      eventName: 'SlashedDuplicate',
    });
    return {
      txHash: receipt.transactionHash,
      rowHash,
      later: {
        version: candidate.version!,
        contributionId: candidate.contributionId,
        contributor: getAddress(candidate.contributor),
      },
      earlier: {
        version: original.version!,
        contributionId: original.contributionId,
        contributor: getAddress(original.contributor),
      },
      slashed: event?.args.slashed ?? 0n,
      toReporter: event?.args.toReporter ?? 0n,
      penaltyScore: event?.args.penaltyScore ?? 0n,
    };
  }

  async penalty(address: Address): Promise<Penalty> {
    const account = getAddress(address);
    const [score, threshold, rewardsCut] = await Promise.all([
      this.read('penaltyScore', [account]) as Promise<bigint>,
      this.read('penaltyThreshold', []) as Promise<bigint>,
      this.read('rewardsCut', [account]) as Promise<boolean>,
    ]);
    return { address: account, score, threshold, rewardsCut };
  }

  private async contribution(id: string) {
    const row = await this.deps.datanets.contribution(id);
    return {
      datanetId: BigInt(row.datanetId),
      idBytes32: contributionIdToBytes32(row.id),
      contributor: getAddress(row.contributor),
    };
  }

  /**
   * The chain's clock, which bonds unlock by: the timestamp the next block gets (a local anvil
   * chain mines only on transactions, so its latest block may be far behind its clock).
   */
  private async chainTime(): Promise<number> {
    const client = this.deps.chain.publicClient;
    const block = await client
      .getBlock({ blockTag: 'pending' })
      .catch(() => client.getBlock({ blockTag: 'latest' }));
    return Number(block.timestamp);
  }

  /** Calls are simulated on the latest block: on the local chain, mine one if only that blocks an unbond. */
  private async catchUpLocalChain(c: Awaited<ReturnType<BondService['contribution']>>) {
    if (!this.deps.local) return;
    const client = this.deps.chain.publicClient;
    const [bond, latest, now] = await Promise.all([
      this.read('bondOf', [c.datanetId, c.idBytes32, c.contributor]) as Promise<{
        unlockAt: bigint;
      }>,
      client.getBlock({ blockTag: 'latest' }),
      this.chainTime(),
    ]);
    const unlockAt = Number(bond.unlockAt);
    if (unlockAt !== 0 && Number(latest.timestamp) < unlockAt && now >= unlockAt)
      await client.request({ method: 'evm_mine' as never, params: [] as never });
  }

  private read(functionName: string, args: readonly unknown[]): Promise<unknown> {
    return this.deps.chain.publicClient.readContract({
      address: this.deps.bonds,
      abi: ContributionBondsAbi,
      functionName,
      args,
    } as never);
  }

  private async relay(functionName: string, args: readonly unknown[]): Promise<TransactionReceipt> {
    if (!this.deps.relayer) {
      throw new OpenLedgerError('RELAYER_UNAVAILABLE', 'This node has no signer to relay with.', {
        hint: 'Start the node with OPENLEDGER_PRIVATE_KEY set to a funded key on this chain.',
      });
    }
    try {
      return await this.deps.relayer.write({
        address: this.deps.bonds,
        abi: ABI,
        functionName,
        args,
      } as never);
    } catch (error) {
      throw bondsError(error);
    }
  }
}
