/**
 * The model market (issue #8): published models to browse and search with their usage, revenue,
 * evaluation and attribution statistics, and each model's lineage and on-chain record.
 */
export {
  MARKET_DEFAULT_LIMIT,
  MARKET_MAX_LIMIT,
  MARKET_SORTS,
  MarketService,
  type ChannelStat,
  type LineageContributor,
  type LineageDatanet,
  type LineageManifest,
  type MarketEvaluation,
  type MarketList,
  type MarketModel,
  type MarketModelPage,
  type MarketQuery,
  type MarketSort,
  type OnChainRecord,
} from './market.ts';
export { AGENT_NAME, MAX_AGENT_STEPS, agentSpecHash, parseAgentSpec } from './agent-spec.ts';
export type { AgentSpec, AgentStep } from './agent-spec.ts';
export { AGENT_PREFIX, AgentService } from './agents.ts';
export type { AgentPlan, AgentStepResult, AgentView } from './agents.ts';
export {
  GovernanceService,
  PROPOSAL_STATES,
  describeCall,
  encodeAction,
  getProposal,
  governanceContracts,
  governorSettings,
  listProposals,
  modelStakes,
  parseSplit,
  readParameters,
  requireGovernance,
  votingPower,
} from './governance.ts';
export type {
  EncodedCall,
  GovernanceAction,
  GovernanceContracts,
  GovernorSettingsView,
  ProposalState,
  ProposalView,
  ProtocolParameterValues,
  Split,
  VotingPowerView,
} from './governance.ts';
export {
  PROPOSAL_EVAL_JOB_KIND,
  PROPOSAL_METRICS,
  PROPOSAL_STATUSES,
  ProposalService,
  fromScore,
  parseProposalSpec,
  proposalSpecHash,
  readProposalSettings,
  readProposalState,
  toScore,
} from './proposals.ts';
export type {
  ModelProposalStatus,
  ModelProposalView,
  ProposalChainState,
  ProposalEvaluationResult,
  ProposalMetric,
  ProposalReport,
  ProposalReportView,
  ProposalSettings,
  ProposalSpec,
} from './proposals.ts';
