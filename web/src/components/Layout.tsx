import { createContext, useCallback, useContext, useState, type ReactNode } from 'react';
import { useAuth } from '../lib/auth';
import { shortAddress } from '../lib/format';
import { useNode } from '../lib/node';
import { useNotify } from '../lib/notify';
import { Link, useRouter } from '../lib/router';
import { ConnectDialog } from './ConnectDialog';
import { Icon, type IconName } from './icons';
import { ErrorBanner } from './ui';

export const NAV: { to: string; label: string; id: string; icon: IconName }[] = [
  { to: '/', label: 'Dashboard', id: 'dashboard', icon: 'dashboard' },
  { to: '/datanets', label: 'Datanets', id: 'datanets', icon: 'datanets' },
  { to: '/factory', label: 'Model Factory', id: 'factory', icon: 'factory' },
  { to: '/models', label: 'Models', id: 'models', icon: 'models' },
  { to: '/market', label: 'Market', id: 'market', icon: 'market' },
  { to: '/proposals', label: 'Proposals', id: 'proposals', icon: 'proposals' },
  { to: '/agents', label: 'Agents', id: 'agents', icon: 'agents' },
  { to: '/playground', label: 'Playground', id: 'playground', icon: 'playground' },
  { to: '/escrow', label: 'Escrow', id: 'escrow', icon: 'wallet' },
  { to: '/rewards', label: 'Rewards', id: 'rewards', icon: 'rewards' },
  { to: '/governance', label: 'Governance', id: 'governance', icon: 'governance' },
  { to: '/keys', label: 'API keys', id: 'keys', icon: 'keys' },
];

const ConnectContext = createContext<() => void>(() => {});

/** Opens the wallet connect dialog from anywhere in the app. */
export function useOpenConnect(): () => void {
  return useContext(ConnectContext);
}

function WalletButton({ onConnect }: { onConnect: () => void }) {
  const { session, checking, signOut } = useAuth();
  const { report } = useNotify();
  const [signingOut, setSigningOut] = useState(false);

  if (checking) {
    return (
      <button
        type="button"
        className="button button-secondary"
        disabled
        data-testid="connect-wallet"
      >
        <span className="spinner" aria-hidden="true" /> Checking session…
      </button>
    );
  }
  if (!session) {
    return (
      <button
        type="button"
        className="button button-primary"
        onClick={onConnect}
        data-testid="connect-wallet"
      >
        <Icon name="wallet" size={16} /> Connect wallet
      </button>
    );
  }
  return (
    <div className="wallet-signed-in">
      <span
        className="address-pill"
        title={session.address}
        data-testid="signed-in-address"
        data-address={session.address}
      >
        <span className="dot dot-ok" aria-hidden="true" />
        {shortAddress(session.address)}
      </span>
      <Link
        to={`/contributors/${session.address}`}
        className="button button-ghost"
        data-testid="my-contributions"
      >
        My contributions
      </Link>
      <button
        type="button"
        className="button button-ghost"
        disabled={signingOut}
        onClick={async () => {
          setSigningOut(true);
          try {
            await signOut();
          } catch (err) {
            report(err);
          } finally {
            setSigningOut(false);
          }
        }}
        data-testid="sign-out"
      >
        {signingOut ? 'Signing out…' : 'Sign out'}
      </button>
    </div>
  );
}

function NetworkChip() {
  const { status, error } = useNode();
  if (error) return <span className="chip chip-fail">Node unreachable</span>;
  if (!status) return null;
  return (
    <span className={`chip ${status.local ? 'chip-warn' : 'chip-info'}`} data-testid="network-chip">
      {status.local ? 'Local dev chain' : 'Chain'} · {status.chainId}
    </span>
  );
}

export function Layout({ children }: { children: ReactNode }) {
  const { path } = useRouter();
  const { error, clear } = useNotify();
  const [connectOpen, setConnectOpen] = useState(false);
  const openConnect = useCallback(() => setConnectOpen(true), []);
  const closeConnect = useCallback(() => setConnectOpen(false), []);

  return (
    <ConnectContext.Provider value={openConnect}>
      <div className="app">
        <header className="topbar">
          <Link to="/" className="brand" aria-label="OpenLedger home">
            <span className="brand-mark" aria-hidden="true" />
            <span className="brand-name">OpenLedger</span>
          </Link>
          <NetworkChip />
          <div className="topbar-spacer" />
          <WalletButton onConnect={openConnect} />
        </header>
        <div className="shell">
          <nav className="sidebar" aria-label="Main">
            <ul>
              {NAV.map((item) => {
                const active =
                  item.to === '/'
                    ? path === '/'
                    : path === item.to || path.startsWith(`${item.to}/`);
                return (
                  <li key={item.id}>
                    <Link
                      to={item.to}
                      className={`nav-link${active ? ' active' : ''}`}
                      aria-current={active ? 'page' : undefined}
                      data-testid={`nav-${item.id}`}
                    >
                      <Icon name={item.icon} />
                      {item.label}
                    </Link>
                  </li>
                );
              })}
            </ul>
            <p className="sidebar-foot">Payable AI · Proof of Attribution</p>
          </nav>
          <main className="content" id="main">
            <ErrorBanner error={error} onClose={clear} />
            {children}
          </main>
        </div>
      </div>
      {connectOpen && <ConnectDialog onClose={closeConnect} />}
    </ConnectContext.Provider>
  );
}
