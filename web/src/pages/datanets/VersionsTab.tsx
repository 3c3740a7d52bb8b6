import { Card } from '../../components/ui';
import { datanetsApi } from '../../lib/api';
import { formatDate, shortAddress } from '../../lib/format';
import type { DatanetTabProps } from './DatanetDetail';
import { Hash } from './common';

export function VersionsTab({ datanet }: DatanetTabProps) {
  const { versions } = datanet;
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
              {versions.map((v) => (
                <tr key={v.version} data-testid="version-row" data-version={v.version}>
                  <td className="strong">v{v.version}</td>
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
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}
