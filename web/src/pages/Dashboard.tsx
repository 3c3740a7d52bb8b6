import { useCallback, useEffect, useRef, useState } from 'react';
import { Icon } from '../components/icons';
import { useOpenConnect } from '../components/Layout';
import { PageHeader } from '../components/PageHeader';
import { Badge, Card, CopyButton, Spinner } from '../components/ui';
import { api, type Balances, type FaucetResult, type Health, type HealthCheck } from '../lib/api';
import { useAuth } from '../lib/auth';
import { formatDuration, formatToken, shortAddress } from '../lib/format';
import { useNode } from '../lib/node';
import { useNotify } from '../lib/notify';

const REFRESH_MS = 15_000;
const COMPONENTS = ['database', 'chain', 'engine'];
const COMPONENT_LABEL: Record<string, string> = {
  database: 'Database',
  chain: 'Chain',
  engine: 'Engine',
};

function checkDetail(check: HealthCheck): string {
  const parts: string[] = [];
  if (check.blockNumber !== undefined) parts.push(`block ${check.blockNumber}`);
  if (typeof check.latencyMs === 'number')
    parts.push(`${check.latencyMs.toFixed(check.latencyMs < 10 ? 1 : 0)} ms`);
  if (check.detail) parts.push(String(check.detail));
  if (check.error) parts.push(String(check.error));
  return parts.join(' · ');
}

function NodeCard() {
  const { status, loading, reload } = useNode();
  return (
    <Card
      title="Node"
      testId="node-card"
      actions={
        <button
          type="button"
          className="icon-button"
          onClick={() => void reload()}
          aria-label="Refresh node status"
          disabled={loading}
        >
          <Icon name="refresh" size={16} />
        </button>
      }
    >
      {!status ? (
        loading ? (
          <Spinner label="Loading node status…" />
        ) : (
          <p className="muted">Node status is unavailable.</p>
        )
      ) : (
        <dl className="kv">
          <dt>Version</dt>
          <dd data-testid="status-version">
            {status.name} {status.version}
          </dd>
          <dt>Chain ID</dt>
          <dd data-testid="status-chain-id" className="mono">
            {status.chainId}
          </dd>
          <dt>Network</dt>
          <dd data-testid="status-local" data-local={String(status.local)}>
            {status.local ? (
              <Badge tone="warn">Local dev chain</Badge>
            ) : (
              <Badge tone="info">External chain</Badge>
            )}
          </dd>
          <dt>RPC URL</dt>
          <dd data-testid="status-rpc-url" className="mono break">
            {status.rpcUrl}
          </dd>
          <dt>Database</dt>
          <dd data-testid="status-database-kind">
            {status.database.kind === 'pglite'
              ? 'PGlite (embedded)'
              : status.database.kind === 'postgres'
                ? 'PostgreSQL'
                : status.database.kind}
          </dd>
          <dt>Uptime</dt>
          <dd data-testid="status-uptime">{formatDuration(status.uptimeSeconds)}</dd>
        </dl>
      )}
    </Card>
  );
}

function HealthCard({
  health,
  loading,
  onRefresh,
}: {
  health: Health | null;
  loading: boolean;
  onRefresh: () => void;
}) {
  const names = health
    ? [
        ...COMPONENTS.filter((c) => c in health.checks),
        ...Object.keys(health.checks).filter((c) => !COMPONENTS.includes(c)),
      ]
    : [];
  return (
    <Card
      title={
        <>
          Health{' '}
          {health && (
            <Badge tone={health.status === 'ok' ? 'ok' : 'fail'} testId="health-status">
              {health.status}
            </Badge>
          )}
        </>
      }
      testId="health-card"
      actions={
        <button
          type="button"
          className="icon-button"
          onClick={onRefresh}
          aria-label="Refresh health"
          disabled={loading}
        >
          <Icon name="refresh" size={16} />
        </button>
      }
    >
      {!health ? (
        loading ? (
          <Spinner label="Checking health…" />
        ) : (
          <p className="muted">Health is unavailable.</p>
        )
      ) : (
        <ul className="health-list">
          {names.map((name) => {
            const check = health.checks[name]!;
            return (
              <li
                key={name}
                className="health-row"
                data-testid={`health-${name}`}
                data-ok={String(check.ok)}
              >
                <span className={`dot ${check.ok ? 'dot-ok' : 'dot-fail'}`} aria-hidden="true" />
                <span className="health-name">{COMPONENT_LABEL[name] ?? name}</span>
                <span className="health-detail muted">{checkDetail(check)}</span>
                <Badge tone={check.ok ? 'ok' : 'fail'}>{check.ok ? 'ok' : 'fail'}</Badge>
              </li>
            );
          })}
        </ul>
      )}
    </Card>
  );
}

function ContractsCard() {
  const { status, loading } = useNode();
  const entries = status
    ? Object.entries(status.contracts).filter((e): e is [string, `0x${string}`] => !!e[1])
    : [];
  return (
    <Card title="Contracts" testId="contracts-card">
      {!status ? (
        loading ? (
          <Spinner label="Loading contracts…" />
        ) : (
          <p className="muted">Contracts are unavailable.</p>
        )
      ) : entries.length === 0 ? (
        <p className="muted">No contracts are configured.</p>
      ) : (
        <ul className="contract-list">
          {entries.map(([name, address]) => (
            <li key={name}>
              <span className="contract-name">{name}</span>
              <code className="mono break" data-testid={`contract-${name}`} title={address}>
                {address}
              </code>
              <CopyButton value={address} />
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}

function WalletCard() {
  const { status } = useNode();
  const { session, checking } = useAuth();
  const { report } = useNotify();
  const openConnect = useOpenConnect();
  const [balances, setBalances] = useState<Balances | null>(null);
  const [loading, setLoading] = useState(false);
  const [funding, setFunding] = useState(false);
  const [funded, setFunded] = useState<FaucetResult | null>(null);
  const address = session?.address;
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );

  const load = useCallback(async () => {
    if (!address) return null;
    setLoading(true);
    try {
      const b = await api.balances(address);
      if (mounted.current) setBalances(b);
      return b;
    } catch (err) {
      if (mounted.current) report(err);
      return null;
    } finally {
      if (mounted.current) setLoading(false);
    }
  }, [address, report]);

  useEffect(() => {
    setBalances(null);
    setFunded(null);
    void load();
  }, [load]);

  const faucet = async () => {
    setFunding(true);
    setFunded(null);
    const before = balances?.open;
    try {
      const result = await api.faucet();
      if (!mounted.current) return;
      setFunded(result);
      // The transfer is mined by the time the node answers; retry briefly in case a read lags behind.
      for (let i = 0; i < 5 && mounted.current; i++) {
        const b = await load();
        if (!b || b.open !== before) break;
        await new Promise((r) => setTimeout(r, 800));
      }
    } catch (err) {
      report(err);
    } finally {
      if (mounted.current) setFunding(false);
    }
  };

  if (checking) {
    return (
      <Card title="Wallet" testId="wallet-card">
        <Spinner label="Checking session…" />
      </Card>
    );
  }

  if (!session) {
    return (
      <Card title="Wallet" testId="wallet-card">
        <p className="muted">
          Sign in with your wallet to see your OPEN balance
          {status?.local ? ' and get test tokens' : ''}.
        </p>
        <button
          type="button"
          className="button button-primary"
          onClick={openConnect}
          data-testid="wallet-card-connect"
        >
          <Icon name="wallet" size={16} /> Connect wallet
        </button>
      </Card>
    );
  }

  return (
    <Card
      title="Wallet"
      testId="wallet-card"
      actions={
        <button
          type="button"
          className="icon-button"
          onClick={() => void load()}
          aria-label="Refresh balances"
          disabled={loading}
        >
          <Icon name="refresh" size={16} />
        </button>
      }
    >
      <p className="wallet-address mono break" title={session.address}>
        {session.address}
      </p>
      {!balances ? (
        loading ? (
          <Spinner label="Loading balances…" />
        ) : (
          <p className="muted">Balances are unavailable.</p>
        )
      ) : (
        <div className="balances">
          <div className="balance">
            <span className="balance-label">{balances.symbol}</span>
            <span className="balance-value" data-testid="balance-open" data-wei={balances.open}>
              {formatToken(balances.open, balances.decimals)}
            </span>
          </div>
          <div className="balance">
            <span className="balance-label">ETH</span>
            <span className="balance-value" data-testid="balance-eth" data-wei={balances.eth}>
              {formatToken(balances.eth, 18)}
            </span>
          </div>
        </div>
      )}
      {status?.local && (
        <div className="faucet">
          <button
            type="button"
            className="button button-primary"
            onClick={faucet}
            disabled={funding}
            data-testid="faucet-button"
          >
            {funding ? (
              <>
                <span className="spinner spinner-light" aria-hidden="true" /> Sending…
              </>
            ) : (
              'Get test OPEN'
            )}
          </button>
          <span className="muted small">Local dev faucet: test tokens with no value.</span>
        </div>
      )}
      {funded && (
        <p className="success small" data-testid="faucet-result">
          Received {formatToken(funded.open)} OPEN
          {funded.eth !== '0' ? ` and ${formatToken(funded.eth)} ETH` : ''} · tx{' '}
          <code title={funded.txHash}>{shortAddress(funded.txHash)}</code>
        </p>
      )}
    </Card>
  );
}

export function Dashboard() {
  const { error: statusError, reload } = useNode();
  const { report } = useNotify();
  const [health, setHealth] = useState<Health | null>(null);
  const [healthLoading, setHealthLoading] = useState(true);

  useEffect(() => {
    if (statusError) report(statusError);
  }, [statusError, report]);

  const loadHealth = useCallback(
    async (signal?: AbortSignal) => {
      setHealthLoading(true);
      try {
        setHealth(await api.health(signal));
      } catch (err) {
        if (!signal?.aborted) {
          setHealth(null);
          report(err);
        }
      } finally {
        if (!signal?.aborted) setHealthLoading(false);
      }
    },
    [report],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void loadHealth(ctrl.signal);
    const timer = window.setInterval(() => {
      void loadHealth(ctrl.signal);
      void reload();
    }, REFRESH_MS);
    return () => {
      ctrl.abort();
      window.clearInterval(timer);
    };
  }, [loadHealth, reload]);

  return (
    <div className="page" data-testid="page-dashboard">
      <PageHeader title="Dashboard">
        Status of this OpenLedger node: the chain it settles on, its contracts, and the health of
        its components.
      </PageHeader>
      <div className="grid">
        <NodeCard />
        <HealthCard health={health} loading={healthLoading} onRefresh={() => void loadHealth()} />
        <WalletCard />
        <ContractsCard />
      </div>
    </div>
  );
}
