import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { getAddress, isAddress } from 'viem';
import { Icon } from '../../components/icons';
import { Card, Modal, Spinner } from '../../components/ui';
import {
  ApiError,
  datanetsApi,
  type AccessDecision,
  type AccessRequest,
  type AccessStatus,
  type Address,
} from '../../lib/api';
import { formatDate, shortAddress } from '../../lib/format';
import { useNotify } from '../../lib/notify';
import type { DatanetTabProps } from './DatanetDetail';
import { AccessStatusBadge, ActionStep, Hash, SignInNotice, useAction } from './common';
import {
  authorization,
  registryTypedData,
  signingContext,
  textHash,
  useActingWallet,
} from './signing';

export function RequestAccessForm({
  datanetId,
  onRequested,
  onConflict,
}: {
  datanetId: number;
  onRequested: (request: AccessRequest) => void;
  /** The node refused a second pending request, or access is already granted (409). */
  onConflict: () => void;
}) {
  const wallet = useActingWallet();
  const { busy, step, run } = useAction();
  const [purpose, setPurpose] = useState('');

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const text = purpose.trim();
    const created = await run(async (setStep) => {
      const account = wallet.address!;
      if (!text) {
        throw new ApiError({
          status: 0,
          code: 'VALIDATION_FAILED',
          message: 'Say what you will use the data for.',
          hint: 'The owner reads the purpose before granting access.',
        });
      }
      setStep('Reading your registry nonce…');
      const ctx = await signingContext(account);
      setStep('Waiting for the signature…');
      const signature = await wallet.sign(
        registryTypedData.requestAccess(ctx, {
          account,
          id: BigInt(datanetId),
          purposeHash: textHash(text),
        }),
      );
      setStep('Recording the request on-chain…');
      try {
        return await datanetsApi.requestAccess(datanetId, text, authorization(signature, ctx));
      } catch (err) {
        // The error is shown in the page's banner; refresh the request it conflicts with.
        if (err instanceof ApiError && err.code === 'CONFLICT') onConflict();
        throw err;
      }
    });
    if (created) {
      setPurpose('');
      onRequested(created);
    }
  };

  return (
    <form className="form" onSubmit={submit} noValidate data-testid="request-access-form">
      <label className="field field-wide">
        <span className="field-label">Purpose</span>
        <textarea
          value={purpose}
          onChange={(e) => setPurpose(e.target.value)}
          rows={3}
          maxLength={2000}
          placeholder="What you will use the data for, e.g. fine-tuning a triage assistant for a research study"
          disabled={busy}
          data-testid="request-access-purpose"
        />
        <span className="field-help">
          Its sha256 is recorded on-chain with your request; the text is kept by this node.
        </span>
      </label>
      <div className="form-actions">
        <button
          type="submit"
          className="button button-primary"
          disabled={busy || !purpose.trim()}
          data-testid="request-access-submit"
        >
          {busy ? 'Requesting…' : 'Sign & request access'}
        </button>
        <ActionStep step={step} testId="request-access-step" />
      </div>
    </form>
  );
}

const requestExplanation: Record<AccessStatus, string> = {
  pending: 'The owner decides on-chain; this page shows your access once granted.',
  granted: 'The owner granted your request.',
  denied: 'The owner denied your request. You may ask again, saying what you will use it for.',
  revoked: 'The owner revoked your access. You may ask again.',
};

/** The caller's latest access request to the datanet and its status. */
function MyAccessRequest({ request }: { request: AccessRequest }) {
  return (
    <div
      className={`result-panel my-access-request${request.status === 'pending' || request.status === 'granted' ? ' result-ok' : ''}`}
      role="status"
      data-testid="my-access-request"
      data-status={request.status}
    >
      <p className="strong">
        Your {request.status === 'pending' ? 'pending' : 'latest'} access request{' '}
        <AccessStatusBadge status={request.status} />
      </p>
      <p className="small">{requestExplanation[request.status]}</p>
      <dl className="kv">
        <dt>Purpose</dt>
        <dd className="wrap" data-testid="my-access-purpose">
          {request.purpose}
        </dd>
        <dt>Requested</dt>
        <dd>{formatDate(request.createdAt)}</dd>
        <dt>Request tx</dt>
        <dd>
          <Hash value={request.requestTx} testId="my-access-request-tx" copy />
        </dd>
        {request.decisionTx && (
          <>
            <dt>Decided</dt>
            <dd>
              {formatDate(request.decidedAt)} · <Hash value={request.decisionTx} copy />
            </dd>
          </>
        )}
        {request.decisionReason && (
          <>
            <dt>Reason</dt>
            <dd className="wrap">{request.decisionReason}</dd>
          </>
        )}
      </dl>
    </div>
  );
}

interface PendingDecision {
  account: Address;
  decision: AccessDecision;
}

const decisionLabel: Record<AccessDecision, string> = {
  grant: 'Grant access',
  deny: 'Deny access',
  revoke: 'Revoke access',
};

function DecisionDialog({
  pending,
  busy,
  step,
  onCancel,
  onConfirm,
}: {
  pending: PendingDecision;
  busy: boolean;
  step: string | null;
  onCancel: () => void;
  onConfirm: (reason: string) => void;
}) {
  const [reason, setReason] = useState('');
  const needsReason = pending.decision !== 'grant';
  return (
    <Modal
      title={`${decisionLabel[pending.decision]}?`}
      onClose={busy ? () => {} : onCancel}
      testId="access-decision-dialog"
      footer={
        <>
          <ActionStep step={step} testId="access-decision-step" />
          <button
            type="button"
            className="button button-secondary"
            onClick={onCancel}
            disabled={busy}
            data-testid="cancel-access-decision"
          >
            Cancel
          </button>
          <button
            type="button"
            className={`button ${pending.decision === 'grant' ? 'button-primary' : 'button-danger'}`}
            disabled={busy}
            onClick={() => onConfirm(reason.trim())}
            data-testid="confirm-access-decision"
          >
            {busy ? 'Signing…' : `Sign & ${pending.decision}`}
          </button>
        </>
      }
    >
      <p>
        {pending.decision === 'grant'
          ? 'The account will be able to read and export this datanet.'
          : pending.decision === 'revoke'
            ? 'The account will no longer be able to read this datanet.'
            : 'The request is refused; the account keeps no access.'}
      </p>
      <p className="mono small break">{pending.account}</p>
      {needsReason && (
        <label className="field field-wide">
          <span className="field-label">Reason (optional)</span>
          <input
            type="text"
            value={reason}
            onChange={(e) => setReason(e.target.value)}
            maxLength={1000}
            disabled={busy}
            data-testid="access-decision-reason"
          />
          {pending.decision === 'deny' && (
            <span className="field-help">Its sha256 is recorded on-chain with the denial.</span>
          )}
        </label>
      )}
    </Modal>
  );
}

function AccessRequestsCard({
  datanetId,
  owner,
  onDecided,
}: {
  datanetId: number;
  owner: boolean;
  onDecided: () => Promise<void>;
}) {
  const wallet = useActingWallet();
  const { report } = useNotify();
  const { busy, step, run } = useAction();
  const [requests, setRequests] = useState<AccessRequest[] | null>(null);
  const [pending, setPending] = useState<PendingDecision | null>(null);
  const [grantAddress, setGrantAddress] = useState('');
  const [last, setLast] = useState<{ account: Address; status: string; txHash: string } | null>(
    null,
  );

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        setRequests((await datanetsApi.accessRequests(datanetId, signal)).requests);
      } catch (err) {
        if (!signal?.aborted) report(err);
      }
    },
    [datanetId, report],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load]);

  const decide = async (decision: PendingDecision, reason: string) => {
    const result = await run(async (setStep) => {
      const me = wallet.address!;
      setStep('Reading your registry nonce…');
      const ctx = await signingContext(me);
      const base = { owner: me, id: BigInt(datanetId), account: decision.account };
      setStep('Waiting for the signature…');
      const signature =
        decision.decision === 'grant'
          ? await wallet.sign(registryTypedData.grantAccess(ctx, base))
          : decision.decision === 'revoke'
            ? await wallet.sign(registryTypedData.revokeAccess(ctx, base))
            : await wallet.sign(
                registryTypedData.denyAccess(ctx, { ...base, reasonHash: textHash(reason) }),
              );
      setStep('Recording the decision on-chain…');
      return datanetsApi.decideAccess(datanetId, {
        account: decision.account,
        decision: decision.decision,
        ...(reason ? { reason } : {}),
        authorization: authorization(signature, ctx),
      });
    });
    setPending(null);
    if (result) {
      setLast({ account: result.account, status: result.status, txHash: result.txHash });
      await Promise.all([load(), onDecided()]);
    }
  };

  const grantOther = (e: FormEvent) => {
    e.preventDefault();
    const text = grantAddress.trim();
    if (!isAddress(text, { strict: false })) {
      report(
        new ApiError({
          status: 0,
          code: 'VALIDATION_FAILED',
          message: `${text || 'An empty value'} is not an address.`,
          hint: 'Enter a 0x-prefixed, 40 hex digit address.',
        }),
      );
      return;
    }
    setPending({ account: getAddress(text), decision: 'grant' });
  };

  return (
    <Card
      title="Access requests"
      testId="access-requests-card"
      actions={
        <button
          type="button"
          className="button button-secondary button-small"
          onClick={() => void load()}
          disabled={busy}
          data-testid="access-requests-refresh"
        >
          Refresh
        </button>
      }
    >
      {!owner && (
        <p className="muted small access-note">Only the owner can grant, deny or revoke access.</p>
      )}
      {!requests ? (
        <Spinner label="Loading access requests…" />
      ) : requests.length === 0 ? (
        <p className="muted" data-testid="access-requests-empty">
          No access requests yet.
        </p>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="access-requests-table">
            <thead>
              <tr>
                <th>Account</th>
                <th>Purpose</th>
                <th>Status</th>
                <th>Requested</th>
                {owner && <th aria-label="Actions" />}
              </tr>
            </thead>
            <tbody>
              {requests.map((r) => (
                <tr
                  key={r.id}
                  data-testid="access-request-row"
                  data-requester={r.requester}
                  data-status={r.status}
                >
                  <td>
                    <Hash value={r.requester} testId="access-requester" />
                  </td>
                  <td className="wrap purpose">{r.purpose}</td>
                  <td>
                    <AccessStatusBadge status={r.status} />
                    {r.decisionReason && <span className="cell-sub">{r.decisionReason}</span>}
                  </td>
                  <td>{formatDate(r.createdAt)}</td>
                  {owner && (
                    <td className="actions">
                      <div className="row-actions">
                        {r.status !== 'granted' && (
                          <button
                            type="button"
                            className="button button-primary button-small"
                            disabled={busy}
                            onClick={() => setPending({ account: r.requester, decision: 'grant' })}
                            data-testid="grant-access"
                          >
                            Grant
                          </button>
                        )}
                        {r.status === 'pending' && (
                          <button
                            type="button"
                            className="button button-danger-ghost button-small"
                            disabled={busy}
                            onClick={() => setPending({ account: r.requester, decision: 'deny' })}
                            data-testid="deny-access"
                          >
                            Deny
                          </button>
                        )}
                        {r.status === 'granted' && (
                          <button
                            type="button"
                            className="button button-danger-ghost button-small"
                            disabled={busy}
                            onClick={() => setPending({ account: r.requester, decision: 'revoke' })}
                            data-testid="revoke-access"
                          >
                            Revoke
                          </button>
                        )}
                      </div>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {owner && (
        <form className="inline-form grant-form" onSubmit={grantOther} noValidate>
          <label className="field">
            <span className="field-label">Grant an account directly</span>
            <input
              type="text"
              value={grantAddress}
              onChange={(e) => setGrantAddress(e.target.value)}
              placeholder="0x…"
              spellCheck={false}
              autoComplete="off"
              data-testid="grant-address-input"
            />
          </label>
          <button
            type="submit"
            className="button button-secondary"
            disabled={busy}
            data-testid="grant-address-submit"
          >
            Grant…
          </button>
        </form>
      )}
      {last && (
        <div
          className="result-panel result-ok"
          role="status"
          data-testid="access-decision-result"
          data-status={last.status}
        >
          <p>
            <span className="mono small" title={last.account}>
              {shortAddress(last.account)}
            </span>
            : access {last.status}. Transaction <Hash value={last.txHash} />
          </p>
        </div>
      )}
      {pending && (
        <DecisionDialog
          pending={pending}
          busy={busy}
          step={step}
          onCancel={() => setPending(null)}
          onConfirm={(reason) => void decide(pending, reason)}
        />
      )}
    </Card>
  );
}

export function AccessTab({ datanet, reload, curator, owner }: DatanetTabProps) {
  const wallet = useActingWallet();
  const { report } = useNotify();
  // The caller's own requests, newest first (null while loading); owners and curators see all
  // of them in the requests card instead.
  const [mine, setMine] = useState<AccessRequest[] | null>(null);
  const me = wallet.address;
  const ownRequests = me !== null && !curator && datanet.policy === 'permissioned';

  const loadMine = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const { requests } = await datanetsApi.accessRequests(datanet.id, signal);
        setMine(requests);
      } catch (err) {
        if (signal?.aborted) return;
        setMine((prev) => prev ?? []);
        report(err);
      }
    },
    [datanet.id, report],
  );

  useEffect(() => {
    if (!ownRequests) return;
    const ctrl = new AbortController();
    void loadMine(ctrl.signal);
    return () => ctrl.abort();
  }, [loadMine, ownRequests]);

  if (datanet.policy === 'open') {
    return (
      <div className="notice notice-pending" data-testid="access-open">
        <Icon name="info" />
        <div>
          <p className="notice-title">This datanet is open</p>
          <p className="muted">
            Anyone may read and export its approved content; there is no access to request.
          </p>
        </div>
      </div>
    );
  }

  const latest =
    ownRequests && mine
      ? mine.find((r) => r.requester.toLowerCase() === me.toLowerCase())
      : undefined;
  // A pending request, or a granted one the chain does not show yet: no second request.
  const mayRequest = !latest || latest.status === 'denied' || latest.status === 'revoked';

  return (
    <>
      <Card title="Your access" testId="my-access-card">
        {datanet.canRead ? (
          <>
            <p data-testid="my-access" data-can-read="true">
              <strong>You may read this datanet</strong>
              {owner
                ? ' as its owner.'
                : curator
                  ? ' as a curator.'
                  : ': the owner granted you access.'}
            </p>
            {latest && <MyAccessRequest request={latest} />}
          </>
        ) : (
          <>
            <p data-testid="my-access" data-can-read="false">
              <strong>Its content is not readable by you.</strong>{' '}
              {!me
                ? 'This datanet is permissioned. Sign in to request access.'
                : mayRequest
                  ? 'This datanet is permissioned: ask its owner for access, saying what you will use it for.'
                  : 'This datanet is permissioned: its owner decides on your request.'}
            </p>
            {!me ? (
              <SignInNotice title="Sign in to request access">
                Access requests are signed by your wallet and recorded on-chain.
              </SignInNotice>
            ) : ownRequests && mine === null ? (
              <Spinner label="Loading your access requests…" />
            ) : (
              <>
                {latest && <MyAccessRequest request={latest} />}
                {mayRequest && (
                  <RequestAccessForm
                    datanetId={datanet.id}
                    onRequested={(created) => {
                      setMine((prev) => [created, ...(prev ?? [])]);
                      void reload();
                    }}
                    onConflict={() => void loadMine()}
                  />
                )}
              </>
            )}
          </>
        )}
      </Card>
      {curator && <AccessRequestsCard datanetId={datanet.id} owner={owner} onDecided={reload} />}
    </>
  );
}
