import { useState, type FormEvent } from 'react';
import { sha256 } from 'viem';
import { Card } from '../../components/ui';
import {
  ApiError,
  datanetsApi,
  type Address,
  type ContributionResult,
  type DatanetDetail,
} from '../../lib/api';
import { useNode } from '../../lib/node';
import type { DatanetTabProps } from './DatanetDetail';
import {
  ActionStep,
  ContributionStatusBadge,
  formatBytes,
  formatScore,
  SignInNotice,
  useAction,
} from './common';
import { contributionTypedData, randomNonce, useActingWallet } from './signing';

function acceptAttribute(datanet: DatanetDetail): string {
  if (datanet.modality === 'image') return 'image/*';
  if (datanet.modality === 'audio') return 'audio/*';
  return datanet.rules.acceptedTypes.map((t) => `.${t}`).join(',');
}

function ContributionResultPanel({ result }: { result: ContributionResult }) {
  const shownRows = result.rows.slice(0, 50);
  return (
    <Card
      title="Validation"
      testId="contribution-result"
      actions={<ContributionStatusBadge status={result.status} />}
    >
      <div data-status={result.status} data-testid="contribution-result-body">
        <dl className="kv">
          <dt>File</dt>
          <dd>{result.fileName ?? 'rows'}</dd>
          <dt>Status</dt>
          <dd data-testid="result-status" data-status={result.status}>
            {result.status === 'pending'
              ? 'Accepted by validation; waiting for a curator to approve it.'
              : result.status === 'rejected'
                ? 'Rejected: no row passed validation.'
                : 'Approved.'}
          </dd>
          <dt>Rows accepted</dt>
          <dd data-testid="result-rows">
            {result.acceptedRowCount} / {result.rowCount}
          </dd>
          <dt>Score</dt>
          <dd data-testid="result-score" data-score={result.score}>
            {formatScore(result.score)}
          </dd>
          <dt>Reasons</dt>
          <dd data-testid="result-reasons">
            {result.reasons.length === 0 ? (
              <span className="muted">None: every row is clean.</span>
            ) : (
              <ul className="plain-list">
                {result.reasons.map((r) => (
                  <li key={r}>{r}</li>
                ))}
              </ul>
            )}
          </dd>
          <dt>Contribution</dt>
          <dd>
            <code className="mono" data-testid="result-id">
              {result.id}
            </code>
          </dd>
        </dl>
        {shownRows.length > 1 && (
          <details className="row-details">
            <summary>Rows ({result.rows.length})</summary>
            <table className="table table-compact">
              <thead>
                <tr>
                  <th>#</th>
                  <th>Result</th>
                  <th className="num">Score</th>
                  <th>Reasons</th>
                </tr>
              </thead>
              <tbody>
                {shownRows.map((r) => (
                  <tr key={r.id}>
                    <td>{r.position + 1}</td>
                    <td>{r.accepted ? 'accepted' : 'rejected'}</td>
                    <td className="num">{formatScore(r.score)}</td>
                    <td className="wrap">{r.reasons.join('; ') || '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {result.rows.length > shownRows.length && (
              <p className="muted small">First {shownRows.length} rows shown.</p>
            )}
          </details>
        )}
      </div>
    </Card>
  );
}

export function ContributeTab({ datanet, reload }: DatanetTabProps) {
  const wallet = useActingWallet();
  const { status } = useNode();
  const { busy, step, run } = useAction();
  const [file, setFile] = useState<File | null>(null);
  const [consent, setConsent] = useState(false);
  const [progress, setProgress] = useState<number | null>(null);
  const [result, setResult] = useState<ContributionResult | null>(null);
  const [inputKey, setInputKey] = useState(0);

  if (!wallet.address) {
    return (
      <SignInNotice title="Sign in to contribute">
        Every contribution is signed by its contributor&apos;s wallet: the statement names the
        datanet, the exact content, the licence and your consent.
      </SignInNotice>
    );
  }

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    setResult(null);
    setProgress(null);
    const created = await run(async (setStep) => {
      const registry = status?.contracts.DatanetRegistry as Address | undefined;
      if (!status || !registry) {
        throw new ApiError({
          status: 0,
          code: 'STATUS_UNAVAILABLE',
          message: 'The node status (chain id, registry address) is not loaded.',
          hint: 'Reload the page and try again.',
        });
      }
      if (file.size > datanet.rules.maxFileBytes) {
        throw new ApiError({
          status: 0,
          code: 'PAYLOAD_TOO_LARGE',
          message: `${file.name} is ${formatBytes(file.size)}; this datanet takes files up to ${formatBytes(datanet.rules.maxFileBytes)}.`,
        });
      }
      setStep('Reading the file…');
      const bytes = await file.arrayBuffer();
      setStep('Hashing the file…');
      const contentHash = sha256(new Uint8Array(bytes));
      const nonce = randomNonce();
      setStep('Waiting for the signature…');
      const signature = await wallet.sign(
        contributionTypedData(status.chainId, registry, {
          datanetId: BigInt(datanet.id),
          contentHash,
          license: datanet.license,
          consent: true,
          nonce,
        }),
      );
      setStep('Uploading…');
      setProgress(0);
      const uploaded = await datanetsApi.upload(
        datanet.id,
        bytes,
        {
          fileName: file.name,
          license: datanet.license,
          consent: true,
          nonce: nonce.toString(),
          signature,
        },
        (fraction) => {
          setProgress(fraction);
          if (fraction >= 1) setStep('Validating…');
        },
      );
      return uploaded;
    });
    if (created) {
      setResult(created);
      setFile(null);
      setInputKey((k) => k + 1);
      void reload();
    } else {
      setProgress(null);
    }
  };

  const percent = progress === null ? null : Math.round(progress * 100);

  return (
    <>
      <Card title="Contribute a file" testId="contribute-card">
        <form className="form" onSubmit={submit} noValidate>
          <p className="muted">
            This datanet takes <strong>{datanet.rules.acceptedTypes.join(', ')}</strong> files up to{' '}
            {formatBytes(datanet.rules.maxFileBytes)}. Each file is split into rows, and each row is
            checked for quality, relevance to the datanet and duplicates.
          </p>
          <label className="field field-wide">
            <span className="field-label">File</span>
            <input
              key={inputKey}
              type="file"
              accept={acceptAttribute(datanet)}
              disabled={busy}
              onChange={(e) => {
                setFile(e.target.files?.[0] ?? null);
                setResult(null);
                setProgress(null);
              }}
              data-testid="contribute-file-input"
            />
            {file && (
              <span className="field-help" data-testid="contribute-file-info">
                {file.name} · {formatBytes(file.size)}
              </span>
            )}
          </label>
          <label className="checkbox">
            <input
              type="checkbox"
              checked={consent}
              disabled={busy}
              onChange={(e) => setConsent(e.target.checked)}
              data-testid="contribute-consent"
            />
            <span>
              I may share this data and license it to this datanet under{' '}
              <strong>{datanet.license}</strong>.
            </span>
          </label>
          <div className="form-actions">
            <button
              type="submit"
              className="button button-primary"
              disabled={busy || !file || !consent}
              data-testid="contribute-submit"
            >
              {busy ? 'Contributing…' : 'Sign & upload'}
            </button>
            <ActionStep step={step} testId="contribute-step" />
          </div>
          {percent !== null && (
            <div className="progress" data-testid="upload-progress" data-progress={percent}>
              <div className="progress-head small">
                <span>{percent < 100 ? `Uploading ${file?.name ?? ''}` : 'Uploaded'}</span>
                <span className="progress-label">{percent}%</span>
              </div>
              <div
                className="progress-track"
                role="progressbar"
                aria-label="Upload progress"
                aria-valuemin={0}
                aria-valuemax={100}
                aria-valuenow={percent}
              >
                <div className="progress-bar" style={{ width: `${percent}%` }} />
              </div>
            </div>
          )}
        </form>
      </Card>
      {result && <ContributionResultPanel result={result} />}
    </>
  );
}
