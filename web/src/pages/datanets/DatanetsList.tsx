import { useEffect, useRef, useState } from 'react';
import { Icon } from '../../components/icons';
import { PageHeader } from '../../components/PageHeader';
import { Card, Spinner } from '../../components/ui';
import { datanetsApi, type DatanetSummary } from '../../lib/api';
import { useAuth } from '../../lib/auth';
import { shortAddress } from '../../lib/format';
import { useNotify } from '../../lib/notify';
import { Link } from '../../lib/router';
import { PolicyBadge } from './common';

export function DatanetsListPage() {
  const { session } = useAuth();
  const { report } = useNotify();
  const [query, setQuery] = useState('');
  const [mine, setMine] = useState(false);
  const [datanets, setDatanets] = useState<DatanetSummary[] | null>(null);
  const [loading, setLoading] = useState(true);
  const owner = mine && session ? session.address : undefined;
  const loaded = useRef(false);

  useEffect(() => {
    const ctrl = new AbortController();
    setLoading(true);
    // Debounce typing; the first load goes at once.
    const timer = window.setTimeout(
      async () => {
        try {
          const { datanets } = await datanetsApi.list(
            { q: query.trim() || undefined, owner },
            ctrl.signal,
          );
          loaded.current = true;
          setDatanets(datanets);
        } catch (err) {
          if (!ctrl.signal.aborted) report(err);
        } finally {
          if (!ctrl.signal.aborted) setLoading(false);
        }
      },
      loaded.current ? 250 : 0,
    );
    return () => {
      window.clearTimeout(timer);
      ctrl.abort();
    };
  }, [query, owner, report]);

  return (
    <div className="page" data-testid="page-datanets">
      <PageHeader
        title="Datanets"
        actions={
          <Link
            to="/datanets/new"
            className="button button-primary"
            data-testid="create-datanet-link"
          >
            New datanet
          </Link>
        }
      >
        Community-owned datasets for a specialised domain. Contributors submit data under the
        datanet&apos;s licence, curators approve it, and every approved batch is committed on-chain
        as a Merkle-rooted version crediting each contributor.
      </PageHeader>

      <Card
        title="Datanets on this node"
        testId="datanets-card"
        actions={
          <div className="toolbar">
            {session && (
              <label className="checkbox small">
                <input
                  type="checkbox"
                  checked={mine}
                  onChange={(e) => setMine(e.target.checked)}
                  data-testid="datanets-mine"
                />
                Only mine
              </label>
            )}
            <input
              type="search"
              className="search-input"
              placeholder="Search by name or summary"
              aria-label="Search datanets"
              value={query}
              maxLength={100}
              onChange={(e) => setQuery(e.target.value)}
              data-testid="datanets-search"
            />
          </div>
        }
      >
        {datanets === null ? (
          loading ? (
            <Spinner label="Loading datanets…" />
          ) : (
            <p className="muted">Datanets are unavailable.</p>
          )
        ) : datanets.length === 0 ? (
          <div className="empty" data-testid="datanets-empty">
            <Icon name="datanets" />
            <p className="muted">
              {query.trim() || owner
                ? 'No datanet matches.'
                : 'No datanets yet. Create the first one for your domain.'}
            </p>
          </div>
        ) : (
          <div className="table-wrap">
            <table
              className="table"
              data-testid="datanets-table"
              aria-busy={loading ? 'true' : undefined}
            >
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Policy</th>
                  <th>Modality</th>
                  <th className="num">Version</th>
                  <th className="num">Approved rows</th>
                  <th className="num">Pending</th>
                  <th>Owner</th>
                </tr>
              </thead>
              <tbody>
                {datanets.map((d) => (
                  <tr
                    key={d.id}
                    data-testid="datanet-row"
                    data-datanet-id={d.id}
                    data-name={d.name}
                  >
                    <td className="cell-main">
                      <Link to={`/datanets/${d.id}`} className="strong" data-testid="datanet-link">
                        {d.name}
                      </Link>
                      {d.summary && <span className="cell-sub">{d.summary}</span>}
                    </td>
                    <td>
                      <PolicyBadge policy={d.policy} />
                    </td>
                    <td>{d.modality}</td>
                    <td className="num" data-testid="datanet-version">
                      {d.stats.latestVersion > 0 ? `v${d.stats.latestVersion}` : '—'}
                    </td>
                    <td className="num" data-testid="datanet-approved-rows">
                      {d.stats.approvedRows}
                    </td>
                    <td className="num" data-testid="datanet-pending">
                      {d.stats.contributions.pending}
                    </td>
                    <td>
                      <span className="mono small" title={d.owner}>
                        {shortAddress(d.owner)}
                      </span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
    </div>
  );
}
