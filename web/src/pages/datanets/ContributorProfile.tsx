import { useEffect, useState } from 'react';
import { Icon } from '../../components/icons';
import { PageHeader } from '../../components/PageHeader';
import { Card, Spinner } from '../../components/ui';
import { datanetsApi, toApiError, type ApiError, type ContributorProfile } from '../../lib/api';
import { useAuth } from '../../lib/auth';
import { useNotify } from '../../lib/notify';
import { Link } from '../../lib/router';
import { formatScore, Hash } from './common';

function formatRatio(ratio: number | null): string {
  return ratio === null || !Number.isFinite(ratio) ? '—' : `${Math.round(ratio * 1000) / 10}%`;
}

/** A contributor's record across datanets: totals, acceptance ratio and one row per datanet. */
export function ContributorProfilePage({ address }: { address: string }) {
  const { session } = useAuth();
  const { report } = useNotify();
  const [profile, setProfile] = useState<ContributorProfile | null>(null);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  const mine = session !== null && session.address.toLowerCase() === address.toLowerCase();

  useEffect(() => {
    const ctrl = new AbortController();
    datanetsApi
      .contributor(address, ctrl.signal)
      .then((p) => {
        setProfile(p);
        setLoadError(null);
      })
      .catch((err) => {
        if (ctrl.signal.aborted) return;
        setLoadError(toApiError(err));
        report(err);
      });
    return () => ctrl.abort();
  }, [address, report]);

  return (
    <div className="page" data-testid="page-contributor" data-address={profile?.address ?? address}>
      <Link to="/datanets" className="back-link" data-testid="back-to-datanets">
        ← Datanets
      </Link>
      <PageHeader title={mine ? 'My contributions' : 'Contributor'}>
        <Hash value={profile?.address ?? address} testId="contributor-address" head={42} copy />
      </PageHeader>
      {!profile ? (
        loadError ? (
          <div className="notice" data-testid="contributor-unavailable">
            <Icon name="info" />
            <div>
              <p className="notice-title">The contributor could not be loaded</p>
              <p className="muted">{loadError.message}</p>
            </div>
          </div>
        ) : (
          <Spinner label="Loading the contributor…" />
        )
      ) : (
        <>
          <dl className="stats" data-testid="contributor-stats">
            <div>
              <dt>Contributions</dt>
              <dd data-testid="profile-contributions">{profile.contributions}</dd>
            </div>
            <div>
              <dt>Approved</dt>
              <dd data-testid="profile-approved">{profile.approved}</dd>
            </div>
            <div>
              <dt>Acceptance ratio</dt>
              <dd
                data-testid="profile-acceptance"
                data-ratio={profile.acceptanceRatio ?? ''}
                title="Approved contributions over all contributions"
              >
                {formatRatio(profile.acceptanceRatio)}
              </dd>
            </div>
            <div>
              <dt>Rows</dt>
              <dd data-testid="profile-rows">{profile.rows}</dd>
            </div>
            <div>
              <dt>Accepted rows</dt>
              <dd data-testid="profile-accepted-rows">{profile.acceptedRows}</dd>
            </div>
          </dl>
          <Card title="Datanets" testId="contributor-datanets-card">
            {profile.datanets.length === 0 ? (
              <p className="muted" data-testid="contributor-empty">
                {mine
                  ? 'You have not contributed to any datanet yet.'
                  : 'This address has not contributed to any datanet.'}
              </p>
            ) : (
              <div className="table-wrap">
                <table className="table" data-testid="contributor-datanets-table">
                  <thead>
                    <tr>
                      <th>Datanet</th>
                      <th className="num">Contributions</th>
                      <th className="num">Approved</th>
                      <th className="num">Rejected</th>
                      <th className="num">Pending</th>
                      <th className="num">Accepted rows</th>
                      <th className="num">Mean score</th>
                    </tr>
                  </thead>
                  <tbody>
                    {profile.datanets.map((d) => (
                      <tr
                        key={d.datanetId}
                        data-testid="contributor-datanet-row"
                        data-datanet-id={d.datanetId}
                      >
                        <td className="cell-main">
                          <Link
                            to={`/datanets/${d.datanetId}`}
                            className="strong"
                            data-testid="contributor-datanet-link"
                          >
                            {d.name}
                          </Link>
                          <span className="cell-sub">#{d.datanetId}</span>
                        </td>
                        <td className="num" data-testid="contributor-datanet-contributions">
                          {d.contributions}
                        </td>
                        <td className="num strong" data-testid="contributor-datanet-approved">
                          {d.approved}
                        </td>
                        <td className="num">{d.rejected}</td>
                        <td className="num">{d.pending}</td>
                        <td className="num" data-testid="contributor-datanet-rows">
                          {d.acceptedRows} / {d.rows}
                        </td>
                        <td className="num">{formatScore(d.meanScore)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </Card>
        </>
      )}
    </div>
  );
}
