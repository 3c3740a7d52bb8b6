// One attribution receipt, read by people: the spans of the answer found verbatim in datanet rows
// (with the rows and their contributors), the influence weights, and who it pays. Shown under a
// paid Playground answer and for each paying inference on /rewards.
import { useEffect, useState } from 'react';
import { ErrorBanner, Spinner } from '../../components/ui';
import { toApiError, type ApiError } from '../../lib/api';
import { formatToken, shortAddress } from '../../lib/format';
import { ContributorLink, Hash } from '../datanets/common';
import { rewardsApi, type AttributionReceipt, type ReceiptView } from './api';

export const openAmount = (wei: string) => `${formatToken(wei, 18, 6)} OPEN`;

/** Parts per billion as a percentage. */
export const percent = (ppb: string) => `${(Number(ppb) / 1e7).toFixed(1)}%`;

export function SpanList({ receipt }: { receipt: AttributionReceipt }) {
  const span = receipt.channels.span;
  if (!span || span.evidence.length === 0)
    return (
      <p className="muted small" data-testid="receipt-no-spans">
        No span of the answer occurs verbatim in the model&apos;s datanets.
      </p>
    );
  return (
    <ul className="receipt-spans" data-testid="receipt-spans">
      {span.evidence.map((e) => (
        <li key={`${e.start}-${e.end}`} data-testid="receipt-span">
          <q data-testid="receipt-span-text">{e.text ?? `tokens ${e.start}–${e.end}`}</q>{' '}
          <span className="muted small">
            tokens {e.start}–{e.end} · {e.bits.toFixed(1)} bits · in {e.count} row
            {e.count === 1 ? '' : 's'}
          </span>
          <ul>
            {e.occurrences.map((o) => (
              <li key={`${o.datanetId}-${o.rowHash}-${o.offset}`} className="small">
                datanet {o.datanetId} v{o.version} · row <Hash value={o.rowHash} /> ·{' '}
                <ContributorLink address={o.contributor} testId="receipt-span-contributor" />
              </li>
            ))}
          </ul>
        </li>
      ))}
    </ul>
  );
}

export function PayoutTable({ receipt }: { receipt: AttributionReceipt }) {
  return (
    <div className="table-wrap-inline">
      <table className="table table-compact" data-testid="receipt-payouts">
        <thead>
          <tr>
            <th>Paid to</th>
            <th>Role</th>
            <th className="num">Amount</th>
          </tr>
        </thead>
        <tbody>
          {receipt.payouts.map((p) => (
            <tr key={p.address} data-testid="receipt-payout" data-address={p.address}>
              <td className="mono" title={p.address}>
                {shortAddress(p.address)}
              </td>
              <td>{Object.keys(p.detail).join(', ') || p.role}</td>
              <td className="num" data-value={p.amount}>
                {openAmount(p.amount)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function ReceiptDetails({ view }: { view: ReceiptView }) {
  const receipt = view.receipt;
  if (!receipt)
    return (
      <p className="muted small" data-testid="receipt-status">
        {view.status === 'failed'
          ? `Attribution failed: ${view.error?.message ?? 'unknown error'}`
          : 'Not attributed yet.'}
      </p>
    );
  const influence = receipt.channels.influence;
  return (
    <div className="receipt-details" data-testid="receipt-details">
      <p className="muted small">
        Fee {openAmount(receipt.inference.fee)}
        {view.epoch !== null && ` · epoch ${view.epoch}`}
        {view.hash && (
          <>
            {' · receipt '}
            <Hash value={view.hash} />
          </>
        )}
      </p>
      <p className="small strong">Spans found in datanet rows</p>
      <SpanList receipt={receipt} />
      {influence && influence.weights.length > 0 && (
        <p className="muted small" data-testid="receipt-influence">
          Influence ({influence.method}):{' '}
          {influence.weights
            .map((w) => `${shortAddress(w.contributor)} ${percent(w.weight)}`)
            .join(', ')}
        </p>
      )}
      <p className="small strong">Payouts</p>
      <PayoutTable receipt={receipt} />
    </div>
  );
}

/** Loads a receipt by inference id and shows it (used where only the id is known). */
export function ReceiptLoader({ id }: { id: string }) {
  const [view, setView] = useState<ReceiptView | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => {
    const ctrl = new AbortController();
    rewardsApi
      .receipt(id, ctrl.signal)
      .then(setView)
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) setError(toApiError(err));
      });
    return () => ctrl.abort();
  }, [id]);
  if (error) return <ErrorBanner error={error} testId="receipt-error" />;
  if (!view) return <Spinner label="Reading the receipt…" />;
  return <ReceiptDetails view={view} />;
}
