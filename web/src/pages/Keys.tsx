import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { Icon } from '../components/icons';
import { useOpenConnect } from '../components/Layout';
import { PageHeader } from '../components/PageHeader';
import { Badge, Card, CopyButton, Modal, Spinner } from '../components/ui';
import { api, type ApiKey, type CreatedApiKey } from '../lib/api';
import { useAuth } from '../lib/auth';
import { formatDate } from '../lib/format';
import { useNotify } from '../lib/notify';

const newestFirst = (a: ApiKey, b: ApiKey) => Date.parse(b.createdAt) - Date.parse(a.createdAt);

function NewKeyPanel({ created, onDone }: { created: CreatedApiKey; onDone: () => void }) {
  return (
    <div
      className="secret-panel"
      data-testid="new-key-panel"
      data-key-id={created.id}
      role="status"
    >
      <div className="secret-head">
        <Icon name="alert" />
        <div>
          <p className="secret-title">Copy the key “{created.name}” now</p>
          <p className="small">
            This is the only time the full secret is shown. The node stores only a hash of it; if
            you lose it, revoke the key and create a new one.
          </p>
        </div>
      </div>
      <div className="secret-row">
        <code className="secret mono" data-testid="new-key-secret">
          {created.key}
        </code>
        <CopyButton value={created.key} testId="copy-key-secret" />
      </div>
      <button
        type="button"
        className="button button-secondary button-small"
        onClick={onDone}
        data-testid="dismiss-secret"
      >
        I have stored it
      </button>
    </div>
  );
}

function RevokeDialog({
  apiKey,
  onCancel,
  onConfirm,
}: {
  apiKey: ApiKey;
  onCancel: () => void;
  onConfirm: () => Promise<void>;
}) {
  const [busy, setBusy] = useState(false);
  return (
    <Modal
      title="Revoke API key?"
      onClose={busy ? () => {} : onCancel}
      testId="revoke-dialog"
      footer={
        <>
          <button
            type="button"
            className="button button-secondary"
            onClick={onCancel}
            disabled={busy}
            data-testid="cancel-revoke"
          >
            Cancel
          </button>
          <button
            type="button"
            className="button button-danger"
            disabled={busy}
            data-testid="confirm-revoke"
            onClick={async () => {
              setBusy(true);
              try {
                await onConfirm();
              } finally {
                setBusy(false);
              }
            }}
          >
            {busy ? 'Revoking…' : 'Revoke key'}
          </button>
        </>
      }
    >
      <p>
        The key <strong>{apiKey.name}</strong> (<code>{apiKey.prefix}…</code>) will stop working
        immediately for every application that uses it. This cannot be undone.
      </p>
    </Modal>
  );
}

function KeysManager() {
  const { report, clear } = useNotify();
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [loading, setLoading] = useState(true);
  const [name, setName] = useState('');
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      setLoading(true);
      try {
        const { keys } = await api.listKeys(signal);
        setKeys([...keys].sort(newestFirst));
      } catch (err) {
        if (!signal?.aborted) report(err);
      } finally {
        if (!signal?.aborted) setLoading(false);
      }
    },
    [report],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load]);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setCreating(true);
    setCreated(null);
    try {
      // The node validates the name; its 400 message is shown in the error banner.
      const result = await api.createKey(name.trim());
      clear();
      setCreated(result);
      setName('');
      setKeys((prev) => [
        {
          id: result.id,
          name: result.name,
          prefix: result.prefix,
          createdAt: result.createdAt,
          lastUsedAt: null,
          revokedAt: null,
        },
        ...(prev ?? []).filter((k) => k.id !== result.id),
      ]);
      void load();
    } catch (err) {
      report(err);
    } finally {
      setCreating(false);
    }
  };

  const revoke = async (key: ApiKey) => {
    try {
      const { revokedAt } = await api.revokeKey(key.id);
      clear();
      setKeys((prev) => prev?.map((k) => (k.id === key.id ? { ...k, revokedAt } : k)) ?? prev);
      setRevoking(null);
      void load();
    } catch (err) {
      setRevoking(null);
      report(err);
    }
  };

  return (
    <>
      <Card title="Create a key" testId="create-key-card">
        <form className="inline-form" onSubmit={create} noValidate>
          <label className="field">
            <span className="field-label">Name</span>
            <input
              type="text"
              value={name}
              onChange={(e) => setName(e.target.value)}
              placeholder="e.g. ci-pipeline"
              maxLength={100}
              autoComplete="off"
              data-testid="key-name-input"
            />
          </label>
          <button
            type="submit"
            className="button button-primary"
            disabled={creating}
            data-testid="create-key"
          >
            {creating ? 'Creating…' : 'Create key'}
          </button>
        </form>
        {created && <NewKeyPanel created={created} onDone={() => setCreated(null)} />}
      </Card>

      <Card title="Your keys" testId="keys-card">
        {keys === null ? (
          loading ? (
            <Spinner label="Loading keys…" />
          ) : (
            <p className="muted">Keys are unavailable.</p>
          )
        ) : keys.length === 0 ? (
          <p className="muted" data-testid="keys-empty">
            You have no API keys yet.
          </p>
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="keys-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Key</th>
                  <th>Created</th>
                  <th>Last used</th>
                  <th>Status</th>
                  <th aria-label="Actions" />
                </tr>
              </thead>
              <tbody>
                {keys.map((k) => (
                  <tr
                    key={k.id}
                    data-testid="key-row"
                    data-key-id={k.id}
                    data-key-name={k.name}
                    data-state={k.revokedAt ? 'revoked' : 'active'}
                    className={k.revokedAt ? 'row-muted' : undefined}
                  >
                    <td className="strong">{k.name}</td>
                    <td>
                      <code>{k.prefix}…</code>
                    </td>
                    <td>{formatDate(k.createdAt)}</td>
                    <td>
                      {k.lastUsedAt ? (
                        formatDate(k.lastUsedAt)
                      ) : (
                        <span className="muted">Never</span>
                      )}
                    </td>
                    <td data-testid="key-status">
                      {k.revokedAt ? (
                        <span title={`Revoked ${formatDate(k.revokedAt)}`}>
                          <Badge tone="fail">Revoked</Badge>
                        </span>
                      ) : (
                        <Badge tone="ok">Active</Badge>
                      )}
                    </td>
                    <td className="actions">
                      {!k.revokedAt && (
                        <button
                          type="button"
                          className="button button-danger-ghost button-small"
                          onClick={() => setRevoking(k)}
                          data-testid="revoke-key"
                        >
                          Revoke
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
      {revoking && (
        <RevokeDialog
          apiKey={revoking}
          onCancel={() => setRevoking(null)}
          onConfirm={() => revoke(revoking)}
        />
      )}
    </>
  );
}

export function KeysPage() {
  const { session, checking } = useAuth();
  const openConnect = useOpenConnect();
  return (
    <div className="page" data-testid="page-keys">
      <PageHeader title="API keys">
        API keys let scripts, services and CI jobs call this node&apos;s API on behalf of your
        wallet without an interactive sign-in. Each key can be revoked at any time.
      </PageHeader>
      {checking ? (
        <Spinner label="Checking session…" />
      ) : !session ? (
        <div className="notice" data-testid="keys-signin-required">
          <Icon name="info" />
          <div>
            <p className="notice-title">Sign in to manage API keys</p>
            <p className="muted">
              API keys belong to a wallet. Connect your wallet and sign in to list, create and
              revoke them.
            </p>
            <button
              type="button"
              className="button button-primary"
              onClick={openConnect}
              data-testid="keys-connect"
            >
              <Icon name="wallet" size={16} /> Connect wallet
            </button>
          </div>
        </div>
      ) : (
        <KeysManager key={session.address} />
      )}
    </div>
  );
}
