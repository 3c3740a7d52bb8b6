import { useEffect, useState } from 'react';
import { Card, Spinner } from '../../components/ui';
import { datanetsApi, type LeaderboardEntry } from '../../lib/api';
import { useNotify } from '../../lib/notify';
import type { DatanetTabProps } from './DatanetDetail';
import { ContributorLink, formatScore } from './common';

export function LeaderboardTab({ datanet }: DatanetTabProps) {
  const { report } = useNotify();
  const [entries, setEntries] = useState<LeaderboardEntry[] | null>(null);
  // Reload when the datanet's figures change (a new version, a new contribution).
  const { stats } = datanet;
  const revision = `${stats.latestVersion}/${stats.contributions.pending}/${stats.contributions.rejected}`;

  useEffect(() => {
    const ctrl = new AbortController();
    datanetsApi
      .leaderboard(datanet.id, ctrl.signal)
      .then(({ contributors }) => setEntries(contributors))
      .catch((err) => !ctrl.signal.aborted && report(err));
    return () => ctrl.abort();
  }, [datanet.id, revision, report]);

  return (
    <Card title="Contributors" testId="leaderboard-card">
      {!entries ? (
        <Spinner label="Loading the leaderboard…" />
      ) : entries.length === 0 ? (
        <p className="muted" data-testid="leaderboard-empty">
          No contributions yet.
        </p>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="leaderboard-table">
            <thead>
              <tr>
                <th className="num">#</th>
                <th>Contributor</th>
                <th className="num">Approved rows</th>
                <th className="num">Rows</th>
                <th className="num">Rejected rows</th>
                <th className="num">Mean score</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e, i) => (
                <tr
                  key={e.contributor}
                  data-testid="leaderboard-row"
                  data-contributor={e.contributor}
                >
                  <td className="num">{i + 1}</td>
                  <td>
                    <ContributorLink address={e.contributor} full />
                  </td>
                  <td className="num strong" data-testid="leaderboard-approved">
                    {e.approvedRows}
                  </td>
                  <td className="num">{e.rows}</td>
                  <td className="num">{e.rejectedRows}</td>
                  <td className="num">{formatScore(e.meanScore)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}
