import path from 'node:path';
import { formatUnits } from 'viem';
import {
  LOCAL_CHAIN_ID,
  OPEN_TOTAL_SUPPLY,
  connectChain,
  deployContracts,
  deploymentFile,
  isDeploymentLive,
  readDeployment,
  resolveSigner,
  writeDeployment,
} from '../../chain/index.ts';
import { DEFAULT_DATA_DIR } from '../../config.ts';
import { OpenLedgerError } from '../../errors.ts';
import type { Output } from '../output.ts';

export interface DeployFlags {
  rpcUrl?: string;
  privateKey?: string;
  keystore?: string;
  account?: string;
  treasury?: string;
  dataDir?: string;
  force?: boolean;
}

/** `openledger deploy`: deploys the contract suite to any chain and records the addresses. */
export async function deploy(flags: DeployFlags, out: Output): Promise<void> {
  const rpcUrl = flags.rpcUrl ?? process.env.OPENLEDGER_RPC_URL;
  if (!rpcUrl) {
    throw new OpenLedgerError('BAD_REQUEST', 'deploy needs the chain to deploy to.', {
      hint: 'Pass --rpc-url URL (or set OPENLEDGER_RPC_URL). `openledger up` deploys to its local chain by itself.',
    });
  }
  const dataDir = path.resolve(
    flags.dataDir ?? process.env.OPENLEDGER_DATA_DIR ?? DEFAULT_DATA_DIR,
  );
  out.progress(`connecting to ${rpcUrl}`);
  const conn = await connectChain(rpcUrl);
  const signer = await resolveSigner({
    privateKey: flags.privateKey ?? process.env.OPENLEDGER_PRIVATE_KEY,
    keystore: flags.keystore,
    keystorePassword: process.env.OPENLEDGER_KEYSTORE_PASSWORD,
    account: flags.account === undefined ? undefined : Number(flags.account),
    local: conn.chain.id === LOCAL_CHAIN_ID,
  });
  if (flags.treasury !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(flags.treasury)) {
    throw new OpenLedgerError('BAD_REQUEST', `--treasury is not an address: "${flags.treasury}".`);
  }
  const recorded = await readDeployment(dataDir, conn.chain.id);
  if (recorded && !flags.force && (await isDeploymentLive(conn, recorded))) {
    throw new OpenLedgerError(
      'CONFLICT',
      `The contracts are already deployed on chain ${conn.chain.id} (recorded in ${deploymentFile(dataDir, conn.chain.id)}).`,
      {
        hint: 'Pass --force to deploy a fresh suite anyway.',
        details: { contracts: recorded.contracts },
      },
    );
  }
  const deployment = await deployContracts(conn, {
    signer,
    ...(flags.treasury ? { treasury: flags.treasury as `0x${string}` } : {}),
    onStep: (step) => out.progress(step),
  });
  await writeDeployment(dataDir, deployment);
  out.progressDone('deployed');
  out.result({ ...deployment, file: deploymentFile(dataDir, deployment.chainId) }, (d) =>
    [
      `deployed to chain ${d.chainId} by ${d.deployer}`,
      ...Object.entries(d.contracts).map(([name, address]) => `  ${name.padEnd(10)} ${address}`),
      `  treasury   ${d.treasury} holds ${formatUnits(OPEN_TOTAL_SUPPLY, 18)} OPEN`,
      `recorded in ${d.file}`,
    ].join('\n'),
  );
}
