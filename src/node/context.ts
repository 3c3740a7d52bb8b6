import type { AuthService } from '../auth/index.ts';
import type { BlobStore } from '../blobs/index.ts';
import type { ChainConnection, Deployment, Relayer } from '../chain/index.ts';
import type { NodeConfig } from '../config.ts';
import type { DatanetService } from '../datanets/index.ts';
import type { Database } from '../db/index.ts';
import type { ModelCatalog } from '../factory/index.ts';
import type { JobRunner } from '../jobs/index.ts';
import type {
  AgentService,
  GovernanceService,
  MarketService,
  ProposalService,
} from '../market/index.ts';

import type { ModelService } from '../models/index.ts';
import type { AttributionLedger } from '../attribution/ledger.ts';
import type { EscrowService } from '../payments/escrow.ts';
import type { RagService } from '../rag/index.ts';
import type { ServingEngine } from '../serving/index.ts';

/** The running node's services, handed to the HTTP layer. Each is owned by its own room. */
export interface NodeContext {
  config: NodeConfig;
  version: string;
  startedAt: Date;
  database: Database;
  blobs: BlobStore;
  chain: ChainConnection;
  deployment: Deployment;
  /** True on the local development chain (dev accounts, faucet). */
  local: boolean;
  /**
   * The node's own signer, relaying wallet-signed actions and paying their gas: dev account 0 on
   * the local chain, OPENLEDGER_PRIVATE_KEY elsewhere; absent when neither is available.
   */
  relayer: Relayer | undefined;
  auth: AuthService;
  /** The base models this node offers for training and serving. */
  models: ModelCatalog;
  /** Background work (training, index builds): queued, streamed, cancellable, resumable. */
  jobs: JobRunner;
  /** Absent only when the recorded deployment predates the DatanetRegistry. */
  datanets: DatanetService | undefined;
  /** Published models (ModelRegistry); absent only when the recorded deployment predates it. */
  publishedModels: ModelService | undefined;
  /** OpenLoRA: base models and adapters served over the OpenAI-compatible API (/v1). */
  serving: ServingEngine;
  /** Paid inference: the OPEN escrow (absent without an InferenceEscrow, when every call is free). */
  escrow: EscrowService | undefined;
  /**
   * Proof of Attribution: receipts of paid calls, epoch postings and claims (absent without an
   * escrow and an AttributionSettlement).
   */
  ledger: AttributionLedger | undefined;
  /** RAG over datanets: indexes, retrieval, cited answers (absent without datanets). */
  rag: RagService | undefined;
  /** The model market: browse and search published models, their lineage and on-chain record. */
  market: MarketService | undefined;
  /** Agents served as `agent:<name>` (absent without AgentStaking). */
  agents: AgentService | undefined;
  /** Staking, governance and protocol parameters (absent without the governance suite). */
  governance: GovernanceService | undefined;
  /** Model proposals and the node's evaluator (absent without ModelProposals). */
  proposals: ProposalService | undefined;
}
