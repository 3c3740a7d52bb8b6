// The signed-in wallet's inference escrow (GET /api/escrow): balance, what is available, fees
// not settled yet, a pending withdrawal with its countdown by the chain's clock, and the wallet's
// OPEN; deposits (ERC-2612 permit) and withdrawal requests (RequestWithdrawal) are signed here
// and relayed by the node, which pays the gas. Shown on /escrow and, compact, on the Playground.
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { Card, ErrorBanner, Spinner } from '../../components/ui';
import { api, ApiError, toApiError, type Address } from '../../lib/api';
import { useAuth } from '../../lib/auth';
import { formatDuration, formatToken } from '../../lib/format';
import { useNode } from '../../lib/node';
import { Link } from '../../lib/router';
import { ActionStep } from '../datanets/common';
import { useActingWallet } from '../datanets/signing';
import {
  DEADLINE_SECONDS,
  escrowApi,
  parseOpen,
  permitTypedData,
  requestWithdrawalTypedData,
  type EscrowView,
} from './api';

type Action = 'deposit' | 'withdraw' | 'cancel' | 'complete' | 'faucet';

const OPEN_DIGITS = 6;
const open = (wei: string | bigint) => `${formatToken(wei.toString(), 18, OPEN_DIGITS)} OPEN`;

/**
 * The chain's clock now: its time when the view was read, plus the seconds since. The countdown
 * follows the chain, whose clock may differ from this machine's (a local chain moved forward).
 */
function useChainClock(view: EscrowView | null, readAt: number): number | null {
  const [, tick] = useState(0);
  const ticking = view?.withdrawal != null;
  useEffect(() => {
    if (!ticking) return;
    const timer = window.setInterval(() => tick((n) => n + 1), 1000);
    return () => window.clearInterval(timer);
  }, [ticking]);
  if (!view) return null;
  return view.chainTime + Math.floor((Date.now() - readAt) / 1000);
}

function Stat({
  label,
  value,
  testId,
  help,
}: {
  label: string;
  value: string;
  testId: string;
  help?: string;
}) {
  return (
    <div title={help}>
      <dt>{label}</dt>
      <dd data-testid={testId} data-value={value}>
        {open(value)}
      </dd>
    </div>
  );
}

/** Errors stay in the card; only a lost session (not a refused signature) signs the user out. */
function useCardError() {
  const { expire } = useAuth();
  const [error, setError] = useState<ApiError | null>(null);
  const fail = useCallback(
    (err: unknown) => {
      const e = toApiError(err);
      if (e.code === 'UNAUTHENTICATED' || e.code === 'SESSION_EXPIRED') expire();
      setError(e);
    },
    [expire],
  );
  return { error, setError, fail };
}

export function EscrowCard({ compact = false }: { compact?: boolean }) {
  const wallet = useActingWallet();
  const { status } = useNode();
  const [view, setView] = useState<EscrowView | null>(null);
  const [readAt, setReadAt] = useState(0);
  const [unavailable, setUnavailable] = useState<ApiError | null>(null);
  const { error, setError, fail } = useCardError();
  const [busy, setBusy] = useState<Action | null>(null);
  const [step, setStep] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [depositAmount, setDepositAmount] = useState('');
  const [withdrawAmount, setWithdrawAmount] = useState('');
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );

  const load = useCallback(
    async (signal?: AbortSignal): Promise<EscrowView | undefined> => {
      try {
        const v = await escrowApi.get(signal);
        if (!mounted.current) return v;
        setView(v);
        setReadAt(Date.now());
        setUnavailable(null);
        return v;
      } catch (err) {
        if (signal?.aborted || !mounted.current) return undefined;
        const e = toApiError(err);
        if (e.code === 'ESCROW_UNAVAILABLE') setUnavailable(e);
        else fail(e);
        return undefined;
      }
    },
    [fail],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load]);

  const chainNow = useChainClock(view, readAt);
  const locked =
    view?.withdrawal && chainNow !== null ? Math.max(0, view.withdrawal.unlockAt - chainNow) : 0;

  /** Runs one action: progress on its button, the card's error on failure, a refresh after. */
  const run = async (action: Action, fn: () => Promise<string>) => {
    setBusy(action);
    setError(null);
    setDone(null);
    try {
      const message = await fn();
      if (mounted.current) setDone(message);
    } catch (err) {
      if (mounted.current) fail(err);
    } finally {
      // The transaction is mined when the node answers, so one read shows its effect.
      if (mounted.current) {
        setStep(null);
        await load();
        setBusy(null);
      }
    }
  };

  /** A fresh view (nonces move with every signature) for the signed-in wallet. */
  const fresh = async (): Promise<{ v: EscrowView; owner: Address }> => {
    const owner = wallet.address;
    if (!owner)
      throw new ApiError({ status: 401, code: 'UNAUTHENTICATED', message: 'Sign in first.' });
    setStep('Reading your nonces…');
    const v = await escrowApi.get();
    return { v, owner };
  };

  const deposit = (e: FormEvent) => {
    e.preventDefault();
    void run('deposit', async () => {
      const amount = parseOpen(depositAmount);
      const { v, owner } = await fresh();
      // The chain would refuse too, but with a token error nobody can act on.
      if (BigInt(v.wallet) < amount)
        throw new ApiError({
          status: 0,
          code: 'INSUFFICIENT_BALANCE',
          message: `Your wallet holds ${open(v.wallet)}; it cannot deposit ${open(amount)}.`,
          ...(status?.local ? { hint: 'Get test OPEN with the faucet first.' } : {}),
        });
      const deadline = BigInt(v.chainTime + DEADLINE_SECONDS);
      setStep('Waiting for the permit signature…');
      const signature = await wallet.sign(
        permitTypedData({
          chainId: v.chainId,
          token: v.token,
          escrow: v.escrow,
          owner,
          value: amount,
          nonce: BigInt(v.tokenNonce),
          deadline,
        }),
      );
      setStep('Depositing on-chain…');
      const { txHash } = await escrowApi.deposit({
        owner,
        amount: amount.toString(),
        deadline: deadline.toString(),
        signature,
      });
      setDepositAmount('');
      return `Deposited ${open(amount)} (tx ${txHash.slice(0, 10)}…).`;
    });
  };

  const requestWithdrawal = (amount: bigint, action: 'withdraw' | 'cancel') =>
    run(action, async () => {
      const { v, owner } = await fresh();
      if (amount > BigInt(v.withdrawable))
        throw new ApiError({
          status: 0,
          code: 'INSUFFICIENT_BALANCE',
          message: `You can withdraw at most ${open(v.withdrawable)}: the escrow holds ${open(v.balance)}, less ${open(BigInt(v.unsettled) + BigInt(v.reserved))} for calls this node has not settled yet.`,
        });
      const deadline = BigInt(v.chainTime + DEADLINE_SECONDS);
      setStep('Waiting for the signature…');
      const signature = await wallet.sign(
        requestWithdrawalTypedData({
          chainId: v.chainId,
          escrow: v.escrow,
          owner,
          amount,
          nonce: BigInt(v.escrowNonce),
          deadline,
        }),
      );
      setStep(amount === 0n ? 'Cancelling on-chain…' : 'Requesting on-chain…');
      await escrowApi.requestWithdrawal({
        owner,
        amount: amount.toString(),
        deadline: deadline.toString(),
        signature,
      });
      if (amount === 0n) return 'Cancelled the withdrawal request.';
      setWithdrawAmount('');
      return `Requested a withdrawal of ${open(amount)}; it unlocks in ${formatDuration(v.withdrawalDelaySeconds)}.`;
    });

  const complete = () =>
    run('complete', async () => {
      const owner = wallet.address!;
      const amount = view?.withdrawal?.amount ?? '0';
      setStep('Paying out on-chain…');
      await escrowApi.complete(owner);
      return `Withdrew ${open(amount)} to your wallet.`;
    });

  const faucet = () =>
    run('faucet', async () => {
      setStep('Sending test OPEN…');
      const result = await api.faucet();
      return `The faucet sent ${open(result.open)} to your wallet.`;
    });

  const title = compact ? 'Escrow balance' : 'Your escrow';
  const action = compact && (
    <Link to="/escrow" className="button button-ghost button-small" data-testid="escrow-manage">
      Manage
    </Link>
  );

  if (unavailable)
    return (
      <Card title={title} testId="escrow-card">
        <p className="muted small" data-testid="escrow-unavailable">
          {unavailable.message} Every call on this node is free.
        </p>
      </Card>
    );
  if (!view)
    return (
      <Card title={title} testId="escrow-card">
        <ErrorBanner error={error} onClose={() => setError(null)} testId="escrow-error" />
        {!error && <Spinner label="Reading the escrow…" />}
      </Card>
    );

  const pending = view.withdrawal;
  return (
    <Card title={title} actions={action} testId="escrow-card">
      <ErrorBanner error={error} onClose={() => setError(null)} testId="escrow-error" />
      <dl className="stats escrow-stats" data-testid="escrow-stats">
        <Stat
          label="Escrow balance"
          value={view.balance}
          testId="escrow-balance"
          help="OPEN held for you in the escrow contract, a pending withdrawal included"
        />
        <Stat
          label="Available"
          value={view.available}
          testId="escrow-available"
          help="What new calls may cost: the balance less a pending withdrawal, unsettled fees and calls running now"
        />
        <Stat
          label="Unsettled"
          value={view.unsettled}
          testId="escrow-unsettled"
          help="Fees this node charged and has not settled on-chain yet"
        />
        <div title="Requested withdrawals unlock after the escrow's delay, by the chain's clock">
          <dt>Pending withdrawal</dt>
          <dd data-testid="escrow-withdrawal" data-value={pending?.amount ?? '0'}>
            {pending ? open(pending.amount) : '—'}
          </dd>
          {pending && (
            <p className="muted small" data-testid="escrow-unlock" data-locked={locked > 0}>
              {locked > 0 ? `unlocks in ${formatDuration(locked)}` : 'unlocked'}
            </p>
          )}
        </div>
        <Stat
          label="Wallet"
          value={view.wallet}
          testId="escrow-wallet"
          help="OPEN in your wallet, outside the escrow"
        />
      </dl>

      <form className="toolbar escrow-form" onSubmit={deposit} noValidate>
        <input
          type="text"
          inputMode="decimal"
          value={depositAmount}
          onChange={(e) => setDepositAmount(e.target.value)}
          placeholder="OPEN to deposit"
          aria-label="OPEN to deposit"
          disabled={busy !== null}
          data-testid="escrow-deposit-amount"
        />
        <button
          type="submit"
          className="button button-primary"
          disabled={busy !== null || !depositAmount.trim()}
          data-testid="escrow-deposit"
        >
          {busy === 'deposit' ? 'Depositing…' : 'Sign & deposit'}
        </button>
        {status?.local && BigInt(view.wallet) === 0n && (
          <button
            type="button"
            className="button button-secondary"
            disabled={busy !== null}
            onClick={() => void faucet()}
            data-testid="escrow-faucet"
          >
            {busy === 'faucet' ? 'Sending…' : 'Get test OPEN'}
          </button>
        )}
      </form>

      {!compact && (
        <form
          className="toolbar escrow-form"
          onSubmit={(e) => {
            e.preventDefault();
            let amount: bigint;
            try {
              amount = parseOpen(withdrawAmount);
            } catch (err) {
              fail(err);
              return;
            }
            void requestWithdrawal(amount, 'withdraw');
          }}
          noValidate
        >
          <input
            type="text"
            inputMode="decimal"
            value={withdrawAmount}
            onChange={(e) => setWithdrawAmount(e.target.value)}
            placeholder={`OPEN to withdraw (at most ${formatToken(view.withdrawable, 18, OPEN_DIGITS)})`}
            aria-label="OPEN to withdraw"
            disabled={busy !== null}
            data-testid="escrow-withdraw-amount"
          />
          <button
            type="submit"
            className="button button-secondary"
            disabled={busy !== null || !withdrawAmount.trim()}
            data-testid="escrow-withdraw"
          >
            {busy === 'withdraw'
              ? 'Requesting…'
              : pending
                ? 'Sign & replace the request'
                : 'Sign & request withdrawal'}
          </button>
          {pending && (
            <button
              type="button"
              className="button button-ghost"
              disabled={busy !== null}
              onClick={() => void requestWithdrawal(0n, 'cancel')}
              data-testid="escrow-cancel"
            >
              {busy === 'cancel' ? 'Cancelling…' : 'Cancel request'}
            </button>
          )}
          {pending && (
            <button
              type="button"
              className="button button-primary"
              disabled={busy !== null || locked > 0}
              title={locked > 0 ? 'Unlocks after the delay, by the chain’s clock' : undefined}
              onClick={() => void complete()}
              data-testid="escrow-complete"
            >
              {busy === 'complete' ? 'Withdrawing…' : 'Complete withdrawal'}
            </button>
          )}
        </form>
      )}

      <div className="escrow-status">
        <ActionStep step={step} testId="escrow-step" />
        {done && !step && (
          <p className="success small" role="status" data-testid="escrow-done">
            {done}
          </p>
        )}
      </div>
      {!compact && (
        <p className="muted small">
          A withdrawal unlocks {formatDuration(view.withdrawalDelaySeconds)} after its request (by
          the chain’s clock), so the node can still settle the calls it served; meanwhile the
          requested amount no longer pays for new calls. A new request replaces the old one.
        </p>
      )}
    </Card>
  );
}
