import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  getAddress,
  keccak256,
  parseEther,
  parseUnits,
  zeroAddress,
  type Address,
  type Hash,
  stringToHex,
  type LocalAccount,
  type TransactionReceipt,
} from 'viem';
import { OpenLedgerError } from '../errors.ts';
import { writeFileAtomic } from '../util/fs.ts';
import type { ChainConnection } from './clients.ts';
import {
  AttributionSettlementAbi,
  AttributionSettlementBytecode,
  ContributionBondsAbi,
  ContributionBondsBytecode,
  DatanetRegistryAbi,
  DatanetRegistryBytecode,
  DevFaucetAbi,
  DevFaucetBytecode,
  InferenceEscrowAbi,
  InferenceEscrowBytecode,
  ModelRegistryAbi,
  ModelRegistryBytecode,
  OpenTokenAbi,
  OpenTokenBytecode,
} from './generated/contracts.ts';
import {
  GOVERNANCE_CONTRACTS,
  deployGovernance,
  type GovernanceContract,
} from './deploy-governance.ts';
import { LOCAL_CHAIN_ID } from './local.ts';

/** OPEN's fixed supply: one billion tokens of 18 decimals. */
export const OPEN_TOTAL_SUPPLY = parseUnits('1000000000', 18);
/** What the local faucet holds and hands out. */
export const FAUCET_FUNDING = { open: parseUnits('10000000', 18), eth: parseEther('1000') };
/**
 * The protocol's share of every paid call, in basis points, taken before a model's own split
 * (ModelRegistry's immutable `platformFeeBps`).
 */
export const PLATFORM_FEE_BPS = 500;
/**
 * The inference escrow's withdrawal delay and fee epoch, in seconds. The delay must comfortably
 * exceed a node's settlement interval (src/payments: 60 s by default), or a caller could be
 * served and withdraw before the charge lands; it is short on the local chain so that trying a
 * withdrawal takes minutes, not a day.
 */
export function escrowParameters(chainId: number): {
  withdrawalDelaySeconds: bigint;
  epochSeconds: bigint;
} {
  return chainId === LOCAL_CHAIN_ID
    ? { withdrawalDelaySeconds: 600n, epochSeconds: 3600n }
    : { withdrawalDelaySeconds: 86_400n, epochSeconds: 86_400n };
}
/**
 * The attribution settlement's bonds and challenge window. The window must give anyone who
 * recomputes an epoch (`openledger attribution verify`) time to do so and challenge; it is short
 * on the local chain, like the escrow's withdrawal delay, so that trying a settlement end to end
 * takes minutes, not a day. The slash is at most the minimum bond, so a bonded poster can always
 * pay it, and large enough that a wrong posting costs more than a challenge.
 */
export function settlementParameters(chainId: number): {
  minBond: bigint;
  challengeBond: bigint;
  slashAmount: bigint;
  challengeWindowSeconds: bigint;
} {
  return chainId === LOCAL_CHAIN_ID
    ? {
        minBond: parseUnits('1000', 18),
        challengeBond: parseUnits('100', 18),
        slashAmount: parseUnits('500', 18),
        challengeWindowSeconds: 600n,
      }
    : {
        minBond: parseUnits('100000', 18),
        challengeBond: parseUnits('1000', 18),
        slashAmount: parseUnits('50000', 18),
        challengeWindowSeconds: 86_400n,
      };
}
/**
 * The contribution bonds' penalties and unbond delay. The delay is how long a bond stays
 * slashable after its contributor asks for it back: it must give a datanet's curators time to
 * review the contribution, so it is a week on a real chain and, like the other delays, minutes on
 * the local one. Three slashed contributions cut an account's contributor rewards; half of a
 * duplicate's slashed bond pays whoever proved it (who found it and paid the gas).
 */
export function contributionBondParameters(chainId: number): {
  penaltyPerSlash: bigint;
  penaltyThreshold: bigint;
  reporterShareBps: number;
  unbondDelaySeconds: bigint;
} {
  return {
    penaltyPerSlash: 1n,
    penaltyThreshold: 3n,
    reporterShareBps: 5000,
    unbondDelaySeconds: chainId === LOCAL_CHAIN_ID ? 600n : 7n * 86_400n,
  };
}
export const FAUCET_DRIP = {
  open: parseUnits('1000', 18),
  eth: parseEther('1'),
  cooldownSeconds: 60n,
};

export interface Deployment {
  chainId: number;
  contracts: {
    OpenToken: Address;
    DatanetRegistry: Address;
    ModelRegistry: Address;
    /** Absent from records written before payments; `ensureDeployment` adds it. */
    InferenceEscrow?: Address;
    /** Absent from records written before attribution settlement; `ensureDeployment` adds it. */
    AttributionSettlement?: Address;
    /** Absent from records written before contribution bonds; `ensureDeployment` adds it. */
    ContributionBonds?: Address;
    DevFaucet?: Address;
  } & Partial<Record<GovernanceContract, Address>>;
  deployer: Address;
  treasury: Address;
  transactions: Record<string, Hash>;
  blockNumber: string;
  deployedAt: string;
}

export interface DeployOptions {
  signer: LocalAccount;
  /** Receives OPEN's whole supply; defaults to the signer. */
  treasury?: Address;
  onStep?: (step: string) => void;
}

/** Contracts every deployment has; a record without one of them was written by an older version. */
const REQUIRED_CONTRACTS = ['OpenToken', 'DatanetRegistry', 'ModelRegistry'] as const;

/**
 * Deploys the contract suite: the OPEN token (supply to the treasury), the datanet registry, the
 * model registry (which checks datanet versions against it), the inference escrow, the
 * attribution settlement, the contribution bonds, the market and governance suite
 * (deploy-governance.ts) and, on the local chain only, a faucet funded with OPEN and ETH. Each step waits for its receipt, as it must on a real chain, and a reverted
 * step fails the whole deployment with the step named.
 */
export async function deployContracts(
  conn: ChainConnection,
  options: DeployOptions,
): Promise<Deployment> {
  const { publicClient } = conn;
  const wallet = conn.walletFor(options.signer);
  const treasury = options.treasury ?? options.signer.address;
  const local = conn.chain.id === LOCAL_CHAIN_ID;
  const transactions: Record<string, Hash> = {};
  const step = async (name: string, send: () => Promise<Hash>) => {
    options.onStep?.(name);
    try {
      const hash = await send();
      transactions[name] = hash;
      const receipt = await publicClient.waitForTransactionReceipt({ hash });
      if (receipt.status !== 'success') throw new Error(`transaction ${hash} reverted`);
      return receipt;
    } catch (cause) {
      throw new OpenLedgerError(
        'DEPLOY_FAILED',
        `Deployment step "${name}" failed: ${shortMessage(cause)}`,
        {
          hint: 'Check that the deployer account holds enough native currency for gas.',
          cause,
        },
      );
    }
  };

  const token = await step('deploy OpenToken', () =>
    wallet.deployContract({
      abi: OpenTokenAbi,
      bytecode: OpenTokenBytecode,
      args: [treasury, OPEN_TOTAL_SUPPLY, zeroAddress, zeroAddress],
    }),
  );
  const registry = await step('deploy DatanetRegistry', () =>
    wallet.deployContract({ abi: DatanetRegistryAbi, bytecode: DatanetRegistryBytecode }),
  );
  const models = await step('deploy ModelRegistry', () =>
    wallet.deployContract({
      abi: ModelRegistryAbi,
      bytecode: ModelRegistryBytecode,
      args: [getAddress(registry.contractAddress!), PLATFORM_FEE_BPS],
    }),
  );
  const contracts: Deployment['contracts'] = {
    OpenToken: getAddress(token.contractAddress!),
    DatanetRegistry: getAddress(registry.contractAddress!),
    ModelRegistry: getAddress(models.contractAddress!),
  };
  const escrow = await deployEscrow(conn, options.signer, contracts.OpenToken, step);
  contracts.InferenceEscrow = escrow.address;
  const settlement = await deploySettlement(conn, options.signer, escrow.address, treasury, step);
  contracts.AttributionSettlement = settlement.address;
  const bonds = await deployBonds(conn, options.signer, contracts, treasury, step);
  contracts.ContributionBonds = bonds.address;
  const governance = await deployGovernance(
    conn,
    options.signer,
    {
      OpenToken: contracts.OpenToken,
      ModelRegistry: contracts.ModelRegistry,
      InferenceEscrow: escrow.address,
      AttributionSettlement: settlement.address,
      ContributionBonds: bonds.address,
    },
    treasury,
    step,
  );
  Object.assign(contracts, governance.contracts);
  let lastBlock = governance.blockNumber;

  if (local) {
    const faucet = await step('deploy DevFaucet', () =>
      wallet.deployContract({
        abi: DevFaucetAbi,
        bytecode: DevFaucetBytecode,
        args: [contracts.OpenToken, FAUCET_DRIP.open, FAUCET_DRIP.eth, FAUCET_DRIP.cooldownSeconds],
      }),
    );
    contracts.DevFaucet = getAddress(faucet.contractAddress!);
    if (treasury === options.signer.address) {
      await step('fund DevFaucet with OPEN', () =>
        wallet.writeContract({
          address: contracts.OpenToken,
          abi: OpenTokenAbi,
          functionName: 'transfer',
          args: [contracts.DevFaucet!, FAUCET_FUNDING.open],
        }),
      );
    }
    const funded = await step('fund DevFaucet with ETH', () =>
      wallet.sendTransaction({ to: contracts.DevFaucet!, value: FAUCET_FUNDING.eth }),
    );
    lastBlock = funded.blockNumber;
  }

  return {
    chainId: conn.chain.id,
    contracts,
    deployer: options.signer.address,
    treasury,
    transactions,
    blockNumber: lastBlock.toString(),
    deployedAt: new Date().toISOString(),
  };
}

/**
 * Deploys the inference escrow over `token`, administered by `signer`, which also gets the
 * settler role: the node that deploys is the node that charges for the calls it serves.
 */
async function deployEscrow(
  conn: ChainConnection,
  signer: LocalAccount,
  token: Address,
  step: (name: string, send: () => Promise<Hash>) => Promise<TransactionReceipt>,
): Promise<{ address: Address; blockNumber: bigint }> {
  const wallet = conn.walletFor(signer);
  const { withdrawalDelaySeconds, epochSeconds } = escrowParameters(conn.chain.id);
  const deployed = await step('deploy InferenceEscrow', () =>
    wallet.deployContract({
      abi: InferenceEscrowAbi,
      bytecode: InferenceEscrowBytecode,
      args: [token, signer.address, withdrawalDelaySeconds, epochSeconds],
    }),
  );
  const address = getAddress(deployed.contractAddress!);
  const granted = await step('grant the settler role to the node', () =>
    wallet.writeContract({
      address,
      abi: InferenceEscrowAbi,
      functionName: 'grantRole',
      args: [keccak256(stringToHex('SETTLER_ROLE')), signer.address],
    }),
  );
  return { address, blockNumber: granted.blockNumber };
}

/**
 * Deploys the attribution settlement over `escrow` (which must be administered by `signer`) and
 * lets it release the escrow's closed epochs. `signer` gets the poster role (the node that
 * charges is the node that posts its epochs) and, until governance takes it over (issue #8), the
 * arbiter role: on a shared chain the admin should hand ARBITER_ROLE to an independent party,
 * since a poster arbitrating challenges to its own postings is no check at all.
 */
async function deploySettlement(
  conn: ChainConnection,
  signer: LocalAccount,
  escrow: Address,
  treasury: Address,
  step: (name: string, send: () => Promise<Hash>) => Promise<TransactionReceipt>,
): Promise<{ address: Address; blockNumber: bigint }> {
  const wallet = conn.walletFor(signer);
  const { minBond, challengeBond, slashAmount, challengeWindowSeconds } = settlementParameters(
    conn.chain.id,
  );
  const deployed = await step('deploy AttributionSettlement', () =>
    wallet.deployContract({
      abi: AttributionSettlementAbi,
      bytecode: AttributionSettlementBytecode,
      args: [
        escrow,
        signer.address,
        treasury,
        minBond,
        challengeBond,
        slashAmount,
        challengeWindowSeconds,
      ],
    }),
  );
  const address = getAddress(deployed.contractAddress!);
  for (const role of ['POSTER_ROLE', 'ARBITER_ROLE'] as const) {
    await step(`grant the ${role.split('_')[0]!.toLowerCase()} role to the node`, () =>
      wallet.writeContract({
        address,
        abi: AttributionSettlementAbi,
        functionName: 'grantRole',
        args: [keccak256(stringToHex(role)), signer.address],
      }),
    );
  }
  const granted = await step('let the settlement release escrow epochs', () =>
    wallet.writeContract({
      address: escrow,
      abi: InferenceEscrowAbi,
      functionName: 'grantRole',
      args: [keccak256(stringToHex('DISTRIBUTOR_ROLE')), address],
    }),
  );
  return { address, blockNumber: granted.blockNumber };
}

/**
 * Deploys the contribution bonds over OPEN and the datanet registry. `signer` administers it and,
 * by the constructor, holds PARAMS_ROLE (the penalty parameters) until governance (issue #8).
 */
async function deployBonds(
  conn: ChainConnection,
  signer: LocalAccount,
  contracts: Pick<Deployment['contracts'], 'OpenToken' | 'DatanetRegistry'>,
  treasury: Address,
  step: (name: string, send: () => Promise<Hash>) => Promise<TransactionReceipt>,
): Promise<{ address: Address; blockNumber: bigint }> {
  const { penaltyPerSlash, penaltyThreshold, reporterShareBps, unbondDelaySeconds } =
    contributionBondParameters(conn.chain.id);
  const deployed = await step('deploy ContributionBonds', () =>
    conn.walletFor(signer).deployContract({
      abi: ContributionBondsAbi,
      bytecode: ContributionBondsBytecode,
      args: [
        contracts.OpenToken,
        contracts.DatanetRegistry,
        signer.address,
        treasury,
        penaltyPerSlash,
        penaltyThreshold,
        reporterShareBps,
        unbondDelaySeconds,
      ],
    }),
  );
  return { address: getAddress(deployed.contractAddress!), blockNumber: deployed.blockNumber };
}

/**
 * True when the record holds the whole suite and every recorded contract still has code on the
 * chain (a reset chain has none).
 */
export async function isDeploymentLive(
  conn: ChainConnection,
  deployment: Deployment,
): Promise<boolean> {
  if (deployment.chainId !== conn.chain.id) return false;
  if (REQUIRED_CONTRACTS.some((name) => !deployment.contracts[name])) return false;
  for (const address of Object.values(deployment.contracts)) {
    const code = await conn.publicClient.getCode({ address });
    if (!code || code === '0x') return false;
  }
  return true;
}

export function deploymentFile(dataDir: string, chainId: number): string {
  return path.join(dataDir, 'deployments', `${chainId}.json`);
}

export async function readDeployment(
  dataDir: string,
  chainId: number,
): Promise<Deployment | undefined> {
  const text = await readFile(deploymentFile(dataDir, chainId), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as Deployment);
}

export async function writeDeployment(dataDir: string, deployment: Deployment): Promise<void> {
  await writeFileAtomic(
    deploymentFile(dataDir, deployment.chainId),
    `${JSON.stringify(deployment, null, 2)}\n`,
  );
}

/**
 * Returns the recorded deployment when it is still on the chain; otherwise deploys (when a
 * signer is at hand) and records it.
 */
export async function ensureDeployment(
  conn: ChainConnection,
  options: { dataDir: string; signer: LocalAccount | undefined; onStep?: (step: string) => void },
): Promise<{ deployment: Deployment; deployedNow: boolean }> {
  const recorded = await readDeployment(options.dataDir, conn.chain.id);
  if (recorded && (await isDeploymentLive(conn, recorded))) {
    // A record from before payments, settlement or bonds: add what it lacks next to the live suite
    // rather than redeploying the registries (which would orphan every datanet and model on them).
    // Only the deployer administers the escrow, so only it can let a settlement release from it;
    // and only it adds the bonds, so that the suite keeps one administrator.
    const isDeployer = options.signer?.address === recorded.deployer;
    const missing =
      !recorded.contracts.InferenceEscrow ||
      (isDeployer &&
        (!recorded.contracts.AttributionSettlement ||
          !recorded.contracts.ContributionBonds ||
          GOVERNANCE_CONTRACTS.some((name) => !recorded.contracts[name])));
    if (missing && options.signer) {
      const transactions: Record<string, Hash> = {};
      const step = async (name: string, send: () => Promise<Hash>) => {
        options.onStep?.(name);
        const hash = await send();
        transactions[name] = hash;
        const receipt = await conn.publicClient.waitForTransactionReceipt({ hash });
        if (receipt.status !== 'success') {
          throw new OpenLedgerError('DEPLOY_FAILED', `Deployment step "${name}" reverted.`);
        }
        return receipt;
      };
      const contracts = { ...recorded.contracts };
      contracts.InferenceEscrow ??= (
        await deployEscrow(conn, options.signer, recorded.contracts.OpenToken, step)
      ).address;
      contracts.AttributionSettlement ??= (
        await deploySettlement(
          conn,
          options.signer,
          contracts.InferenceEscrow,
          recorded.treasury,
          step,
        )
      ).address;
      if (isDeployer) {
        contracts.ContributionBonds ??= (
          await deployBonds(conn, options.signer, contracts, recorded.treasury, step)
        ).address;
        if (GOVERNANCE_CONTRACTS.some((name) => !contracts[name])) {
          const governance = await deployGovernance(
            conn,
            options.signer,
            {
              OpenToken: contracts.OpenToken,
              ModelRegistry: contracts.ModelRegistry,
              InferenceEscrow: contracts.InferenceEscrow,
              AttributionSettlement: contracts.AttributionSettlement,
              ContributionBonds: contracts.ContributionBonds,
            },
            recorded.treasury,
            step,
          );
          Object.assign(contracts, governance.contracts);
        }
      }
      const updated: Deployment = {
        ...recorded,
        contracts,
        transactions: { ...recorded.transactions, ...transactions },
      };
      await writeDeployment(options.dataDir, updated);
      return { deployment: updated, deployedNow: false };
    }
    return { deployment: recorded, deployedNow: false };
  }
  if (!options.signer) {
    throw new OpenLedgerError(
      'NOT_DEPLOYED',
      `The OpenLedger contracts are not deployed on chain ${conn.chain.id}.`,
      {
        hint: 'Run `openledger deploy --rpc-url URL --private-key KEY` first, or set OPENLEDGER_PRIVATE_KEY so that `up` deploys them.',
      },
    );
  }
  const deployment = await deployContracts(conn, {
    signer: options.signer,
    ...(options.onStep ? { onStep: options.onStep } : {}),
  });
  await writeDeployment(options.dataDir, deployment);
  return { deployment, deployedNow: true };
}

function shortMessage(error: unknown): string {
  if (error && typeof error === 'object' && 'shortMessage' in error)
    return String(error.shortMessage);
  return error instanceof Error ? error.message : String(error);
}
