import { useCallback, useEffect, useState } from 'react';
import { Icon } from '../../components/icons';
import { PageHeader } from '../../components/PageHeader';
import { Badge, Spinner } from '../../components/ui';
import { datanetsApi, toApiError, type ApiError, type DatanetDetail } from '../../lib/api';
import { useAuth } from '../../lib/auth';
import { useNotify } from '../../lib/notify';
import { Link } from '../../lib/router';
import { AccessTab } from './AccessTab';
import { PolicyBadge } from './common';
import { ContributeTab } from './ContributeTab';
import { ContributionsTab } from './ContributionsTab';
import { LeaderboardTab } from './LeaderboardTab';
import { OverviewTab } from './OverviewTab';
import { ReviewTab } from './ReviewTab';
import { VersionsTab } from './VersionsTab';

export type TabId =
  'overview' | 'contribute' | 'contributions' | 'review' | 'versions' | 'leaderboard' | 'access';

const TAB_LABELS: Record<TabId, string> = {
  overview: 'Overview',
  contribute: 'Contribute',
  contributions: 'Contributions',
  review: 'Review',
  versions: 'Versions',
  leaderboard: 'Leaderboard',
  access: 'Access',
};

function initialTab(): TabId {
  const tab = new URLSearchParams(window.location.search).get('tab');
  return tab && Object.hasOwn(TAB_LABELS, tab) ? (tab as TabId) : 'overview';
}

export interface DatanetTabProps {
  datanet: DatanetDetail;
  /** Reloads the datanet (stats, versions, curators, canRead) after a change. */
  reload: () => Promise<void>;
  /** Whether the signed-in wallet is the owner or a curator. */
  curator: boolean;
  owner: boolean;
}

export function DatanetDetailPage({ id }: { id: number }) {
  const { session } = useAuth();
  const { report } = useNotify();
  const [datanet, setDatanet] = useState<DatanetDetail | null>(null);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  const [tab, setTabState] = useState<TabId>(initialTab);
  const viewer = session?.address ?? null;

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const d = await datanetsApi.get(id, signal);
        setDatanet(d);
        setLoadError(null);
      } catch (err) {
        if (signal?.aborted) return;
        setLoadError(toApiError(err));
        report(err);
      }
    },
    [id, report],
  );

  // Reload when the viewer changes: canRead and the role depend on who is signed in.
  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load, viewer]);

  const reload = useCallback(() => load(), [load]);

  const setTab = (next: TabId) => {
    setTabState(next);
    const url = new URL(window.location.href);
    if (next === 'overview') url.searchParams.delete('tab');
    else url.searchParams.set('tab', next);
    window.history.replaceState(null, '', url.pathname + url.search);
  };

  if (!datanet) {
    return (
      <div className="page" data-testid="page-datanet" data-datanet-id={id}>
        <Link to="/datanets" className="back-link" data-testid="back-to-datanets">
          ← Datanets
        </Link>
        {loadError ? (
          <div className="notice" data-testid="datanet-unavailable">
            <Icon name="info" />
            <div>
              <p className="notice-title">
                {loadError.status === 404
                  ? `There is no datanet ${id}`
                  : 'The datanet could not be loaded'}
              </p>
              <p className="muted">{loadError.message}</p>
            </div>
          </div>
        ) : (
          <Spinner label="Loading datanet…" />
        )}
      </div>
    );
  }

  const owner = viewer !== null && viewer.toLowerCase() === datanet.owner.toLowerCase();
  const curator =
    owner ||
    (viewer !== null && datanet.curators.some((c) => c.toLowerCase() === viewer.toLowerCase()));
  const tabs = (Object.keys(TAB_LABELS) as TabId[]).filter((t) => t !== 'review' || curator);
  const active = tabs.includes(tab) ? tab : 'overview';
  const props: DatanetTabProps = { datanet, reload, curator, owner };
  const { stats } = datanet;

  return (
    <div
      className="page"
      data-testid="page-datanet"
      data-datanet-id={datanet.id}
      data-policy={datanet.policy}
    >
      <Link to="/datanets" className="back-link" data-testid="back-to-datanets">
        ← Datanets
      </Link>
      <PageHeader title={datanet.name}>{datanet.summary || undefined}</PageHeader>
      <div className="chips" data-testid="datanet-chips">
        <PolicyBadge policy={datanet.policy} />
        <span className="chip">{datanet.modality}</span>
        <span className="chip" title="Licence contributors agree to">
          {datanet.license}
        </span>
        <span
          className={`chip ${datanet.canRead ? 'chip-ok' : 'chip-fail'}`}
          data-testid="can-read"
          data-can-read={String(datanet.canRead)}
        >
          {datanet.canRead ? 'You may read its content' : 'Content not readable by you'}
        </span>
        {owner ? (
          <Badge tone="info" testId="role">
            Owner
          </Badge>
        ) : curator ? (
          <Badge tone="info" testId="role">
            Curator
          </Badge>
        ) : null}
      </div>

      <dl className="stats" data-testid="datanet-stats">
        <div>
          <dt>Latest version</dt>
          <dd data-testid="stat-version">
            {stats.latestVersion > 0 ? `v${stats.latestVersion}` : '—'}
          </dd>
        </div>
        <div>
          <dt>Approved rows</dt>
          <dd data-testid="stat-approved-rows">{stats.approvedRows}</dd>
        </div>
        <div>
          <dt>Pending</dt>
          <dd data-testid="stat-pending">{stats.contributions.pending}</dd>
        </div>
        <div>
          <dt>Approved</dt>
          <dd data-testid="stat-approved">{stats.contributions.approved}</dd>
        </div>
        <div>
          <dt>Rejected</dt>
          <dd data-testid="stat-rejected">{stats.contributions.rejected}</dd>
        </div>
      </dl>

      <div className="tabs" role="tablist" aria-label="Datanet sections">
        {tabs.map((t) => (
          <button
            key={t}
            type="button"
            role="tab"
            id={`tab-${t}`}
            aria-selected={t === active}
            aria-controls={`panel-${t}`}
            className={`tab${t === active ? ' active' : ''}`}
            onClick={() => setTab(t)}
            data-testid={`tab-${t}`}
          >
            {TAB_LABELS[t]}
            {t === 'review' && stats.contributions.pending > 0 && (
              <span className="tab-count">{stats.contributions.pending}</span>
            )}
          </button>
        ))}
      </div>
      <div
        key={viewer ?? 'anonymous'}
        className="tab-panel"
        role="tabpanel"
        id={`panel-${active}`}
        aria-labelledby={`tab-${active}`}
        data-testid={`panel-${active}`}
      >
        {active === 'overview' && <OverviewTab {...props} />}
        {active === 'contribute' && <ContributeTab {...props} />}
        {active === 'contributions' && <ContributionsTab {...props} />}
        {active === 'review' && <ReviewTab {...props} />}
        {active === 'versions' && <VersionsTab {...props} />}
        {active === 'leaderboard' && <LeaderboardTab {...props} />}
        {active === 'access' && <AccessTab {...props} />}
      </div>
    </div>
  );
}
