import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import {
  BaseError,
  ContractFunctionRevertedError,
  decodeErrorResult,
  getAddress,
  parseSignature,
  type Address as AddressType,
  type Hex,
} from 'viem';
import { InferenceEscrowAbi, OpenTokenAbi, escrowParameters } from '../../chain/index.ts';
import { OpenLedgerError, type ErrorCode } from '../../errors.ts';
import type { NodeContext } from '../../node/context.ts';
import { formatOpen, type EscrowAccount, type EscrowService } from '../../payments/escrow.ts';
import { requirePrincipal } from '../auth.ts';
import { Address, TxHash, Wei, errors } from '../schemas.ts';

const Signature = Type.String({ pattern: '^0x[0-9a-fA-F]{130}$' });
const Deadline = Type.String({ pattern: '^[0-9]{1,20}$', description: 'Unix seconds.' });

/** Contract reverts a relayed call may hit, as the codes and messages a caller can act on. */
const REVERTS: Record<string, [ErrorCode, string]> = {
  InsufficientBalance: ['INSUFFICIENT_BALANCE', 'The escrow balance is less than the amount.'],
  NoWithdrawalRequested: ['CONFLICT', 'No withdrawal is requested.'],
  WithdrawalLocked: ['WITHDRAWAL_LOCKED', 'The withdrawal has not unlocked yet.'],
  InvalidSignature: [
    'INVALID_SIGNATURE',
    'The signature does not match the owner, the amount and its escrow nonce.',
  ],
  ExpiredSignature: ['INVALID_SIGNATURE', 'The signature has expired (its deadline has passed).'],
  ZeroAmount: ['VALIDATION_FAILED', 'The amount must be more than 0.'],
  ZeroAddress: ['VALIDATION_FAILED', 'The zero address is not allowed here.'],
  // depositWithPermit ignores a failed permit, so a bad one surfaces as the token's transferFrom.
  ERC20InsufficientAllowance: [
    'INVALID_SIGNATURE',
    'The permit signature does not match the owner, the amount, the deadline and its token nonce.',
  ],
  ERC20InsufficientBalance: ['INSUFFICIENT_BALANCE', 'The wallet holds less OPEN than the amount.'],
};

/** The custom error a simulated call reverted with (the token's errors decoded too), if any. */
function revertName(error: unknown): string | undefined {
  const reverted =
    error instanceof BaseError
      ? error.walk((e) => e instanceof ContractFunctionRevertedError)
      : null;
  if (!(reverted instanceof ContractFunctionRevertedError)) return undefined;
  if (reverted.data?.errorName) return reverted.data.errorName;
  if (!reverted.raw) return undefined;
  try {
    return decodeErrorResult({ abi: OpenTokenAbi, data: reverted.raw }).errorName;
  } catch {
    return undefined;
  }
}

function escrowError(error: unknown): unknown {
  const name = revertName(error);
  const mapped = name ? REVERTS[name] : undefined;
  if (!mapped) return error;
  return new OpenLedgerError(mapped[0], mapped[1], { details: { revert: name }, cause: error });
}

/**
 * What the owner may ask to withdraw: the balance less what this node charged and has not
 * settled and what calls running now may cost (a new request replaces a pending one).
 */
function withdrawable(account: EscrowAccount): bigint {
  const left = account.balance - account.unsettled - account.reserved;
  return left > 0n ? left : 0n;
}

/** WITHDRAWAL_LOCKED with when it unlocks, by the chain's clock. */
async function lockedError(
  ctx: NodeContext,
  escrow: EscrowService,
  owner: AddressType,
  cause: OpenLedgerError,
): Promise<OpenLedgerError> {
  const [account, now] = await Promise.all([escrow.account(owner), chainTime(ctx)]);
  const unlockAt = account.withdrawal?.unlockAt ?? now;
  return new OpenLedgerError(
    'WITHDRAWAL_LOCKED',
    `The withdrawal of ${formatOpen(account.withdrawal?.amount ?? 0n)} OPEN unlocks at ${new Date(unlockAt * 1000).toISOString()}, in ${Math.max(0, unlockAt - now)} s by the chain's clock.`,
    {
      hint: 'Complete it once it has unlocked.',
      details: { unlockAt, chainTime: now },
      cause,
    },
  );
}

/**
 * The chain's clock, which withdrawals unlock by (not the caller's): the timestamp the next
 * block gets. A local anvil chain mines only on transactions, so its latest block may be minutes
 * old while its clock runs on; where the RPC has no pending block, the latest block's.
 */
async function chainTime(ctx: NodeContext): Promise<number> {
  const client = ctx.chain.publicClient;
  const block = await client
    .getBlock({ blockTag: 'pending' })
    .catch(() => client.getBlock({ blockTag: 'latest' }));
  return Number(block.timestamp);
}

/**
 * Calls are simulated against the latest block: on the local chain, whose latest block may be
 * older than its clock, mine an empty one when only that stands between the owner and an
 * unlocked withdrawal (a real chain makes blocks every few seconds by itself).
 */
async function catchUpLocalChain(
  ctx: NodeContext,
  escrow: EscrowService,
  owner: AddressType,
): Promise<void> {
  if (!ctx.local) return;
  const client = ctx.chain.publicClient;
  const [account, latest, now] = await Promise.all([
    escrow.account(owner),
    client.getBlock({ blockTag: 'latest' }),
    chainTime(ctx),
  ]);
  const unlockAt = account.withdrawal?.unlockAt;
  if (unlockAt !== undefined && Number(latest.timestamp) < unlockAt && now >= unlockAt)
    await client.request({ method: 'evm_mine' as never, params: [] as never });
}

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
            withdrawable: Wei,
            chainTime: Type.Integer(),
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
      const [account, wallet, tokenNonce, escrowNonce, now] = await Promise.all([
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
        chainTime(ctx),
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
        withdrawable: withdrawable(account).toString(),
        chainTime: now,
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
        response: { 200: Type.Object({ txHash: TxHash }), ...errors(400, 401, 402, 503) },
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
      const receipt = await relayer()
        .write({
          address: escrow.address,
          abi: InferenceEscrowAbi,
          functionName: 'depositWithPermit',
          args: [
            getAddress(body.owner),
            BigInt(body.amount),
            BigInt(body.deadline),
            Number(v),
            r,
            s,
          ],
        })
        .catch((error: unknown) => {
          throw escrowError(error);
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
        response: { 200: Type.Object({ txHash: TxHash }), ...errors(400, 401, 402, 409, 503) },
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
        await catchUpLocalChain(ctx, escrow, owner);
        const receipt = await relayer()
          .write({
            address: escrow.address,
            abi: InferenceEscrowAbi,
            functionName: 'withdraw',
            args: [owner],
          })
          .catch(async (error: unknown) => {
            const mapped = escrowError(error);
            if (mapped instanceof OpenLedgerError && mapped.code === 'WITHDRAWAL_LOCKED')
              throw await lockedError(ctx, escrow, owner, mapped);
            if (mapped instanceof OpenLedgerError && mapped.code === 'CONFLICT')
              throw new OpenLedgerError('CONFLICT', `${owner} has no withdrawal requested.`, {
                hint: 'Request one first (POST /api/escrow/withdraw with a signed amount).',
                details: mapped.details,
              });
            throw mapped;
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
      const amount = BigInt(body.amount);
      const account = await escrow.account(owner);
      // The chain would let the owner ask for its whole balance, but fees this node charged and
      // has not settled yet are owed already: refuse here rather than let them race the payout.
      if (amount > withdrawable(account))
        throw new OpenLedgerError(
          'INSUFFICIENT_BALANCE',
          `You can withdraw at most ${formatOpen(withdrawable(account))} OPEN: the escrow holds ${formatOpen(account.balance)} OPEN, of which ${formatOpen(account.unsettled + account.reserved)} OPEN pays for calls this node served and has not settled yet.`,
          {
            details: {
              withdrawable: withdrawable(account).toString(),
              balance: account.balance.toString(),
              unsettled: account.unsettled.toString(),
              reserved: account.reserved.toString(),
            },
          },
        );
      const receipt = await relayer()
        .write({
          address: escrow.address,
          abi: InferenceEscrowAbi,
          functionName: 'requestWithdrawalWithSig',
          args: [owner, amount, BigInt(body.deadline), body.signature],
        })
        .catch((error: unknown) => {
          throw escrowError(error);
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
