import { Card } from '../../components/ui';
import { formatDate } from '../../lib/format';
import type { DatanetTabProps } from './DatanetDetail';
import { formatBytes, Hash } from './common';

export function OverviewTab({ datanet, owner }: DatanetTabProps) {
  const { rules } = datanet;
  return (
    <div className="grid">
      <Card title="About" testId="overview-about">
        {datanet.description ? (
          <p className="prose" data-testid="datanet-description">
            {datanet.description}
          </p>
        ) : (
          <p className="muted" data-testid="datanet-description">
            No description.
          </p>
        )}
        {datanet.tags.length > 0 && (
          <ul className="tag-list" data-testid="datanet-tags">
            {datanet.tags.map((t) => (
              <li key={t} className="chip">
                {t}
              </li>
            ))}
          </ul>
        )}
      </Card>

      <Card title="Provenance" testId="overview-provenance">
        <dl className="kv">
          <dt>Datanet id</dt>
          <dd data-testid="datanet-id">{datanet.id}</dd>
          <dt>Owner</dt>
          <dd>
            <Hash value={datanet.owner} testId="datanet-owner" copy />
            {owner && <span className="muted small"> (you)</span>}
          </dd>
          <dt>Curators</dt>
          <dd data-testid="datanet-curators">
            {datanet.curators.length === 0 ? (
              <span className="muted">Only the owner curates.</span>
            ) : (
              <ul className="plain-list">
                {datanet.curators.map((c) => (
                  <li key={c}>
                    <Hash value={c} copy />
                  </li>
                ))}
              </ul>
            )}
          </dd>
          <dt>Read access</dt>
          <dd data-testid="overview-can-read" data-can-read={String(datanet.canRead)}>
            {datanet.policy === 'open'
              ? 'Open: anyone may read the content.'
              : datanet.canRead
                ? 'Permissioned: you may read the content.'
                : 'Permissioned: you may not read the content without a grant.'}
          </dd>
          <dt>Metadata hash</dt>
          <dd>
            <Hash value={datanet.metadataHash} testId="datanet-metadata-hash" copy />
          </dd>
          <dt>Created</dt>
          <dd>{formatDate(datanet.createdAt)}</dd>
          <dt>Creation tx</dt>
          <dd>
            <Hash value={datanet.txHash} testId="datanet-tx" copy />
          </dd>
        </dl>
      </Card>

      <Card title="Contribution rules" testId="overview-rules">
        <dl className="kv">
          <dt>Licence</dt>
          <dd data-testid="datanet-license">{datanet.license}</dd>
          <dt>File types</dt>
          <dd>{rules.acceptedTypes.join(', ')}</dd>
          <dt>Largest file</dt>
          <dd>{formatBytes(rules.maxFileBytes)}</dd>
          <dt>Daily quota</dt>
          <dd>
            {rules.dailyQuotaPerContributor} per contributor, {rules.dailyQuotaPerDatanet} in all
          </dd>
        </dl>
      </Card>
    </div>
  );
}
