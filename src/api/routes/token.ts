import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { getAddress, parseEventLogs, type Address as EvmAddress } from 'viem';
import { DevFaucetAbi, OpenTokenAbi } from '../../chain/index.ts';
import { OpenLedgerError } from '../../errors.ts';
import type { NodeContext } from '../../node/context.ts';
import { requirePrincipal } from '../auth.ts';
import { Address, TxHash, Wei, errors } from '../schemas.ts';

export function tokenRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const token = ctx.deployment.contracts.OpenToken;
  app.get(
    '/api/token/balances/:address',
    {
      schema: {
        tags: ['token'],
        summary: 'OPEN and native balances of an address',
        params: Type.Object({ address: Address }),
        response: {
          200: Type.Object({
            address: Address,
            open: Wei,
            eth: Wei,
            symbol: Type.Literal('OPEN'),
            decimals: Type.Literal(18),
          }),
          ...errors(400),
        },
      },
    },
    async (request) => {
      const address = getAddress((request.params as { address: string }).address);
      const [open, eth] = await Promise.all([
        ctx.chain.publicClient.readContract({
          address: token,
          abi: OpenTokenAbi,
          functionName: 'balanceOf',
          args: [address],
        }),
        ctx.chain.publicClient.getBalance({ address }),
      ]);
      return {
        address,
        open: open.toString(),
        eth: eth.toString(),
        symbol: 'OPEN' as const,
        decimals: 18 as const,
      };
    },
  );

  app.post(
    '/api/faucet',
    {
      schema: {
        tags: ['token'],
        summary: 'Local chain only: send test OPEN and gas money to the caller (or to `address`)',
        body: Type.Optional(
          Type.Object({ address: Type.Optional(Address) }, { additionalProperties: false }),
        ),
        response: {
          200: Type.Object({ address: Address, open: Wei, eth: Wei, txHash: TxHash }),
          ...errors(400, 401, 404, 429),
        },
      },
    },
    async (request) => {
      const caller = requirePrincipal(request);
      const faucet = ctx.deployment.contracts.DevFaucet;
      if (!faucet || !ctx.local || !ctx.relayer) {
        throw new OpenLedgerError(
          'FAUCET_UNAVAILABLE',
          'This node runs on a real chain: it has no faucet.',
          {
            hint: 'Acquire OPEN on this chain, or run a local node (`openledger up` without --rpc-url) for testing.',
          },
        );
      }
      const body = (request.body ?? {}) as { address?: string };
      const to: EvmAddress = getAddress(body.address ?? caller.address);
      const client = ctx.chain.publicClient;
      const nextAt = await client.readContract({
        address: faucet,
        abi: DevFaucetAbi,
        functionName: 'nextDripAt',
        args: [to],
      });
      if (nextAt > 0n) {
        const block = await client.getBlock();
        const retryAfterSeconds = Math.max(1, Number(nextAt - block.timestamp));
        throw new OpenLedgerError(
          'FAUCET_COOLDOWN',
          `${to} received test OPEN recently; try again in ${retryAfterSeconds} s.`,
          {
            details: { retryAfterSeconds },
          },
        );
      }
      const receipt = await ctx.relayer.write({
        address: faucet,
        abi: DevFaucetAbi,
        functionName: 'drip',
        args: [to],
      });
      const [dripped] = parseEventLogs({
        abi: DevFaucetAbi,
        logs: receipt.logs,
        eventName: 'Dripped',
      });
      return {
        address: to,
        open: (dripped?.args.tokenAmount ?? 0n).toString(),
        eth: (dripped?.args.ethAmount ?? 0n).toString(),
        txHash: receipt.transactionHash,
      };
    },
  );
}
