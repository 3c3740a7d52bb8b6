// /rewards — what the signed-in wallet earned from Proof of Attribution: totals, what it may
// claim now (the node relays the claim and pays its gas), breakdowns by role, datanet and model,
// the paying inferences with their receipts, and the fee epochs this node posted.
import { Fragment, useCallback, useEffect, useRef, useState } from 'react';
import { PageHeader } from '../../components/PageHeader';
import { Card, ErrorBanner, Spinner } from '../../components/ui';
import { toApiError, type ApiError } from '../../lib/api';
import { useAuth } from '../../lib/auth';
import { formatDate } from '../../lib/format';
import { Link } from '../../lib/router';
import { Hash, SignInNotice } from '../datanets/common';
import { ROLES, rewardsApi, type EarningsView, type EpochView, type ModelRevenueView } from './api';
import { ReceiptLoader, openAmount } from './ReceiptBreakdown';

/** Why nothing can be claimed now, from the claim's pending amounts and the epochs. */
function claimBlocked(earnings: EarningsView, epochs: EpochView[]): string {
  const claim = earnings.claim;
  if (BigInt(claim.pendingPosted) > 0n) {
    // The earliest epoch still in its challenge window decides when the next claim opens.
    const open = epochs.filter((e) => !e.final && e.status !== 'voided');
    const ends = open.length ? Math.min(...open.map((e) => e.challengeEndsAt)) : null;
    return ends === null
      ? 'In the challenge window.'
      : `In the challenge window until ${formatDate(new Date(ends * 1000).toISOString())} (chain time).`;
  }
  if (BigInt(claim.pendingUnposted) > 0n)
    return 'Not posted yet: the node posts each fee epoch once it has closed.';
  return BigInt(earnings.total) > 0n ? 'Everything earned is claimed.' : 'Nothing earned yet.';
}

function Amount({ label, wei, testId }: { label: string; wei: string; testId: string }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd data-testid={testId} data-value={wei}>
        {openAmount(wei)}
      </dd>
    </div>
  );
}

function Breakdowns({ earnings }: { earnings: EarningsView }) {
  return (
    <Card title="Breakdown" testId="rewards-breakdown">
      <div className="form-grid">
        <table className="table table-compact" data-testid="rewards-by-role">
          <thead>
            <tr>
              <th>Role</th>
              <th className="num">Earned</th>
            </tr>
          </thead>
          <tbody>
            {ROLES.filter((r) => earnings.byRole[r] !== undefined).map((role) => (
              <tr key={role} data-testid="rewards-role" data-role={role}>
                <td>{role}</td>
                <td className="num" data-value={earnings.byRole[role]}>
                  {openAmount(earnings.byRole[role]!)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <table className="table table-compact" data-testid="rewards-by-datanet">
          <thead>
            <tr>
              <th>Datanet</th>
              <th className="num">Earned</th>
            </tr>
          </thead>
          <tbody>
            {earnings.byDatanet.map((d) => (
              <tr key={d.datanetId} data-testid="rewards-datanet" data-datanet={d.datanetId}>
                <td>
                  <Link to={`/datanets/${d.datanetId}`}>Datanet {d.datanetId}</Link>
                </td>
                <td className="num" data-value={d.amount}>
                  {openAmount(d.amount)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <table className="table table-compact" data-testid="rewards-by-model">
          <thead>
            <tr>
              <th>Model</th>
              <th className="num">Calls</th>
              <th className="num">Earned</th>
            </tr>
          </thead>
          <tbody>
            {earnings.byModel.map((m) => (
              <tr key={m.modelId} data-testid="rewards-model" data-model={m.modelId}>
                <td className="mono">model:{m.modelId}</td>
                <td className="num">{m.inferences}</td>
                <td className="num" data-value={m.amount}>
                  {openAmount(m.amount)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Card>
  );
}

/** Each model this wallet earns from: its whole attributed revenue, by role, and who it pays. */
function ModelRevenue({ earnings }: { earnings: EarningsView }) {
  const [views, setViews] = useState<ModelRevenueView[]>([]);
  const [error, setError] = useState<ApiError | null>(null);
  const ids = earnings.byModel.map((m) => m.modelId).join(',');
  useEffect(() => {
    const ctrl = new AbortController();
    Promise.all(earnings.byModel.map((m) => rewardsApi.revenue(m.modelId, ctrl.signal)))
      .then(setViews)
      .catch((e: unknown) => {
        if (!ctrl.signal.aborted) setError(toApiError(e));
      });
    return () => ctrl.abort();
  }, [ids]);
  if (earnings.byModel.length === 0) return null;
  return (
    <Card title="Model revenue" testId="rewards-model-revenue">
      {error && <ErrorBanner error={error} />}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th>Model</th>
              <th className="num">Paid calls</th>
              <th className="num">Fees</th>
              <th className="num">Collected</th>
              {ROLES.map((role) => (
                <th className="num" key={role}>
                  To {role}s
                </th>
              ))}
              <th>Top contributors</th>
            </tr>
          </thead>
          <tbody>
            {views.map((v) => (
              <tr key={v.modelId} data-testid="rewards-revenue" data-model={v.modelId}>
                <td className="mono">model:{v.modelId}</td>
                <td className="num">{v.inferences}</td>
                <td className="num" data-value={v.fees}>
                  {openAmount(v.fees)}
                </td>
                <td className="num">{openAmount(v.collected)}</td>
                {ROLES.map((role) => (
                  <td className="num" key={role}>
                    {openAmount(v.byRole[role] ?? '0')}
                  </td>
                ))}
                <td className="small">
                  {v.topContributors.slice(0, 3).map((c) => (
                    <div key={c.address}>
                      <Hash value={c.address} /> {openAmount(c.amount)}
                    </div>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Card>
  );
}

function RecentInferences({ earnings }: { earnings: EarningsView }) {
  const [open, setOpen] = useState<string | null>(null);
  return (
    <Card title="Paying inferences" testId="rewards-recent">
      {earnings.recent.length === 0 ? (
        <p className="muted small">No paid call has credited this wallet yet.</p>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th>When</th>
                <th>Model</th>
                <th>As</th>
                <th>Epoch</th>
                <th className="num">Earned</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {earnings.recent.map((r) => (
                <Fragment key={r.id}>
                  <tr data-testid="rewards-inference" data-id={r.id}>
                    <td>{formatDate(r.createdAt)}</td>
                    <td className="mono">model:{r.modelId}</td>
                    <td>{Object.keys(r.detail).join(', ') || r.role}</td>
                    <td>{r.epoch ?? '—'}</td>
                    <td className="num" data-value={r.amount}>
                      {openAmount(r.amount)}
                    </td>
                    <td className="actions">
                      <button
                        type="button"
                        className="button button-ghost button-small"
                        aria-expanded={open === r.id}
                        onClick={() => setOpen(open === r.id ? null : r.id)}
                        data-testid="rewards-inference-toggle"
                      >
                        {open === r.id ? 'Hide receipt' : 'Receipt'}
                      </button>
                    </td>
                  </tr>
                  {open === r.id && (
                    <tr>
                      <td colSpan={6}>
                        <ReceiptLoader id={r.id} />
                      </td>
                    </tr>
                  )}
                </Fragment>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

function EpochsTable({ epochs }: { epochs: EpochView[] }) {
  return (
    <Card title="Fee epochs" testId="rewards-epochs">
      {epochs.length === 0 ? (
        <p className="muted small">This node has not posted an epoch yet.</p>
      ) : (
        <div className="table-wrap">
          <table className="table table-compact">
            <thead>
              <tr>
                <th>Epoch</th>
                <th>Status</th>
                <th className="num">Receipts</th>
                <th className="num">Total</th>
                <th>Challenge window ends</th>
                <th>Payouts root</th>
                <th>Tx</th>
              </tr>
            </thead>
            <tbody>
              {epochs.map((e) => (
                <tr key={e.epoch} data-testid="rewards-epoch" data-final={String(e.final)}>
                  <td>{e.epoch}</td>
                  <td>{e.final && e.status === 'posted' ? 'final' : e.status}</td>
                  <td className="num">{e.receipts}</td>
                  <td className="num" data-value={e.total}>
                    {openAmount(e.total)}
                  </td>
                  <td>{formatDate(new Date(e.challengeEndsAt * 1000).toISOString())}</td>
                  <td>
                    <Hash value={e.payoutsRoot} />
                  </td>
                  <td>
                    <Hash value={e.txHash} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

function Rewards({ address }: { address: string }) {
  const { expire } = useAuth();
  const [earnings, setEarnings] = useState<EarningsView | null>(null);
  const [epochs, setEpochs] = useState<EpochView[]>([]);
  const [error, setError] = useState<ApiError | null>(null);
  const [claiming, setClaiming] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );

  const fail = useCallback(
    (err: unknown) => {
      const e = toApiError(err);
      if (e.code === 'UNAUTHENTICATED' || e.code === 'SESSION_EXPIRED') expire();
      setError(e);
    },
    [expire],
  );

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const [e, ep] = await Promise.all([
          rewardsApi.earnings(address, signal),
          rewardsApi.epochs(signal),
        ]);
        if (!mounted.current) return;
        setEarnings(e);
        setEpochs(ep.epochs);
      } catch (err) {
        if (!signal?.aborted && mounted.current) fail(err);
      }
    },
    [address, fail],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load]);

  const claim = async () => {
    setClaiming(true);
    setError(null);
    setDone(null);
    try {
      const result = await rewardsApi.claim();
      if (mounted.current)
        setDone(
          `Claimed ${openAmount(result.amount)} from epoch ${result.epoch} (tx ${result.tx}).`,
        );
    } catch (err) {
      if (mounted.current) fail(err);
    } finally {
      // The claim is mined when the node answers, so one read shows it.
      if (mounted.current) {
        await load();
        setClaiming(false);
      }
    }
  };

  if (!earnings)
    return (
      <>
        <ErrorBanner error={error} onClose={() => setError(null)} testId="rewards-error" />
        {!error && <Spinner label="Reading your earnings…" />}
      </>
    );

  const c = earnings.claim;
  const claimable = BigInt(c.claimable) > 0n;
  const blocked = claimable ? null : claimBlocked(earnings, epochs);
  return (
    <>
      <ErrorBanner error={error} onClose={() => setError(null)} testId="rewards-error" />
      <Card
        title="Your rewards"
        testId="rewards-summary"
        actions={
          <button
            type="button"
            className="button button-ghost button-small"
            disabled={claiming}
            onClick={() => void load()}
            data-testid="rewards-refresh"
          >
            Refresh
          </button>
        }
      >
        <dl className="stats">
          <Amount label="Total earned" wei={earnings.total} testId="rewards-total" />
          <Amount label="Claimable now" wei={c.claimable} testId="rewards-claimable" />
          <Amount label="Claimed" wei={c.claimed} testId="rewards-claimed" />
          <Amount label="In challenge window" wei={c.pendingPosted} testId="rewards-pending" />
          <Amount label="Not posted yet" wei={c.pendingUnposted} testId="rewards-unposted" />
        </dl>
        <div className="toolbar">
          <button
            type="button"
            className="button button-primary"
            disabled={!claimable || claiming}
            title={blocked ?? undefined}
            onClick={() => void claim()}
            data-testid="rewards-claim"
          >
            {claiming ? 'Claiming…' : 'Claim'}
          </button>
          {blocked && (
            <span className="muted small" data-testid="rewards-claim-blocked">
              {blocked}
            </span>
          )}
        </div>
        {done && (
          <p className="success small" role="status" data-testid="rewards-claim-done">
            {done}
          </p>
        )}
        <p className="muted small">
          {earnings.inferences} paid call{earnings.inferences === 1 ? '' : 's'} credited this
          wallet. Rewards become claimable once the epoch paying them is posted on-chain and its
          challenge window has passed; the node submits the claim and pays its gas.
        </p>
      </Card>
      <Breakdowns earnings={earnings} />
      <ModelRevenue earnings={earnings} />
      <RecentInferences earnings={earnings} />
      <EpochsTable epochs={epochs} />
    </>
  );
}

export function RewardsPage() {
  const { session, checking } = useAuth();
  return (
    <div className="page" data-testid="page-rewards">
      <PageHeader title="Rewards">
        What you earned from Proof of Attribution: each paid call to a published model pays its
        owner, its stakers, the platform and the contributors whose data it used — by the spans of
        the answer found verbatim in datanet rows and by the rows&apos; influence on training.
      </PageHeader>
      {checking ? (
        <Spinner label="Checking session…" />
      ) : !session ? (
        <SignInNotice title="Sign in to see your rewards">
          Rewards belong to your wallet. Connect it and sign in to see and claim them.
        </SignInNotice>
      ) : (
        <Rewards key={session.address} address={session.address} />
      )}
    </div>
  );
}
