// Contract transactions from the signed-in wallet: a dev account (local chain only, signed in the
// browser and sent to the node's RPC) or an injected EIP-1193 wallet. Each call is simulated
// first, so a revert comes back by its custom error's name (as the CLI reports it:
// src/cli/wallet.ts), then sent, then waited for.
//
// The ABIs are the few functions and errors the pages call, parsed from signatures: the generated
// src/chain/generated/contracts.ts holds every contract's bytecode and stays out of the bundle.
import { useCallback } from 'react';
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  getAddress,
  http,
  parseAbi,
  UserRejectedRequestError,
  type Abi,
  type Account,
  type Address,
  type Chain,
  type Hash,
  type PublicClient,
  type WalletClient,
} from 'viem';
import { ApiError, type NodeStatus } from './api';
import { useAuth } from './auth';
import { useNode } from './node';
import { injectedProvider, loadDevAccounts, type SignerChoice } from './wallet';

// ----- ABIs ---------------------------------------------------------------------------------

/** Errors any of the contracts below may raise through OpenZeppelin's ERC-20 and guards. */
const COMMON_ERRORS = [
  'error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed)',
  'error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed)',
  'error ERC20InvalidReceiver(address receiver)',
  'error ERC20InvalidSender(address sender)',
  'error ERC20InvalidSpender(address spender)',
  'error ERC20InvalidApprover(address approver)',
  'error SafeERC20FailedOperation(address token)',
  'error ReentrancyGuardReentrantCall()',
  'error AccessControlUnauthorizedAccount(address account, bytes32 neededRole)',
  'error ZeroAddress()',
  'error ZeroAmount()',
] as const;

export const OpenTokenAbi = parseAbi([
  'function approve(address spender, uint256 amount) returns (bool)',
  'function allowance(address owner, address spender) view returns (uint256)',
  'function balanceOf(address account) view returns (uint256)',
  ...COMMON_ERRORS,
]);

export const ModelStakingAbi = parseAbi([
  'function stake(uint256 modelId, uint256 amount)',
  'function requestUnstake(uint256 modelId, uint256 amount)',
  'function withdraw(uint256 modelId)',
  'function stakeOf(uint256 modelId, address account) view returns (uint256)',
  'function unbondingOf(uint256 modelId, address account) view returns (uint256 amount, uint64 releaseAt)',
  'error UnknownModel(uint256 modelId)',
  'error BelowMinimumStake(uint256 stake, uint256 minStake)',
  'error TooManyStakers(uint256 modelId, uint256 smallestStake)',
  'error InsufficientStake(uint256 stake, uint256 wanted)',
  'error NothingToWithdraw(uint256 modelId, address account)',
  'error StillUnbonding(uint64 releaseAt)',
  ...COMMON_ERRORS,
]);

export const AgentStakingAbi = parseAbi([
  'function launch(string name, bytes32 specHash, uint256 amount) returns (uint256 id)',
  'function agentOfName(bytes32 nameHash) view returns (uint256)',
  'function addStake(uint256 agentId, uint256 amount)',
  'function requestUnbond(uint256 agentId, uint256 amount)',
  'function withdraw(uint256 agentId)',
  'error InvalidName(string name)',
  'error NameTaken(string name, uint256 agentId)',
  'error UnknownAgent(uint256 agentId)',
  'error NotAgentOwner(uint256 agentId, address account)',
  'error BelowMinimumStake(uint256 stake, uint256 minStake)',
  'error InsufficientStake(uint256 stake, uint256 wanted)',
  'error AgentRetired(uint256 agentId)',
  'error NothingToWithdraw(uint256 agentId)',
  'error StillUnbonding(uint64 releaseAt)',
  'error ChallengeOpen(uint256 agentId, uint32 openChallenges)',
  ...COMMON_ERRORS,
]);

const VOTES_ERRORS = [
  'error ERC5805FutureLookup(uint256 timepoint, uint48 clock)',
  'error ERC20ExceededSafeSupply(uint256 increasedSupply, uint256 cap)',
  'error ERC20InvalidUnderlying(address token)',
  'error VotesExpiredSignature(uint256 expiry)',
  'error NonTransferable()',
  'error TreasuryEarnsNoVotes()',
] as const;

/** gOPEN (StakedOpen): OPEN staked for votes, 1:1. */
export const StakedOpenAbi = parseAbi([
  'function depositFor(address account, uint256 value) returns (bool)',
  'function withdrawTo(address account, uint256 value) returns (bool)',
  'function delegate(address delegatee)',
  ...VOTES_ERRORS,
  ...COMMON_ERRORS,
]);

/** cVOTE (ContributionVotes): only delegation is the holder's to send. */
export const ContributionVotesAbi = parseAbi([
  'function delegate(address delegatee)',
  ...VOTES_ERRORS,
  ...COMMON_ERRORS,
]);

export const GovernorAbi = parseAbi([
  'function propose(address[] targets, uint256[] values, bytes[] calldatas, string description) returns (uint256)',
  'function castVote(uint256 proposalId, uint8 support) returns (uint256)',
  'function queue(address[] targets, uint256[] values, bytes[] calldatas, bytes32 descriptionHash) returns (uint256)',
  'function execute(address[] targets, uint256[] values, bytes[] calldatas, bytes32 descriptionHash) payable returns (uint256)',
  'error GovernorAlreadyCastVote(address voter)',
  'error GovernorAlreadyQueuedProposal(uint256 proposalId)',
  'error GovernorInsufficientProposerVotes(address proposer, uint256 votes, uint256 threshold)',
  'error GovernorInvalidProposalLength(uint256 targets, uint256 calldatas, uint256 values)',
  'error GovernorInvalidVoteType()',
  'error GovernorNonexistentProposal(uint256 proposalId)',
  'error GovernorProposalQueueingFailed(uint256 proposalId)',
  'error GovernorRestrictedProposer(address proposer)',
  'error GovernorUnexpectedProposalState(uint256 proposalId, uint8 current, bytes32 expectedStates)',
  'error TimelockUnexpectedOperationState(bytes32 operationId, bytes32 expectedStates)',
  'error TimelockUnexecutedPredecessor(bytes32 predecessorId)',
  'error FailedCall()',
  ...COMMON_ERRORS,
]);

/** ModelProposals: bounties for models (contracts/ModelProposals.sol). */
export const ModelProposalsAbi = parseAbi([
  'function create(bytes32 specHash, uint256 datanetId, uint256 bar, bool higherIsBetter, uint64 deadline, uint256 minFunding, uint256 initialFunding) returns (uint256 id)',
  'function fund(uint256 id, uint256 amount)',
  'function challenge(uint256 id, bytes32 evidenceHash)',
  'function claim(uint256 id)',
  'function refund(uint256 id)',
  'function cancel(uint256 id)',
  'function proposalCount() view returns (uint256)',
  'function challengeBond() view returns (uint256)',
  'function fundedBy(uint256 id, address funder) view returns (uint256)',
  'event ProposalCreated(uint256 indexed id, address indexed creator, bytes32 specHash, uint256 indexed datanetId, uint256 bar, bool higherIsBetter, uint64 deadline, uint256 minFunding)',
  'error InvalidDeadline(uint64 deadline)',
  'error UnknownProposal(uint256 id)',
  'error NotOpen(uint256 id, uint8 status)',
  'error DeadlinePassed(uint256 id, uint64 deadline)',
  'error Underfunded(uint256 id, uint256 funded, uint256 minFunding)',
  'error UnknownModel(uint256 modelId)',
  'error WrongDatanet(uint256 modelId, uint256 datanetId)',
  'error BarNotMet(uint256 score, uint256 bar, bool higherIsBetter)',
  'error ChallengeWindowClosed(uint256 id, uint64 closedAt)',
  'error ChallengeWindowOpen(uint256 id, uint64 closesAt)',
  'error NotChallenged(uint256 id)',
  'error NotSubmitted(uint256 id, uint8 status)',
  'error NotCreator(uint256 id, address account)',
  'error NotRefundable(uint256 id, uint8 status)',
  'error NothingToRefund(uint256 id, address funder)',
  ...COMMON_ERRORS,
]);

// ----- clients ------------------------------------------------------------------------------

export interface ContractCall {
  address: Address;
  abi: Abi;
  functionName: string;
  args: readonly unknown[];
}

export interface ChainWallet {
  address: Address;
  publicClient: PublicClient;
  /** Simulates, sends and waits for one transaction; a revert throws an ApiError naming it. */
  send(call: ContractCall): Promise<Hash>;
}

function chainOf(status: NodeStatus): Chain {
  return defineChain({
    id: status.chainId,
    name: status.local ? 'Local dev chain' : `Chain ${status.chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [status.rpcUrl] } },
  });
}

const publicClients = new Map<string, PublicClient>();

/** A read-only client of the node's chain (its RPC, as GET /api/status names it). */
export function publicClientFor(status: NodeStatus): PublicClient {
  const key = `${status.chainId}@${status.rpcUrl}`;
  let client = publicClients.get(key);
  if (!client) {
    client = createPublicClient({
      chain: chainOf(status),
      transport: http(status.rpcUrl),
      // A local chain mines each transaction at once: poll its receipt often.
      pollingInterval: status.local ? 200 : 2_000,
    });
    publicClients.set(key, client);
  }
  return client;
}

/** The chain's clock: the latest block's timestamp (Unix seconds). */
export async function chainNow(status: NodeStatus): Promise<number> {
  const block = await publicClientFor(status).getBlock({ blockTag: 'latest' });
  return Number(block.timestamp);
}

function noSigner(): ApiError {
  return new ApiError({
    status: 0,
    code: 'NO_SIGNER',
    message: 'This browser does not know which wallet signed you in.',
    hint: 'Sign out, then sign in again to choose a wallet.',
  });
}

function mismatch(actual: string, address: Address): ApiError {
  return new ApiError({
    status: 0,
    code: 'SIGNER_MISMATCH',
    message: `The wallet account ${actual} is not the signed-in account ${address}.`,
    hint: 'Sign out, then sign in again with the account you want to act as.',
  });
}

/** The signed-in wallet, ready to send transactions on the node's chain. */
export async function connectWallet(
  choice: SignerChoice | null,
  address: Address,
  status: NodeStatus,
): Promise<ChainWallet> {
  if (!choice) throw noSigner();
  const chain = chainOf(status);
  const publicClient = publicClientFor(status);
  let wallet: WalletClient;
  let account: Account | Address;
  if (choice.kind === 'dev') {
    if (!status.local)
      throw new ApiError({
        status: 0,
        code: 'DEV_ACCOUNTS_UNAVAILABLE',
        message: 'Dev accounts can only be used on the local dev chain.',
      });
    const dev = (await loadDevAccounts())[choice.index];
    if (!dev) throw noSigner();
    if (getAddress(dev.address) !== getAddress(address)) throw mismatch(dev.address, address);
    account = dev;
    wallet = createWalletClient({ account: dev, chain, transport: http(status.rpcUrl) });
  } else {
    const provider = injectedProvider();
    if (!provider)
      throw new ApiError({
        status: 0,
        code: 'NO_INJECTED_WALLET',
        message: 'No browser wallet was found.',
        hint: 'Install or unlock a wallet extension, then try again.',
      });
    const accounts = (await provider.request({ method: 'eth_accounts' })) as string[] | undefined;
    if (!accounts?.some((a) => getAddress(a) === getAddress(address)))
      throw mismatch(accounts?.[0] ?? 'none', address);
    const chainId = Number(await provider.request({ method: 'eth_chainId' }));
    if (chainId !== status.chainId) {
      try {
        await provider.request({
          method: 'wallet_switchEthereumChain',
          params: [{ chainId: `0x${status.chainId.toString(16)}` }],
        });
      } catch {
        throw new ApiError({
          status: 0,
          code: 'WRONG_CHAIN',
          message: `The wallet is on chain ${chainId}; this node's chain is ${status.chainId}.`,
          hint: `Switch the wallet to chain ${status.chainId} (RPC ${status.rpcUrl}), then try again.`,
        });
      }
    }
    account = getAddress(address);
    wallet = createWalletClient({ account, chain, transport: custom(provider) });
  }
  return {
    address: getAddress(address),
    publicClient,
    send: async (call) => {
      try {
        const { request } = await publicClient.simulateContract({
          ...call,
          account,
        } as never);
        const hash = await wallet.writeContract(request as never);
        const receipt = await publicClient.waitForTransactionReceipt({ hash });
        if (receipt.status !== 'success')
          throw new ApiError({
            status: 0,
            code: 'TX_REVERTED',
            message: `${call.functionName} was mined but reverted (${hash}).`,
          });
        return hash;
      } catch (cause) {
        throw chainError(call.functionName, cause);
      }
    },
  };
}

/** What a few custom errors mean, for the page's error banner. */
const HINTS: Record<string, string> = {
  ERC20InsufficientBalance:
    'The wallet holds too little OPEN: the dashboard’s faucet gives test OPEN on the local chain.',
  BelowMinimumStake: 'The stake (or what an unstake would leave) is below the minimum.',
  InsufficientStake: 'That is more than is staked.',
  StillUnbonding: 'The unbonding period has not passed yet (by the chain’s clock).',
  NameTaken: 'Another agent has this name: choose another.',
  NotAgentOwner: 'Only the agent’s owner can take stake out.',
  GovernorInsufficientProposerVotes:
    'Proposing needs the proposal threshold in votes (deposit OPEN for gOPEN, or sync contribution votes) held before the current block.',
  GovernorAlreadyCastVote: 'This account has voted on this proposal already.',
  GovernorUnexpectedProposalState:
    'The proposal is not in a state that allows this: the vote opens after the voting delay, a passed proposal is queued after the vote ends, and executed after the Timelock delay.',
  TimelockUnexpectedOperationState: 'The Timelock delay has not passed yet (by the chain’s clock).',
  InvalidDeadline: 'The deadline must be after the chain’s current time.',
  DeadlinePassed:
    'The proposal’s deadline has passed (by the chain’s clock): it takes no more funding.',
  NotOpen: 'The proposal is not open any more (a submission stands, or it was paid or cancelled).',
  ChallengeWindowClosed: 'The challenge window has closed (by the chain’s clock).',
  ChallengeWindowOpen: 'The challenge window is still open (by the chain’s clock): claim after it.',
  NotCreator: 'Only the proposal’s creator can cancel it.',
  NotRefundable:
    'Funding comes back only from a cancelled proposal, or one whose deadline passed with no submission standing.',
  NothingToRefund: 'This wallet has no funding in this proposal.',
};

/** A failed contract call as an ApiError: a revert by its custom error's name and arguments. */
export function chainError(functionName: string, cause: unknown): ApiError {
  if (cause instanceof ApiError) return cause;
  if (cause instanceof BaseError) {
    if (cause.walk((e) => e instanceof UserRejectedRequestError))
      return new ApiError({
        status: 0,
        code: 'WALLET_REJECTED',
        message: 'The transaction was rejected in the wallet.',
      });
    const reverted = cause.walk((e) => e instanceof ContractFunctionRevertedError);
    if (reverted instanceof ContractFunctionRevertedError) {
      const name = reverted.data?.errorName ?? reverted.reason;
      const args = reverted.data?.args ? `(${reverted.data.args.map(String).join(', ')})` : '';
      if (name)
        return new ApiError({
          status: 0,
          code: 'CONTRACT_REVERTED',
          message: `${functionName} was refused on-chain: ${name}${args}.`,
          hint: reverted.data?.errorName ? HINTS[reverted.data.errorName] : undefined,
          details: { errorName: name },
        });
    }
    return new ApiError({
      status: 0,
      code: 'CHAIN_ERROR',
      message: `${functionName} failed: ${cause.shortMessage}`,
    });
  }
  const e = cause as { code?: unknown; message?: unknown } | undefined;
  if (e?.code === 4001)
    return new ApiError({
      status: 0,
      code: 'WALLET_REJECTED',
      message: 'The transaction was rejected in the wallet.',
    });
  return new ApiError({
    status: 0,
    code: 'CHAIN_ERROR',
    message: `${functionName} failed: ${typeof e?.message === 'string' ? e.message.split('\n')[0] : String(cause)}`,
  });
}

/** Approves `spender` to take `amount` OPEN from the wallet (skipped when allowed already). */
export async function approveOpen(
  wallet: ChainWallet,
  token: Address,
  spender: Address,
  amount: bigint,
): Promise<void> {
  const allowed = await wallet.publicClient.readContract({
    address: token,
    abi: OpenTokenAbi,
    functionName: 'allowance',
    args: [wallet.address, spender],
  });
  if (allowed >= amount) return;
  await wallet.send({
    address: token,
    abi: OpenTokenAbi,
    functionName: 'approve',
    args: [spender, amount],
  });
}

/**
 * Opens the signed-in wallet on the node's chain when called (a function, so a page asks for it
 * only when the user acts).
 */
export function useChainWallet(): () => Promise<ChainWallet> {
  const { session, signer } = useAuth();
  const { status } = useNode();
  return useCallback(async () => {
    if (!session)
      throw new ApiError({
        status: 401,
        code: 'UNAUTHENTICATED',
        message: 'Sign in with your wallet first.',
      });
    if (!status)
      throw new ApiError({
        status: 0,
        code: 'STATUS_UNAVAILABLE',
        message: 'The node status is not loaded yet.',
        hint: 'Wait a moment, then try again.',
      });
    return connectWallet(signer, session.address, status);
  }, [session, signer, status]);
}

/** An address from the node's status or an API answer, or a clear error when it lacks one. */
export function requireContract(address: string | undefined | null, name: string): Address {
  if (!address)
    throw new ApiError({
      status: 0,
      code: 'GOVERNANCE_UNAVAILABLE',
      message: `This node names no ${name} contract.`,
      hint: 'Restart the node with its deployer key: `up` adds the missing contracts.',
    });
  return getAddress(address);
}
