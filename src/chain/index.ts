export {
  DEV_ACCOUNT_COUNT,
  DEV_MNEMONIC,
  decryptKeystore,
  devAccount,
  resolveSigner,
} from './accounts.ts';
export type { SignerOptions } from './accounts.ts';
export { connectChain } from './clients.ts';
export type { ChainConnection, ChainPublicClient, ChainWalletClient } from './clients.ts';
export {
  FAUCET_DRIP,
  FAUCET_FUNDING,
  OPEN_TOTAL_SUPPLY,
  PLATFORM_FEE_BPS,
  contributionBondParameters,
  deployContracts,
  deploymentFile,
  escrowParameters,
  settlementParameters,
  ensureDeployment,
  isDeploymentLive,
  readDeployment,
  writeDeployment,
} from './deploy.ts';
export type { Deployment } from './deploy.ts';
export {
  GOVERNANCE_CONTRACTS,
  INITIAL_DEFAULT_SPLIT,
  governanceParameters,
} from './deploy-governance.ts';
export type { GovernanceContract } from './deploy-governance.ts';
export { LOCAL_CHAIN_ID, anvilBinaryPath, startLocalChain } from './local.ts';
export type { LocalChain } from './local.ts';
export {
  AgentStakingAbi,
  AttributionSettlementAbi,
  ContributionVotesAbi,
  ModelProposalsAbi,
  ModelStakingAbi,
  OpenLedgerGovernorAbi,
  OpenLedgerTimelockAbi,
  ProtocolParametersAbi,
  StakedOpenAbi,
  ContributionBondsAbi,
  DatanetRegistryAbi,
  DevFaucetAbi,
  InferenceEscrowAbi,
  ModelRegistryAbi,
  OpenTokenAbi,
} from './generated/contracts.ts';
export { Relayer } from './relayer.ts';
