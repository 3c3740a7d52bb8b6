import { useEffect, useState } from 'react';
import type { HDAccount } from 'viem/accounts';
import { toApiError, type ApiError } from '../lib/api';
import { useAuth } from '../lib/auth';
import { shortAddress } from '../lib/format';
import { useNode } from '../lib/node';
import {
  injectedProvider,
  loadDevAccounts,
  type SignerChoice,
  type SignInStep,
} from '../lib/wallet';
import { Icon } from './icons';
import { ErrorBanner, Modal, Spinner } from './ui';

const stepLabel: Record<SignInStep, string> = {
  connecting: 'Connecting to the wallet…',
  nonce: 'Requesting a sign-in nonce from the node…',
  signing: 'Waiting for the signature…',
  verifying: 'Verifying the signature…',
};

export function ConnectDialog({ onClose }: { onClose: () => void }) {
  const { status, loading: statusLoading, error: statusError } = useNode();
  const { signIn, signer } = useAuth();
  const [accounts, setAccounts] = useState<HDAccount[] | null>(null);
  const [deriveError, setDeriveError] = useState<ApiError | null>(null);
  const [step, setStep] = useState<SignInStep | null>(null);
  const [pending, setPending] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const injected = injectedProvider();
  const local = status?.local === true;

  useEffect(() => {
    if (!local) return;
    let cancelled = false;
    loadDevAccounts()
      .then((a) => !cancelled && setAccounts(a))
      .catch((err) => !cancelled && setDeriveError(toApiError(err)));
    return () => {
      cancelled = true;
    };
  }, [local]);

  const choose = async (choice: SignerChoice, key: string) => {
    setError(null);
    setPending(key);
    try {
      await signIn(choice, setStep);
      onClose();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setPending(null);
      setStep(null);
    }
  };

  const busy = pending !== null;

  return (
    <Modal title="Connect a wallet" onClose={busy ? () => {} : onClose} testId="connect-dialog">
      <p className="muted">
        Choose an account to <strong>Sign-In with Ethereum</strong>. You will sign a message (no
        transaction, no gas); the node then keeps you signed in with a secure session cookie.
      </p>

      <ErrorBanner error={error} onClose={() => setError(null)} testId="connect-error" />
      {statusError && <ErrorBanner error={statusError} testId="connect-error" />}
      {statusLoading && !status && <Spinner label="Loading node status…" />}

      {step && (
        <div className="signin-progress" data-testid="signin-progress">
          <Spinner label={stepLabel[step]} />
        </div>
      )}

      {injected && (
        <section className="wallet-section">
          <h3>Browser wallet</h3>
          <button
            type="button"
            className="account-option"
            disabled={busy || !status}
            onClick={() => choose({ kind: 'injected' }, 'injected')}
            data-testid="injected-wallet"
          >
            <Icon name="wallet" />
            <span className="account-main">
              <span className="account-title">Injected wallet</span>
              <span className="account-sub">MetaMask, Rabby, or any EIP-1193 wallet</span>
            </span>
            {signer?.kind === 'injected' && <span className="chip">Last used</span>}
          </button>
        </section>
      )}

      {status && local && (
        <section className="wallet-section">
          <h3>
            Local dev accounts <span className="chip chip-warn">Local chain only</span>
          </h3>
          <p className="muted small">
            The ten well-known anvil accounts, derived in your browser from the public test
            mnemonic. Never use them on a real network.
          </p>
          {deriveError && <ErrorBanner error={deriveError} testId="connect-error" />}
          {!accounts && !deriveError && <Spinner label="Deriving dev accounts…" />}
          {accounts && (
            <ul className="account-list">
              {accounts.map((a, i) => (
                <li key={a.address}>
                  <button
                    type="button"
                    className="account-option"
                    disabled={busy}
                    onClick={() => choose({ kind: 'dev', index: i }, `dev-${i}`)}
                    data-testid={`dev-account-${i}`}
                    data-address={a.address}
                    title={a.address}
                  >
                    <span className="account-index">#{i}</span>
                    <span className="account-main">
                      <span className="account-title mono">{shortAddress(a.address)}</span>
                      <span className="account-sub mono">{a.address}</span>
                    </span>
                    {pending === `dev-${i}` ? (
                      <span className="spinner" aria-hidden="true" />
                    ) : (
                      signer?.kind === 'dev' &&
                      signer.index === i && <span className="chip">Last used</span>
                    )}
                  </button>
                </li>
              ))}
            </ul>
          )}
        </section>
      )}

      {status && !local && !injected && (
        <div className="notice" data-testid="no-wallet">
          <Icon name="info" />
          <p>
            No browser wallet was detected. Install a wallet extension (for example MetaMask) and
            reload this page to sign in.
          </p>
        </div>
      )}
    </Modal>
  );
}
