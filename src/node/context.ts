import type { LocalAccount } from 'viem';
import type { AuthService } from '../auth/index.ts';
import type { BlobStore } from '../blobs/index.ts';
import type { ChainConnection, Deployment } from '../chain/index.ts';
import type { NodeConfig } from '../config.ts';
import type { Database } from '../db/index.ts';

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
  /** The node's own signer on the local chain (dev account 0, the deployer); absent elsewhere. */
  operator: LocalAccount | undefined;
  auth: AuthService;
}
