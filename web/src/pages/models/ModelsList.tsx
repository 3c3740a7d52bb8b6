// /models — the models published on this node: each an ERC-721 Model ID in the ModelRegistry,
// with its base model, the datanet versions it was trained on, its prices and revenue split.
import { useEffect, useState } from 'react';
import { Icon } from '../../components/icons';
import { PageHeader } from '../../components/PageHeader';
import { Badge, Card, Spinner } from '../../components/ui';
import { formatDate, formatToken, shortAddress } from '../../lib/format';
import { useNotify } from '../../lib/notify';
import { Link } from '../../lib/router';
import { Hash } from '../datanets/common';
import { modelsApi, type PublishedModel } from './api';

export function ModelsPage() {
  const { report } = useNotify();
  const [models, setModels] = useState<PublishedModel[] | null>(null);
  const [all, setAll] = useState(false);

  useEffect(() => {
    const ctrl = new AbortController();
    modelsApi
      .list({ all }, ctrl.signal)
      .then(({ models: list }) => setModels(list))
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) report(err);
      });
    return () => ctrl.abort();
  }, [all, report]);

  return (
    <div className="page" data-testid="page-models">
      <PageHeader title="Models">
        Fine-tuned LoRA adapters published on this node. Each is an ERC-721 Model ID on-chain that
        records its base model, the adapter&apos;s hash, the datanet versions it was trained on, its
        price per 1,000 tokens and how each call&apos;s revenue is split.
      </PageHeader>
      <Card
        title="Published models"
        testId="models-card"
        actions={
          <label className="checkbox small">
            <input
              type="checkbox"
              checked={all}
              onChange={(e) => setAll(e.target.checked)}
              data-testid="models-show-inactive"
            />{' '}
            Show deactivated
          </label>
        }
      >
        {models === null ? (
          <Spinner label="Loading models…" />
        ) : models.length === 0 ? (
          <div className="empty" data-testid="models-empty">
            <Icon name="models" />
            <p className="muted">
              No models yet. Train an adapter in the <Link to="/factory">Model Factory</Link>, then
              publish it from its training run.
            </p>
          </div>
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="models-table">
              <thead>
                <tr>
                  <th className="num">ID</th>
                  <th>Name</th>
                  <th>Base model</th>
                  <th>Datanets</th>
                  <th className="num">Input / 1k</th>
                  <th className="num">Output / 1k</th>
                  <th>Split (owner / stakers / contributors)</th>
                  <th>Adapter</th>
                  <th>Owner</th>
                  <th>Published</th>
                </tr>
              </thead>
              <tbody>
                {models.map((m) => (
                  <tr key={m.id} data-testid="model-row" data-model-id={m.id}>
                    <td className="num">{m.id}</td>
                    <td className="cell-main">
                      <span className="strong" data-testid="model-name">
                        {m.name}
                      </span>
                      {!m.active && <Badge tone="warn">deactivated</Badge>}
                      {m.description && <span className="cell-sub">{m.description}</span>}
                    </td>
                    <td data-testid="model-base">{m.baseModelName}</td>
                    <td>
                      {m.datanets.map((d, i) => (
                        <span key={`${d.id}@${d.version}`}>
                          {i > 0 && ', '}
                          <Link to={`/datanets/${d.id}`}>#{d.id}</Link> v{d.version}
                        </span>
                      ))}
                    </td>
                    <td className="num" data-testid="model-price-in">
                      {formatToken(m.pricePer1kInput)} OPEN
                    </td>
                    <td className="num" data-testid="model-price-out">
                      {formatToken(m.pricePer1kOutput)} OPEN
                    </td>
                    <td>
                      {m.split.owner / 100}% / {m.split.stakers / 100}% /{' '}
                      {m.split.contributors / 100}%
                    </td>
                    <td>
                      <Hash value={m.adapterHash} testId="model-adapter" />
                    </td>
                    <td>
                      <span className="mono small" title={m.owner}>
                        {shortAddress(m.owner)}
                      </span>
                    </td>
                    <td className="small">{formatDate(m.createdAt)}</td>
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
