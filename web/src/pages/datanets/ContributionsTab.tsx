import { useCallback, useEffect, useState } from 'react';
import { Card, Spinner } from '../../components/ui';
import { datanetsApi, type Contribution, type ContributionStatus } from '../../lib/api';
import { formatDate } from '../../lib/format';
import { useNotify } from '../../lib/notify';
import type { DatanetTabProps } from './DatanetDetail';
import {
  ContributionStatusBadge,
  ContributorLink,
  formatBytes,
  formatScore,
  SignInNotice,
} from './common';
import { useActingWallet } from './signing';

export function ContributionsTable({
  contributions,
  showContributor,
  selection,
  testId = 'contributions-table',
}: {
  contributions: Contribution[];
  showContributor: boolean;
  /** Adds a checkbox column (for pending contributions). */
  selection?: { selected: Set<string>; toggle: (id: string) => void; toggleAll: () => void };
  testId?: string;
}) {
  const allSelected =
    selection !== undefined &&
    contributions.length > 0 &&
    contributions.every((c) => selection.selected.has(c.id));
  return (
    <div className="table-wrap">
      <table className="table" data-testid={testId}>
        <thead>
          <tr>
            {selection && (
              <th className="select">
                <input
                  type="checkbox"
                  aria-label="Select all"
                  checked={allSelected}
                  onChange={selection.toggleAll}
                  data-testid="select-all-contributions"
                />
              </th>
            )}
            <th>File</th>
            {showContributor && <th>Contributor</th>}
            <th>Status</th>
            <th className="num">Rows accepted</th>
            <th className="num">Score</th>
            <th>Reasons</th>
            <th>Submitted</th>
          </tr>
        </thead>
        <tbody>
          {contributions.map((c) => (
            <tr
              key={c.id}
              data-testid="contribution-row"
              data-contribution-id={c.id}
              data-status={c.status}
              data-contributor={c.contributor}
            >
              {selection && (
                <td className="select">
                  <input
                    type="checkbox"
                    aria-label={`Select ${c.fileName ?? c.id}`}
                    checked={selection.selected.has(c.id)}
                    onChange={() => selection.toggle(c.id)}
                    data-testid="select-contribution"
                  />
                </td>
              )}
              <td className="cell-main">
                <span className="strong">{c.fileName ?? 'rows'}</span>
                <span className="cell-sub">
                  {formatBytes(c.bytes)} · <span title={c.id}>{c.id.slice(0, 8)}</span>
                </span>
              </td>
              {showContributor && (
                <td>
                  <span className="small">
                    <ContributorLink address={c.contributor} />
                  </span>
                </td>
              )}
              <td>
                <ContributionStatusBadge status={c.status} />
                {c.version !== null && <span className="cell-sub">in v{c.version}</span>}
              </td>
              <td className="num" data-testid="contribution-rows">
                {c.acceptedRowCount} / {c.rowCount}
              </td>
              <td className="num" data-testid="contribution-score">
                {formatScore(c.score)}
              </td>
              <td className="wrap reasons" data-testid="contribution-reasons">
                {c.reasons.length === 0 && !c.decisionReason ? (
                  <span className="muted">—</span>
                ) : (
                  <ul className="plain-list small">
                    {c.reasons.map((r) => (
                      <li key={r}>{r}</li>
                    ))}
                    {c.decisionReason && c.status === 'rejected' && (
                      <li>
                        <strong>Decision:</strong> {c.decisionReason}
                      </li>
                    )}
                  </ul>
                )}
              </td>
              <td>{formatDate(c.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function ContributionsTab({ datanet }: DatanetTabProps) {
  const wallet = useActingWallet();
  const { report } = useNotify();
  const [status, setStatus] = useState<ContributionStatus | ''>('');
  const [data, setData] = useState<{ contributions: Contribution[]; curator: boolean } | null>(
    null,
  );
  const [loading, setLoading] = useState(false);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      setLoading(true);
      try {
        setData(await datanetsApi.contributions(datanet.id, status || undefined, signal));
      } catch (err) {
        if (!signal?.aborted) report(err);
      } finally {
        if (!signal?.aborted) setLoading(false);
      }
    },
    [datanet.id, status, report],
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
      <SignInNotice title="Sign in to see contributions">
        You see your own contributions to this datanet; its owner and curators see all of them.
      </SignInNotice>
    );
  }

  return (
    <Card
      title={data?.curator ? 'All contributions' : 'Your contributions'}
      testId="contributions-card"
      actions={
        <>
          {loading && data && <span className="spinner" aria-hidden="true" />}
          <select
            value={status}
            aria-label="Filter by status"
            onChange={(e) => setStatus(e.target.value as ContributionStatus | '')}
            data-testid="contributions-filter"
          >
            <option value="">All statuses</option>
            <option value="pending">Pending</option>
            <option value="approved">Approved</option>
            <option value="rejected">Rejected</option>
          </select>
          <button
            type="button"
            className="button button-secondary button-small"
            onClick={() => void load()}
            disabled={loading}
            data-testid="contributions-refresh"
          >
            Refresh
          </button>
        </>
      }
    >
      {!data ? (
        <Spinner label="Loading contributions…" />
      ) : data.contributions.length === 0 ? (
        <p className="muted" data-testid="contributions-empty">
          {status
            ? `No ${status} contributions.`
            : data.curator
              ? 'Nobody has contributed yet.'
              : 'You have not contributed to this datanet yet.'}
        </p>
      ) : (
        <ContributionsTable contributions={data.contributions} showContributor={data.curator} />
      )}
    </Card>
  );
}
