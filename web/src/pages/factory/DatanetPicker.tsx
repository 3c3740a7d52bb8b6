// The wizard's datanet step: every datanet with whether the caller may read it, a version picker,
// and for a permissioned datanet without a grant an inline access request (signed as on the
// datanet's Access tab); it cannot be selected until the owner grants it.
import { Fragment, useCallback, useEffect, useState } from 'react';
import { Spinner } from '../../components/ui';
import {
  datanetsApi,
  type AccessRequest,
  type DatanetDetail,
  type DatanetSummary,
} from '../../lib/api';
import { formatDate } from '../../lib/format';
import { useNotify } from '../../lib/notify';
import { RequestAccessForm } from '../datanets/AccessTab';
import { AccessStatusBadge, PolicyBadge } from '../datanets/common';
import { useActingWallet } from '../datanets/signing';

export interface DatanetOption {
  summary: DatanetSummary;
  /** Loaded for datanets with a version (their canRead and version list). */
  detail: DatanetDetail | null;
}

/** Why a datanet cannot be trained on now, or null when it can. */
export function unavailableReason(option: DatanetOption): string | null {
  const { summary, detail } = option;
  if (summary.modality !== 'text') return `${summary.modality} datanets cannot be trained on yet`;
  if (summary.stats.latestVersion === 0 || (detail && detail.versions.length === 0))
    return 'no version committed yet';
  if (!detail) return 'loading…';
  if (!detail.canRead) return 'you have no read access';
  return null;
}

function InlineAccess({
  datanet,
  onRecheck,
}: {
  datanet: DatanetDetail;
  onRecheck: () => Promise<void>;
}) {
  const wallet = useActingWallet();
  const { report } = useNotify();
  const [mine, setMine] = useState<AccessRequest[] | null>(null);
  const [checking, setChecking] = useState(false);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const { requests } = await datanetsApi.accessRequests(datanet.id, signal);
        const me = wallet.address?.toLowerCase();
        setMine(requests.filter((r) => r.requester.toLowerCase() === me));
      } catch (err) {
        if (signal?.aborted) return;
        setMine((prev) => prev ?? []);
        report(err);
      }
    },
    [datanet.id, report, wallet.address],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load]);

  const recheck = async () => {
    setChecking(true);
    try {
      await Promise.all([onRecheck(), load()]);
    } finally {
      setChecking(false);
    }
  };

  if (!mine) return <Spinner label="Loading your access requests…" />;
  const latest = mine[0];
  const mayRequest = !latest || latest.status === 'denied' || latest.status === 'revoked';
  return (
    <div className="inline-access" data-testid="inline-access" data-datanet-id={datanet.id}>
      {latest && (
        <p data-testid="inline-access-status" data-status={latest.status}>
          Your request of {formatDate(latest.createdAt)}:{' '}
          <AccessStatusBadge status={latest.status} />{' '}
          {latest.status === 'pending'
            ? 'The owner decides on-chain; check again once granted.'
            : latest.status === 'granted'
              ? 'Granted: check again to select it.'
              : 'You may ask again.'}
        </p>
      )}
      {mayRequest && (
        <RequestAccessForm
          datanetId={datanet.id}
          onRequested={(created) => setMine((prev) => [created, ...(prev ?? [])])}
          onConflict={() => void load()}
        />
      )}
      <div>
        <button
          type="button"
          className="button button-secondary button-small"
          onClick={() => void recheck()}
          disabled={checking}
          data-testid="inline-access-recheck"
        >
          {checking ? 'Checking…' : 'Check access again'}
        </button>
      </div>
    </div>
  );
}

export function DatanetPicker({
  options,
  selected,
  onToggle,
  onVersion,
  onReload,
}: {
  options: DatanetOption[];
  /** Selected datanet ids and their chosen versions. */
  selected: Map<number, number>;
  onToggle: (option: DatanetOption, on: boolean) => void;
  onVersion: (id: number, version: number) => void;
  onReload: (id: number) => Promise<void>;
}) {
  const [accessOpen, setAccessOpen] = useState<number | null>(null);

  if (options.length === 0) {
    return (
      <p className="muted" data-testid="factory-datanets-empty">
        There are no datanets on this node yet. Create one and commit a version first.
      </p>
    );
  }

  return (
    <div className="table-wrap">
      <table className="table" data-testid="factory-datanets-table">
        <thead>
          <tr>
            <th className="select" aria-label="Select" />
            <th>Datanet</th>
            <th>Policy</th>
            <th>Access</th>
            <th>Version</th>
            <th className="num">Rows</th>
          </tr>
        </thead>
        <tbody>
          {options.map((option) => {
            const { summary, detail } = option;
            const reason = unavailableReason(option);
            const version = selected.get(summary.id);
            const versions = [...(detail?.versions ?? [])].sort((a, b) => b.version - a.version);
            const shown = versions.find((v) => v.version === version) ?? versions[0];
            const needsAccess =
              detail !== null &&
              !detail.canRead &&
              detail.versions.length > 0 &&
              detail.policy === 'permissioned' &&
              summary.modality === 'text';
            return (
              <Fragment key={summary.id}>
                <tr
                  data-testid="datanet-option"
                  data-datanet-id={summary.id}
                  data-name={summary.name}
                  data-can-read={detail ? String(detail.canRead) : undefined}
                  data-selectable={reason === null ? 'true' : 'false'}
                  className={reason ? 'row-muted' : undefined}
                >
                  <td className="select">
                    <input
                      type="checkbox"
                      checked={version !== undefined}
                      disabled={reason !== null}
                      onChange={(e) => onToggle(option, e.target.checked)}
                      aria-label={`Train on ${summary.name}`}
                      data-testid="datanet-select"
                    />
                  </td>
                  <td className="cell-main">
                    <span className="strong">{summary.name}</span>{' '}
                    <a
                      href={`/datanets/${summary.id}`}
                      target="_blank"
                      rel="noreferrer"
                      className="small"
                    >
                      open ↗
                    </a>
                    <span className="cell-sub">
                      {reason ? `Not selectable: ${reason}.` : summary.summary || `#${summary.id}`}
                    </span>
                  </td>
                  <td>
                    <PolicyBadge policy={summary.policy} />
                  </td>
                  <td data-testid="datanet-can-read">
                    {detail === null ? (
                      '—'
                    ) : detail.canRead ? (
                      <span className="chip chip-ok">can read</span>
                    ) : (
                      <span className="chip chip-warn">no access</span>
                    )}
                    {needsAccess && (
                      <button
                        type="button"
                        className="link-button cell-sub"
                        onClick={() => setAccessOpen(accessOpen === summary.id ? null : summary.id)}
                        aria-expanded={accessOpen === summary.id}
                        data-testid="datanet-request-access"
                      >
                        {accessOpen === summary.id ? 'Hide' : 'Request access'}
                      </button>
                    )}
                  </td>
                  <td>
                    {versions.length > 0 ? (
                      <select
                        value={shown?.version}
                        onChange={(e) => onVersion(summary.id, Number(e.target.value))}
                        disabled={reason !== null}
                        aria-label={`Version of ${summary.name}`}
                        data-testid="datanet-version"
                      >
                        {versions.map((v, i) => (
                          <option key={v.version} value={v.version}>
                            v{v.version}
                            {i === 0 ? ' (latest)' : ''}
                          </option>
                        ))}
                      </select>
                    ) : (
                      '—'
                    )}
                  </td>
                  <td className="num" data-testid="datanet-rows">
                    {shown ? shown.rowCount : summary.stats.approvedRows}
                  </td>
                </tr>
                {needsAccess && accessOpen === summary.id && (
                  <tr className="inline-access-row">
                    <td />
                    <td colSpan={5}>
                      <InlineAccess datanet={detail} onRecheck={() => onReload(summary.id)} />
                    </td>
                  </tr>
                )}
              </Fragment>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
