import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { getAddress, parseSignature, type Hex } from 'viem';
import { InferenceEscrowAbi, OpenTokenAbi, escrowParameters } from '../../chain/index.ts';
import { OpenLedgerError } from '../../errors.ts';
import type { NodeContext } from '../../node/context.ts';
import type { EscrowService } from '../../payments/escrow.ts';
import { requirePrincipal } from '../auth.ts';
import { Address, TxHash, Wei, errors } from '../schemas.ts';

const Signature = Type.String({ pattern: '^0x[0-9a-fA-F]{130}$' });
const Deadline = Type.String({ pattern: '^[0-9]{1,20}$', description: 'Unix seconds.' });

/**
 * The caller's inference escrow: its balance and what the node holds against it, and relayed
 * deposits (ERC-2612 permit) and withdrawal requests (EIP-712), so a wallet can pay for
 * inference without sending a transaction itself.
 */
export function escrowRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const need = (): EscrowService => {
    if (!ctx.escrow) {
      throw new OpenLedgerError(
        'ESCROW_UNAVAILABLE',
        'This node has no inference escrow deployed.',
        {
          hint: 'Restart the node with its signer, so that it deploys the InferenceEscrow.',
        },
      );
    }
    return ctx.escrow;
  };
  const relayer = () => {
    if (!ctx.relayer) {
      throw new OpenLedgerError('RELAYER_UNAVAILABLE', 'This node has no signer to relay with.', {
        hint: 'Send the transaction from your own wallet (`openledger escrow … --private-key`).',
      });
    }
    return ctx.relayer;
  };

  app.get(
    '/api/escrow',
    {
      schema: {
        tags: ['escrow'],
        summary:
          "The caller's (or `address`'s) inference escrow: on-chain balance, pending withdrawal, this node's unsettled charges, what is available, and what signing a deposit or withdrawal needs",
        querystring: Type.Object({ address: Type.Optional(Address) }),
        response: {
          200: Type.Object({
            address: Address,
            balance: Wei,
            withdrawal: Type.Union([
              Type.Object({ amount: Wei, unlockAt: Type.Integer() }),
              Type.Null(),
            ]),
            unsettled: Wei,
            reserved: Wei,
            available: Wei,
            wallet: Wei,
            chainId: Type.Integer(),
            escrow: Address,
            token: Address,
            tokenNonce: Type.String(),
            escrowNonce: Type.String(),
            withdrawalDelaySeconds: Type.Integer(),
          }),
          ...errors(400, 401, 503),
        },
      },
    },
    async (request) => {
      const escrow = need();
      const query = request.query as { address?: string };
      const address = getAddress(query.address ?? requirePrincipal(request).address);
      const token = ctx.deployment.contracts.OpenToken;
      const client = ctx.chain.publicClient;
      const [account, wallet, tokenNonce, escrowNonce] = await Promise.all([
        escrow.account(address),
        client.readContract({
          address: token,
          abi: OpenTokenAbi,
          functionName: 'balanceOf',
          args: [address],
        }),
        client.readContract({
          address: token,
          abi: OpenTokenAbi,
          functionName: 'nonces',
          args: [address],
        }),
        client.readContract({
          address: escrow.address,
          abi: InferenceEscrowAbi,
          functionName: 'nonces',
          args: [address],
        }),
      ]);
      return {
        address,
        balance: account.balance.toString(),
        withdrawal: account.withdrawal
          ? { amount: account.withdrawal.amount.toString(), unlockAt: account.withdrawal.unlockAt }
          : null,
        unsettled: account.unsettled.toString(),
        reserved: account.reserved.toString(),
        available: account.available.toString(),
        wallet: wallet.toString(),
        chainId: ctx.chain.chain.id,
        escrow: escrow.address,
        token,
        tokenNonce: tokenNonce.toString(),
        escrowNonce: escrowNonce.toString(),
        withdrawalDelaySeconds: Number(escrowParameters(ctx.chain.chain.id).withdrawalDelaySeconds),
      };
    },
  );

  app.post(
    '/api/escrow/deposit',
    {
      schema: {
        tags: ['escrow'],
        summary:
          'Relay a deposit: `owner` signs an ERC-2612 Permit of `amount` OPEN to the escrow (spender), with its token nonce; the node submits depositWithPermit and pays the gas',
        body: Type.Object(
          { owner: Address, amount: Wei, deadline: Deadline, signature: Signature },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ txHash: TxHash }), ...errors(400, 503) },
      },
    },
    async (request) => {
      const escrow = need();
      const body = request.body as {
        owner: string;
        amount: string;
        deadline: string;
        signature: Hex;
      };
      const { v, r, s } = parseSignature(body.signature);
      const receipt = await relayer().write({
        address: escrow.address,
        abi: InferenceEscrowAbi,
        functionName: 'depositWithPermit',
        args: [getAddress(body.owner), BigInt(body.amount), BigInt(body.deadline), Number(v), r, s],
      });
      return { txHash: receipt.transactionHash };
    },
  );

  app.post(
    '/api/escrow/withdraw',
    {
      schema: {
        tags: ['escrow'],
        summary:
          "Relay a withdrawal request (`owner` signs RequestWithdrawal with its escrow nonce; 0 cancels), or with `complete: true` pay out `owner`'s unlocked withdrawal",
        body: Type.Object(
          {
            owner: Address,
            amount: Type.Optional(Wei),
            deadline: Type.Optional(Deadline),
            signature: Type.Optional(Signature),
            complete: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ txHash: TxHash }), ...errors(400, 503) },
      },
    },
    async (request) => {
      const escrow = need();
      const body = request.body as {
        owner: string;
        amount?: string;
        deadline?: string;
        signature?: Hex;
        complete?: boolean;
      };
      const owner = getAddress(body.owner);
      if (body.complete) {
        const receipt = await relayer().write({
          address: escrow.address,
          abi: InferenceEscrowAbi,
          functionName: 'withdraw',
          args: [owner],
        });
        return { txHash: receipt.transactionHash };
      }
      if (body.amount === undefined || body.deadline === undefined || !body.signature) {
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          'A withdrawal request needs amount, deadline and signature (or complete: true).',
          { details: { field: 'signature' } },
        );
      }
      const receipt = await relayer().write({
        address: escrow.address,
        abi: InferenceEscrowAbi,
        functionName: 'requestWithdrawalWithSig',
        args: [owner, BigInt(body.amount), BigInt(body.deadline), body.signature],
      });
      return { txHash: receipt.transactionHash };
    },
  );

  app.post(
    '/api/escrow/settle',
    {
      schema: {
        tags: ['escrow'],
        summary: 'Operators: post every unsettled fee on-chain now (also runs every minute)',
        response: {
          200: Type.Object({
            batches: Type.Array(
              Type.Object({
                receiptsRoot: TxHash,
                tx: TxHash,
                callers: Type.Integer(),
                rows: Type.Integer(),
                total: Wei,
              }),
            ),
          }),
          ...errors(401, 403, 503),
        },
      },
    },
    async (request) => {
      const escrow = need();
      const principal = requirePrincipal(request);
      if (!ctx.serving.isOperator(principal)) {
        throw new OpenLedgerError('FORBIDDEN', 'Only the node operator may trigger settlement.');
      }
      return escrow.settle();
    },
  );
}
