// /market — published models to browse and search with what a buyer weighs: base model,
// datanets, price, usage, revenue, evaluation and attribution statistics
// (GET /api/market/models). Each links to its model page (/market/models/{id}).
import { useEffect, useMemo, useState } from 'react';
import { Icon } from '../../components/icons';
import { PageHeader } from '../../components/PageHeader';
import { Badge, Card, Spinner } from '../../components/ui';
import { datanetsApi, type DatanetSummary } from '../../lib/api';
import { formatToken, shortAddress } from '../../lib/format';
import { useNotify } from '../../lib/notify';
import { Link } from '../../lib/router';
import {
  evaluationText,
  MARKET_SORTS,
  marketApi,
  openText,
  type MarketList,
  type MarketSort,
} from './api';

const PAGE = 20;

const SORT_LABEL: Record<MarketSort, string> = {
  newest: 'Newest',
  revenue: 'Revenue',
  usage: 'Usage',
  price: 'Price (cheapest first)',
};

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = window.setTimeout(() => setV(value), ms);
    return () => window.clearTimeout(t);
  }, [value, ms]);
  return v;
}

export function MarketPage() {
  const { report } = useNotify();
  const [q, setQ] = useState('');
  const [base, setBase] = useState('');
  const [datanet, setDatanet] = useState('');
  const [sort, setSort] = useState<MarketSort>('newest');
  const [all, setAll] = useState(false);
  const [offset, setOffset] = useState(0);
  const [list, setList] = useState<MarketList | null>(null);
  const [bases, setBases] = useState<string[]>([]);
  const [datanets, setDatanets] = useState<DatanetSummary[]>([]);
  const query = useDebounced(q.trim(), 250);

  // The filters' choices: base models of the published models, and the node's datanets.
  useEffect(() => {
    const ctrl = new AbortController();
    Promise.all([
      marketApi.list({ limit: 100, all: true }, ctrl.signal),
      datanetsApi.list({}, ctrl.signal),
    ])
      .then(([models, d]) => {
        setBases([...new Set(models.models.map((m) => m.baseModel.name))].sort());
        setDatanets(d.datanets);
      })
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) report(err);
      });
    return () => ctrl.abort();
  }, [report]);

  useEffect(() => setOffset(0), [query, base, datanet, sort, all]);

  useEffect(() => {
    const ctrl = new AbortController();
    marketApi
      .list(
        {
          q: query,
          base,
          ...(datanet ? { datanet: Number(datanet) } : {}),
          sort,
          limit: PAGE,
          offset,
          all,
        },
        ctrl.signal,
      )
      .then(setList)
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) report(err);
      });
    return () => ctrl.abort();
  }, [query, base, datanet, sort, offset, all, report]);

  const range = useMemo(() => {
    if (!list || list.total === 0) return '';
    return `${list.offset + 1}–${list.offset + list.models.length} of ${list.total}`;
  }, [list]);

  return (
    <div className="page" data-testid="page-market">
      <PageHeader title="Model market">
        Published models with what a buyer weighs: the base model and the datanets they were trained
        on, their price, how much they are used and earn, how they score on held-out rows, and how
        their revenue reaches the contributors behind them. Stake OPEN on a model from its page to
        share its stakers&apos; part of every paid call.
      </PageHeader>
      <Card
        title="Models"
        testId="market-card"
        actions={<span className="muted small">{range}</span>}
      >
        <div className="toolbar" style={{ flexWrap: 'wrap', marginBottom: 16 }}>
          <input
            type="search"
            className="search-input"
            placeholder="Search name, description, base, datanet"
            aria-label="Search models"
            value={q}
            maxLength={200}
            onChange={(e) => setQ(e.target.value)}
            data-testid="market-search"
          />
          <select
            value={base}
            onChange={(e) => setBase(e.target.value)}
            aria-label="Base model"
            data-testid="market-base"
          >
            <option value="">Any base model</option>
            {bases.map((b) => (
              <option key={b} value={b}>
                {b}
              </option>
            ))}
          </select>
          <select
            value={datanet}
            onChange={(e) => setDatanet(e.target.value)}
            aria-label="Datanet"
            data-testid="market-datanet"
          >
            <option value="">Any datanet</option>
            {datanets.map((d) => (
              <option key={d.id} value={d.id}>
                #{d.id} {d.name}
              </option>
            ))}
          </select>
          <label className="small">
            Sort{' '}
            <select
              value={sort}
              onChange={(e) => setSort(e.target.value as MarketSort)}
              data-testid="market-sort"
            >
              {MARKET_SORTS.map((s) => (
                <option key={s} value={s}>
                  {SORT_LABEL[s]}
                </option>
              ))}
            </select>
          </label>
          <label className="checkbox small">
            <input
              type="checkbox"
              checked={all}
              onChange={(e) => setAll(e.target.checked)}
              data-testid="market-show-inactive"
            />{' '}
            Show deactivated
          </label>
        </div>
        {list === null ? (
          <Spinner label="Loading the market…" />
        ) : list.models.length === 0 ? (
          <div className="empty" data-testid="market-empty">
            <Icon name="models" />
            <p className="muted">
              {query || base || datanet
                ? 'No published model matches.'
                : 'No models yet. Train an adapter in the Model Factory, then publish it from its training run.'}
            </p>
          </div>
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="market-table">
              <thead>
                <tr>
                  <th className="num">ID</th>
                  <th>Model</th>
                  <th>Base · datanets</th>
                  <th className="num">Price / 1k (in · out)</th>
                  <th className="num">Usage</th>
                  <th className="num">Revenue</th>
                  <th>Evaluation</th>
                  <th>Attribution</th>
                  <th>Owner</th>
                </tr>
              </thead>
              <tbody>
                {list.models.map((m) => (
                  <tr key={m.id} data-testid="market-row" data-model-id={m.id}>
                    <td className="num">{m.id}</td>
                    <td className="cell-main">
                      <Link
                        to={`/market/models/${m.id}`}
                        className="strong"
                        data-testid="market-model-link"
                      >
                        {m.name}
                      </Link>
                      {!m.active && <Badge tone="warn">deactivated</Badge>}
                      {m.description && <span className="cell-sub">{m.description}</span>}
                    </td>
                    <td>
                      <span data-testid="market-base-name">{m.baseModel.name}</span>
                      <span className="cell-sub">
                        {m.datanets.map((d, i) => (
                          <span key={`${d.id}@${d.version}`}>
                            {i > 0 && ', '}
                            <Link to={`/datanets/${d.id}`}>{d.name ?? `#${d.id}`}</Link> v
                            {d.version}
                          </span>
                        ))}
                      </span>
                    </td>
                    <td className="num small" data-testid="market-price">
                      {formatToken(m.price.pricePer1kInput)} ·{' '}
                      {formatToken(m.price.pricePer1kOutput)}
                    </td>
                    <td className="num small" data-testid="market-usage">
                      {m.usage.calls} calls
                      <span className="cell-sub">{m.usage.paidCalls} paid</span>
                    </td>
                    <td
                      className="num small"
                      data-testid="market-revenue"
                      data-value={m.revenue.fees}
                    >
                      {openText(m.revenue.fees)}
                    </td>
                    <td className="small">{evaluationText(m)}</td>
                    <td className="small">
                      {m.attribution.receipts} receipts
                      <span className="cell-sub">{m.attribution.contributors} contributors</span>
                    </td>
                    <td>
                      <span className="mono small" title={m.owner}>
                        {shortAddress(m.owner)}
                      </span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {list && list.total > PAGE && (
          <div className="toolbar" style={{ marginTop: 12 }}>
            <button
              type="button"
              className="button button-secondary button-small"
              disabled={offset === 0}
              onClick={() => setOffset(Math.max(0, offset - PAGE))}
              data-testid="market-prev"
            >
              Previous
            </button>
            <button
              type="button"
              className="button button-secondary button-small"
              disabled={offset + PAGE >= list.total}
              onClick={() => setOffset(offset + PAGE)}
              data-testid="market-next"
            >
              Next
            </button>
          </div>
        )}
      </Card>
    </div>
  );
}
