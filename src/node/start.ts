import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Address, LocalAccount } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { buildServer } from '../api/server.ts';
import { registerAttributionJobs } from '../attribution/index.ts';
import { AuthService } from '../auth/index.ts';
import { BlobStore } from '../blobs/index.ts';
import {
  LOCAL_CHAIN_ID,
  Relayer,
  connectChain,
  devAccount,
  ensureDeployment,
  startLocalChain,
  type ChainConnection,
  type LocalChain,
} from '../chain/index.ts';
import type { NodeConfig } from '../config.ts';
import { DatanetService } from '../datanets/index.ts';
import { openDatabase, type Database } from '../db/index.ts';
import { ModelCatalog, registerFactoryJobs } from '../factory/index.ts';
import { ensureBaseModel } from '../factory/download.ts';
import { JobRunner } from '../jobs/index.ts';
import {
  AgentService,
  GovernanceService,
  MarketService,
  ProposalService,
  governanceContracts,
} from '../market/index.ts';

import { ModelService } from '../models/index.ts';
import { ledgerFor } from '../attribution/job.ts';
import { EscrowService } from '../payments/escrow.ts';
import { openEmbedder } from '../rag/embedder/index.ts';
import { chooseVectorStore, RagService } from '../rag/index.ts';
import { ServingEngine } from '../serving/index.ts';
import { VERSION } from '../version.ts';
import type { NodeContext } from './context.ts';
import { lockDataDir } from './lock.ts';

export interface RunningNode {
  url: string;
  rpcUrl: string;
  chainId: number;
  contracts: Record<string, Address>;
  /** Whether this start deployed the contracts (first start on a chain). */
  deployedNow: boolean;
  database: Database['kind'];
  context: NodeContext;
  /** Stops accepting requests, lets in-flight ones finish, then closes the database and the chain. */
  close(): Promise<void>;
}

export type Progress = (event: { step: string; done?: boolean }) => void;

/**
 * Starts the whole node in this process: the chain (local anvil, or an external RPC), the
 * contract deployment (once per chain, recorded in the data dir), the database, the blob store
 * and the HTTP server. Whatever started is stopped again if a later step fails.
 */
export async function startNode(
  config: NodeConfig,
  onProgress: Progress = () => undefined,
): Promise<RunningNode> {
  await mkdir(config.dataDir, { recursive: true });
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const run of cleanups.reverse()) await run().catch(() => undefined);
    cleanups.length = 0;
  };
  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    onProgress({ step: name });
    const result = await run();
    onProgress({ step: name, done: true });
    return result;
  };

  try {
    cleanups.push(await lockDataDir(config.dataDir));

    let localChain: LocalChain | undefined;
    const chain: ChainConnection = await step(
      config.rpcUrl ? `connecting to ${config.rpcUrl}` : 'starting the local chain',
      async () => {
        if (config.rpcUrl) return connectChain(config.rpcUrl);
        localChain = await startLocalChain({ dataDir: config.dataDir, port: config.chainPort });
        cleanups.push(localChain.stop);
        return connectChain(localChain.rpcUrl);
      },
    );
    const local = localChain !== undefined && chain.chain.id === LOCAL_CHAIN_ID;
    // The node's own signer: it deploys, relays wallet-signed actions and pays their gas.
    const signer: LocalAccount | undefined = local
      ? devAccount(0)
      : config.privateKey
        ? privateKeyToAccount(config.privateKey)
        : undefined;
    const { deployment, deployedNow } = await step('checking the contract deployment', () =>
      ensureDeployment(chain, {
        dataDir: config.dataDir,
        signer,
        onStep: (name) => onProgress({ step: name }),
      }),
    );

    const database = await step(
      config.databaseUrl ? 'connecting to PostgreSQL' : 'opening the embedded database',
      () =>
        openDatabase(
          config.databaseUrl
            ? { url: config.databaseUrl }
            : { dir: path.join(config.dataDir, 'db') },
        ),
    );
    cleanups.push(() => database.close());

    const blobs = new BlobStore(path.join(config.dataDir, 'blobs'));
    const relayer = signer ? new Relayer(chain, signer) : undefined;
    const registry = deployment.contracts.DatanetRegistry;
    const jobs = new JobRunner({ db: database.db, blobs });
    const escrow = deployment.contracts.InferenceEscrow
      ? new EscrowService({
          db: database.db,
          chain,
          escrow: deployment.contracts.InferenceEscrow,
          registry: deployment.contracts.ModelRegistry,
          relayer,
        })
      : undefined;
    const catalog = new ModelCatalog(config.modelsDirs);
    // `--base-model` may name a GGUF path, a Hugging Face folder or repo id: add those first
    const serving = { ...config.serving };
    if (serving.baseModels.length > 0) {
      serving.baseModels = await step('preparing base model(s)', () =>
        Promise.all(
          config.serving.baseModels.map((ref) =>
            ensureBaseModel(ref, catalog, config.modelsDirs[0]!),
          ),
        ),
      );
    }
    const governed = governanceContracts(deployment.contracts);
    const governance = governed
      ? new GovernanceService(chain.publicClient, governed, BigInt(deployment.blockNumber))
      : undefined;
    const context: NodeContext = {
      config,
      version: VERSION,
      startedAt: new Date(),
      database,
      blobs,
      chain,
      deployment,
      local,
      relayer,
      auth: new AuthService(database.db, {
        publicClient: chain.publicClient,
        chainId: chain.chain.id,
      }),
      jobs,
      models: catalog,
      datanets: registry
        ? new DatanetService({ db: database.db, blobs, chain, registry, relayer })
        : undefined,
      publishedModels: deployment.contracts.ModelRegistry
        ? new ModelService({
            db: database.db,
            blobs,
            chain,
            registry: deployment.contracts.ModelRegistry,
            relayer,
            jobs,
            defaultSplit: governance && (() => governance.defaultSplit()),
          })
        : undefined,
      market: deployment.contracts.ModelRegistry
        ? new MarketService({ db: database.db, blobs, chain, deployment })
        : undefined,
      serving: new ServingEngine({
        options: serving,
        catalog,
        blobs,
        db: database.db,
        chainId: chain.chain.id,
        // Operators: the node's own signer and the wallets named by --operator.
        operators: [...config.serving.operators, ...(signer ? [signer.address.toLowerCase()] : [])],
        payments: escrow,
      }),
      escrow,
      ledger: undefined,
      rag: undefined,
      agents: undefined,
      governance: undefined,
      proposals: undefined,
    };
    context.ledger = ledgerFor(context);
    if (context.datanets) {
      const vectors = await chooseVectorStore(database, config.dataDir);
      const engine = context.serving;
      context.rag = new RagService({
        database,
        datanets: context.datanets,
        vectors,
        embedder: async () =>
          openEmbedder({
            ...(config.embeddingModel ? { file: config.embeddingModel } : {}),
            threads: config.serving.threads ?? Math.max(1, availableParallelism()),
            llama: await engine.getLlama(),
          }),
      });
    }

    if (governed && governance) {
      context.governance = governance;
      context.agents = new AgentService({
        db: database.db,
        chain,
        agentStaking: governed.AgentStaking,
        serving: context.serving,
        rag: context.rag,
      });
    }
    if (deployment.contracts.ModelProposals && deployment.contracts.ModelRegistry) {
      context.proposals = new ProposalService({
        db: database.db,
        blobs,
        chain,
        proposals: deployment.contracts.ModelProposals,
        modelRegistry: deployment.contracts.ModelRegistry,
        datanets: context.datanets,
        models: catalog,
        relayer,
        jobs,
      });
    }

    if (context.datanets) {
      const datanets = context.datanets;
      await step('reconciling datanets with the chain', () => datanets.reconcile());
    }

    if (context.publishedModels) {
      const published = context.publishedModels;
      await step('reconciling published models with the chain', () => published.reconcile());
    }

    cleanups.push(() => context.serving.close());
    // Before the engine closes (cleanups run in reverse): the embedder runs on its llama.cpp.
    if (context.rag) {
      const rag = context.rag;
      cleanups.push(() => rag.close());
    }
    if (escrow) {
      // Settles what was served, periodically; a last round runs at shutdown, after the HTTP
      // server has drained (cleanups run in reverse order).
      escrow.start(undefined, (error) =>
        onProgress({ step: `escrow settlement failed: ${(error as Error).message}` }),
      );
      cleanups.push(async () => {
        await escrow.stop();
        if (relayer) await escrow.settle().catch(() => undefined);
      });
    }
    if (context.ledger) {
      const ledger = context.ledger;
      // Attributes paid calls and posts closed epochs, periodically.
      ledger.start(undefined, (error) =>
        onProgress({ step: `attribution round failed: ${(error as Error).message}` }),
      );
      cleanups.push(() => ledger.stop());
    }
    if (serving.baseModels.length > 0) {
      await step(`loading base model(s) ${serving.baseModels.join(', ')}`, () =>
        context.serving.start(),
      );
    }

    registerFactoryJobs(jobs, context);
    registerAttributionJobs(jobs, context);
    const resumed = await step('starting the job runner', () => jobs.start());
    if (resumed.resumed > 0) onProgress({ step: `resumed ${resumed.resumed} interrupted job(s)` });
    cleanups.push(() => jobs.stop());

    const server: FastifyInstance = await step('starting the HTTP server', async () => {
      const app = await buildServer(context, {
        logLevel: config.logLevel,
        webDir: config.webDir,
        trustProxy: config.trustProxy,
      });
      cleanups.push(() => closeDraining(app));
      await app.listen({ host: config.host, port: config.port });
      return app;
    });

    const address = server.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    let closing: Promise<void> | undefined;
    return {
      url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
      rpcUrl: chain.rpcUrl,
      chainId: chain.chain.id,
      contracts: { ...deployment.contracts },
      deployedNow,
      database: database.kind,
      context,
      close: () => (closing ??= cleanup()),
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/**
 * How long in-flight requests get at shutdown before their connections are closed anyway (a
 * client that stopped reading an event stream would otherwise hold the node open for as long as
 * its socket lives).
 */
const SHUTDOWN_GRACE_MS = 10_000;

async function closeDraining(app: FastifyInstance): Promise<void> {
  const timer = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
  timer.unref();
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
  }
}
