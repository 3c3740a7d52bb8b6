// Governance and agents over the node's API (src/api/routes/governance.ts, docs/market.md): reads
// of the on-chain state, the Timelock call a named change needs, spec checks and registration.
// Wallet actions (stake, launch, deposit, propose, vote) are sent by the wallet itself
// (lib/chain.ts).
import { ApiError, request, type Address, type Hex } from '../../lib/api';
import type { Split } from '../market/api';

export interface GovernanceContracts {
  OpenToken: Address;
  StakedOpen: Address;
  ContributionVotes: Address;
  OpenLedgerGovernor: Address;
  OpenLedgerTimelock: Address;
  ProtocolParameters: Address;
  ModelStaking: Address;
  AgentStaking: Address;
  ContributionBonds?: Address;
}

export interface GovernorSettings {
  votingDelaySeconds: number;
  votingPeriodSeconds: number;
  proposalThreshold: string;
  quorumPercent: number;
  timelockDelaySeconds: number;
  supply: { staked: string; contribution: string };
}

export interface ProtocolParameters {
  defaultSplit: Split;
  /** The escrow's fee epochs; a pending change applies from `next.fromEpoch`. */
  epochs: {
    lengthSeconds: number;
    next: { fromEpoch: number; start: number; lengthSeconds: number } | null;
  } | null;
  agents: {
    minStake: string;
    unbondingSeconds: number;
    challengeBond: string;
    challengeSlashBps: number;
    reporterShareBps: number;
  };
  modelStaking: { minStake: string; unbondingSeconds: number; maxStakers: number };
  contributionPenalties: {
    penaltyPerSlash: string;
    penaltyThreshold: string;
    reporterShareBps: number;
    unbondDelaySeconds: number;
  } | null;
}

export interface GovernanceOverview {
  contracts: GovernanceContracts;
  settings: GovernorSettings;
  parameters: ProtocolParameters;
}

export interface VotingPower {
  address: Address;
  staked: { balance: string; votes: string; delegate: Address };
  contribution: { balance: string; votes: string; delegate: Address; pending: string };
  votes: string;
  open: string;
}

export const PROPOSAL_STATES = [
  'pending',
  'active',
  'canceled',
  'defeated',
  'succeeded',
  'queued',
  'expired',
  'executed',
] as const;
export type ProposalState = (typeof PROPOSAL_STATES)[number];

export interface ProposalCall {
  target: Address;
  value: string;
  calldata: Hex;
  summary: string;
}

export interface Proposal {
  id: string;
  proposer: Address;
  description: string;
  descriptionHash: Hex;
  calls: ProposalCall[];
  state: ProposalState;
  voteStart: number;
  voteEnd: number;
  eta: number | null;
  votes: { against: string; for: string; abstain: string };
  quorum: string;
  createdTx: Hex;
  createdBlock: string;
}

/** A change a proposal can make, as POST /api/governance/encode takes it. */
export type GovernanceAction =
  | { kind: 'default-split'; split: string }
  | { kind: 'min-agent-stake'; wei: string }
  | { kind: 'penalty-threshold'; threshold: number }
  | { kind: 'epoch-length'; seconds: number }
  | { kind: 'slash-agent'; agentId: number; wei: string; reason: string };

export interface EncodedCall {
  target: Address;
  value: string;
  calldata: Hex;
}

export interface SyncResult {
  address: Address;
  minted: string;
  txHash: Hex | null;
  votes: VotingPower;
}

// ----- agents ---------------------------------------------------------------------------------

export interface AgentStep {
  model: string;
  adapters?: { id: string; weight: number }[];
  rag?: { datanets: number[]; k?: number; strict?: boolean };
  instruction?: string;
  max_tokens?: number;
  temperature?: number;
}

export interface AgentSpec {
  name: string;
  description?: string;
  system?: string;
  steps: AgentStep[];
}

export interface Agent {
  id: number;
  name: string;
  owner: Address;
  description: string | null;
  spec: AgentSpec;
  specHash: string;
  specCurrent: boolean;
  stake: string;
  unbonding: string;
  releaseAt: number | null;
  openChallenges: number;
  retired: boolean;
  active: boolean;
  minStake: string;
  launchedAt: number;
  model: string;
}

export interface AgentParameters {
  agentStaking: Address;
  minStake: string;
  unbondingSeconds: number;
  challengeBond: string;
}

export const governanceApi = {
  overview: (signal?: AbortSignal) => request<GovernanceOverview>('/api/governance', { signal }),
  proposals: (signal?: AbortSignal) =>
    request<{ proposals: Proposal[] }>('/api/governance/proposals', { signal }),
  account: (address: string, signal?: AbortSignal) =>
    request<VotingPower>(`/api/governance/accounts/${encodeURIComponent(address)}`, { signal }),
  encode: (action: GovernanceAction) =>
    request<EncodedCall>('/api/governance/encode', { method: 'POST', body: action }),
  sync: () => request<SyncResult>('/api/governance/sync', { method: 'POST', body: {} }),
};

export const agentsApi = {
  list: (signal?: AbortSignal) =>
    request<{ agents: Agent[]; parameters: AgentParameters }>('/api/agents', { signal }),
  get: (ref: string, signal?: AbortSignal) =>
    request<Agent>(`/api/agents/${encodeURIComponent(ref)}`, { signal }),
  validate: (spec: AgentSpec) =>
    request<{ spec: AgentSpec; specHash: string; parameters: AgentParameters }>(
      '/api/agents/validate',
      { method: 'POST', body: { spec } },
    ),
  register: (id: number, spec: AgentSpec) =>
    request<Agent>('/api/agents', { method: 'POST', body: { id, spec } }),
};

/** The OpenAI API's model list (GET /v1/models: signed in, the session cookie authenticates). */
export interface V1Model {
  id: string;
  openledger: { kind: 'base' | 'adapter' | 'published' | 'agent'; adapter: string | null };
}

export async function v1Models(signal?: AbortSignal): Promise<V1Model[]> {
  const res = await fetch('/v1/models', { credentials: 'same-origin', signal });
  if (!res.ok) {
    let message = `The node answered ${res.status}.`;
    try {
      const body = (await res.json()) as { error?: { message?: string } };
      if (body.error?.message) message = body.error.message;
    } catch {
      // not JSON
    }
    throw new ApiError({ status: res.status, code: `HTTP_${res.status}`, message });
  }
  return ((await res.json()) as { data: V1Model[] }).data;
}
