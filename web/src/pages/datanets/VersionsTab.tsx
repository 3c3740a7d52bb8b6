import { Fragment, useEffect, useState } from 'react';
import { Card, Spinner } from '../../components/ui';
import { datanetsApi, type VersionDiff } from '../../lib/api';
import { formatDate, shortAddress } from '../../lib/format';
import { useNotify } from '../../lib/notify';
import type { DatanetTabProps } from './DatanetDetail';
import { ContributorLink, Hash } from './common';

/** How many of a version's added row hashes the diff lists. */
const DIFF_ROW_LIMIT = 50;
const COLUMNS = 6;

/** What a version added: previous root → new root, rows per contributor, the first row hashes. */
function VersionDiffPanel({ datanetId, version }: { datanetId: number; version: number }) {
  const { report } = useNotify();
  const [diff, setDiff] = useState<VersionDiff | null>(null);
  const [failed, setFailed] = useState(false);

  useEffect(() => {
    const ctrl = new AbortController();
    datanetsApi
      .versionDiff(datanetId, version, ctrl.signal)
      .then(setDiff)
      .catch((err) => {
        if (ctrl.signal.aborted) return;
        setFailed(true);
        report(err);
      });
    return () => ctrl.abort();
  }, [datanetId, version, report]);

  if (!diff) {
    return failed ? (
      <p className="muted" data-testid="version-diff-failed">
        The diff could not be loaded.
      </p>
    ) : (
      <Spinner label={`Loading the diff of v${version}…`} />
    );
  }

  const byContributor = Object.entries(diff.addedByContributor).sort(
    ([a, x], [b, y]) => y - x || a.localeCompare(b),
  );
  const shown = diff.added.slice(0, DIFF_ROW_LIMIT);
  return (
    <div className="version-diff" data-testid="version-diff" data-version={version}>
      <p className="version-diff-roots" data-testid="version-diff-roots">
        {diff.previousRoot ? (
          <Hash value={diff.previousRoot} testId="diff-previous-root" />
        ) : (
          <span className="muted" data-testid="diff-previous-root" data-value="">
            empty (first version)
          </span>
        )}
        <span aria-label="becomes"> → </span>
        <Hash value={diff.version.root} testId="diff-root" />
        <span className="muted small">
          {' '}
          +{diff.added.length} row{diff.added.length === 1 ? '' : 's'}
        </span>
      </p>
      <div className="version-diff-grid">
        <div>
          <h3 className="version-diff-title">Rows added per contributor</h3>
          {byContributor.length === 0 ? (
            <p className="muted small">No rows added.</p>
          ) : (
            <table className="table table-compact" data-testid="diff-contributors">
              <thead>
                <tr>
                  <th>Contributor</th>
                  <th className="num">Rows</th>
                </tr>
              </thead>
              <tbody>
                {byContributor.map(([contributor, count]) => (
                  <tr
                    key={contributor}
                    data-testid="diff-contributor-row"
                    data-contributor={contributor}
                  >
                    <td>
                      <ContributorLink address={contributor} />
                    </td>
                    <td className="num" data-testid="diff-contributor-count">
                      {count}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
        <div>
          <h3 className="version-diff-title">
            {diff.added.length > DIFF_ROW_LIMIT
              ? `First ${DIFF_ROW_LIMIT} of ${diff.added.length} row hashes`
              : 'Row hashes'}
          </h3>
          <ol className="plain-list diff-row-hashes" data-testid="diff-row-hashes">
            {shown.map((row, i) => (
              <li key={`${i}:${row.rowHash}`}>
                <code
                  className="mono small"
                  title={`Contribution ${row.contributionId} by ${row.contributor}`}
                  data-testid="diff-row-hash"
                  data-value={row.rowHash}
                >
                  {row.rowHash}
                </code>
              </li>
            ))}
          </ol>
          {diff.added.length > DIFF_ROW_LIMIT && (
            <p className="muted small" data-testid="diff-rows-more">
              and {diff.added.length - DIFF_ROW_LIMIT} more
            </p>
          )}
        </div>
      </div>
    </div>
  );
}

export function VersionsTab({ datanet }: DatanetTabProps) {
  const { versions } = datanet;
  const [expanded, setExpanded] = useState<Set<number>>(new Set());
  const toggle = (version: number) =>
    setExpanded((prev) => {
      const next = new Set(prev);
      if (next.has(version)) next.delete(version);
      else next.add(version);
      return next;
    });
  return (
    <Card title="Versions" testId="versions-card">
      {!datanet.canRead && versions.length > 0 && (
        <p className="muted small versions-note" data-testid="versions-no-read">
          This datanet is permissioned: its roots are public, but exporting its rows needs a grant
          (see Access).
        </p>
      )}
      {versions.length === 0 ? (
        <p className="muted" data-testid="versions-empty">
          No version yet. A version is committed when a curator approves contributions.
        </p>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="versions-table">
            <thead>
              <tr>
                <th>Version</th>
                <th className="num">Rows</th>
                <th>Merkle root</th>
                <th>Transaction</th>
                <th>Committed</th>
                <th aria-label="Export" />
              </tr>
            </thead>
            <tbody>
              {versions.map((v) => {
                const open = expanded.has(v.version);
                return (
                  <Fragment key={v.version}>
                    <tr data-testid="version-row" data-version={v.version}>
                      <td>
                        <span className="strong">v{v.version}</span>
                        {datanet.canRead && (
                          <button
                            type="button"
                            className="link-button cell-sub"
                            aria-expanded={open}
                            aria-controls={`version-diff-${v.version}`}
                            title={`What v${v.version} added`}
                            onClick={() => toggle(v.version)}
                            data-testid="version-diff-toggle"
                          >
                            <span aria-hidden="true">{open ? '▾' : '▸'}</span> Diff
                          </button>
                        )}
                      </td>
                      <td className="num">
                        <span data-testid="version-rows">{v.rowCount}</span>
                        <span className="cell-sub" data-testid="version-added">
                          +{v.addedRows}
                        </span>
                      </td>
                      <td>
                        <Hash value={v.root} testId="version-root" />
                      </td>
                      <td>
                        <Hash value={v.txHash} testId="version-tx" />
                      </td>
                      <td>
                        {formatDate(v.committedAt)}
                        <span className="cell-sub">
                          by{' '}
                          <span className="mono" title={v.committedBy}>
                            {shortAddress(v.committedBy)}
                          </span>
                        </span>
                      </td>
                      <td className="actions">
                        {datanet.canRead ? (
                          <a
                            className="button button-secondary button-small"
                            href={datanetsApi.exportUrl(datanet.id, v.version)}
                            download={`datanet-${datanet.id}-v${v.version}.jsonl`}
                            data-testid="version-export"
                          >
                            Download export
                          </a>
                        ) : (
                          <span className="muted small" data-testid="version-export-locked">
                            No read access
                          </span>
                        )}
                      </td>
                    </tr>
                    {open && (
                      <tr
                        id={`version-diff-${v.version}`}
                        className="version-diff-row"
                        data-testid="version-diff-row"
                        data-version={v.version}
                      >
                        <td colSpan={COLUMNS}>
                          <VersionDiffPanel datanetId={datanet.id} version={v.version} />
                        </td>
                      </tr>
                    )}
                  </Fragment>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}
