import { useCallback, useEffect, useState } from 'react';
import { Card, Spinner } from '../../components/ui';
import { datanetsApi, type CommittedVersion, type Contribution, type Hex } from '../../lib/api';
import { useNotify } from '../../lib/notify';
import { ContributionsTable } from './ContributionsTab';
import type { DatanetTabProps } from './DatanetDetail';
import { ActionStep, Hash, SignInNotice, useAction } from './common';
import { authorization, registryTypedData, useActingWallet, type SigningContext } from './signing';

function CommitResult({ committed }: { committed: CommittedVersion }) {
  return (
    <div
      className="result-panel result-ok"
      role="status"
      data-testid="commit-result"
      data-version={committed.version}
    >
      <p className="strong">
        Committed version {committed.version}: {committed.rowCount} rows (+{committed.addedRows})
      </p>
      <dl className="kv">
        <dt>Root</dt>
        <dd>
          <Hash value={committed.root} testId="commit-root" copy />
        </dd>
        <dt>Transaction</dt>
        <dd>
          <Hash value={committed.txHash} testId="commit-tx" copy />
        </dd>
      </dl>
    </div>
  );
}

export function ReviewTab({ datanet, reload }: DatanetTabProps) {
  const wallet = useActingWallet();
  const { report } = useNotify();
  const approveAction = useAction();
  const rejectAction = useAction();
  const [pending, setPending] = useState<Contribution[] | null>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [reason, setReason] = useState('');
  const [committed, setCommitted] = useState<CommittedVersion | null>(null);
  const [rejected, setRejected] = useState<{ count: number; reason: string } | null>(null);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const { contributions } = await datanetsApi.contributions(datanet.id, 'pending', signal);
        setPending(contributions);
        // Keep only selections that are still pending.
        setSelected(
          (prev) => new Set(contributions.filter((c) => prev.has(c.id)).map((c) => c.id)),
        );
      } catch (err) {
        if (!signal?.aborted) report(err);
      }
    },
    [datanet.id, report],
  );

  const signedIn = wallet.address !== null;
  useEffect(() => {
    if (!signedIn) return;
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load, signedIn]);

  if (!signedIn) {
    return (
      <SignInNotice title="Sign in to review">Curators review pending contributions.</SignInNotice>
    );
  }

  const busy = approveAction.busy || rejectAction.busy;
  const batch = [...selected];

  const approve = async () => {
    setCommitted(null);
    setRejected(null);
    const result = await approveAction.run(async (setStep) => {
      const committer = wallet.address!;
      setStep('Planning the version…');
      const plan = await datanetsApi.planVersion(datanet.id, batch);
      const ctx: SigningContext = {
        chainId: plan.chainId,
        registry: plan.registry,
        nonce: BigInt(plan.nonce),
        deadline: BigInt(Math.floor(Date.now() / 1000) + 3600),
      };
      setStep(`Waiting for the signature of version ${plan.version}…`);
      const signature = await wallet.sign(
        registryTypedData.commitVersion(ctx, {
          committer,
          id: BigInt(datanet.id),
          root: plan.root as Hex,
          rowCount: BigInt(plan.rowCount),
          manifestId: plan.manifestId,
        }),
      );
      setStep(`Committing version ${plan.version} on-chain…`);
      return datanetsApi.commitVersion(datanet.id, batch, authorization(signature, ctx));
    });
    if (result) {
      setCommitted(result);
      setSelected(new Set());
      await Promise.all([load(), reload()]);
    }
  };

  const reject = async () => {
    setCommitted(null);
    setRejected(null);
    const text = reason.trim();
    const result = await rejectAction.run(async (setStep) => {
      setStep('Rejecting…');
      return datanetsApi.reject(datanet.id, batch, text);
    });
    if (result) {
      setRejected({ count: result.rejected.length, reason: result.reason });
      setSelected(new Set());
      setReason('');
      await Promise.all([load(), reload()]);
    }
  };

  const selection = {
    selected,
    toggle: (id: string) =>
      setSelected((prev) => {
        const next = new Set(prev);
        if (next.has(id)) next.delete(id);
        else next.add(id);
        return next;
      }),
    toggleAll: () =>
      setSelected((prev) =>
        pending && prev.size < pending.length ? new Set(pending.map((c) => c.id)) : new Set(),
      ),
  };

  return (
    <>
      <Card
        title="Pending contributions"
        testId="review-card"
        actions={
          <button
            type="button"
            className="button button-secondary button-small"
            onClick={() => void load()}
            disabled={busy}
            data-testid="review-refresh"
          >
            Refresh
          </button>
        }
      >
        {!pending ? (
          <Spinner label="Loading pending contributions…" />
        ) : pending.length === 0 ? (
          <p className="muted" data-testid="review-empty">
            Nothing waits for review.
          </p>
        ) : (
          <ContributionsTable
            contributions={pending}
            showContributor
            selection={selection}
            testId="pending-table"
          />
        )}
      </Card>

      <Card title="Decide" testId="review-actions">
        <p className="muted">
          {selected.size === 0
            ? 'Select pending contributions above.'
            : `${selected.size} contribution${selected.size === 1 ? '' : 's'} selected.`}{' '}
          Approving commits a new version: the Merkle root over every approved row, signed by you
          and registered on-chain.
        </p>
        <div className="form-actions">
          <button
            type="button"
            className="button button-primary"
            disabled={busy || selected.size === 0}
            onClick={() => void approve()}
            data-testid="approve-commit"
          >
            {approveAction.busy ? 'Committing…' : 'Approve & commit version'}
          </button>
          <ActionStep step={approveAction.step} testId="approve-step" />
        </div>
        <div className="inline-form reject-form">
          <label className="field">
            <span className="field-label">Rejection reason</span>
            <input
              type="text"
              value={reason}
              onChange={(e) => setReason(e.target.value)}
              placeholder="e.g. off-topic for this datanet"
              maxLength={1000}
              disabled={busy}
              data-testid="reject-reason"
            />
          </label>
          <button
            type="button"
            className="button button-danger-ghost"
            disabled={busy || selected.size === 0 || !reason.trim()}
            onClick={() => void reject()}
            data-testid="reject-selected"
          >
            {rejectAction.busy ? 'Rejecting…' : 'Reject'}
          </button>
          <ActionStep step={rejectAction.step} testId="reject-step" />
        </div>
        {committed && <CommitResult committed={committed} />}
        {rejected && (
          <div className="result-panel" role="status" data-testid="reject-result">
            Rejected {rejected.count} contribution{rejected.count === 1 ? '' : 's'}:{' '}
            {rejected.reason}
          </div>
        )}
      </Card>
    </>
  );
}
