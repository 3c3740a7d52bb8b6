// The attribution of a paid Playground answer (GET /api/attribution/receipts/{id}): the answer
// with the spans found verbatim in datanet rows highlighted (a tooltip names the rows and their
// contributors), then an "Attribution" section with the spans and who the call paid.
import { useEffect, useState, type ReactNode } from 'react';
import { ErrorBanner, Spinner } from '../../components/ui';
import { toApiError, type ApiError } from '../../lib/api';
import { shortAddress } from '../../lib/format';
import type { OpenLedgerInfo } from '../../../../src/util/openai-stream.ts';
import type { PublishedModel } from '../models/api';
import { rewardsApi, type ReceiptSpan, type ReceiptView } from '../rewards/api';
import { PayoutTable, SpanList, percent } from '../rewards/ReceiptBreakdown';

/** The receipt id of a finished answer from a published model with a price, else null. */
export function paidReceiptId(
  info: OpenLedgerInfo | undefined,
  published: readonly PublishedModel[] | undefined,
): string | null {
  const id = info?.published_model_id;
  if (!info || id === null || id === undefined) return null;
  const model = published?.find((m) => m.id === id);
  if (!model || (BigInt(model.pricePer1kInput) === 0n && BigInt(model.pricePer1kOutput) === 0n))
    return null;
  return info.receipt.id;
}

interface Segment {
  text: string;
  spans: ReceiptSpan[];
}

/**
 * The answer cut into plain and attributed pieces. Evidence positions are output tokens, not
 * characters, so each span is found by its text, in order; spans may overlap (each is a maximal
 * match), so the search for the next one starts at the previous match's start, and overlapping
 * matches merge into one highlighted piece naming all of them.
 */
export function attributedSegments(text: string, evidence: readonly ReceiptSpan[]): Segment[] {
  const found: { from: number; to: number; span: ReceiptSpan }[] = [];
  let cursor = 0;
  for (const span of [...evidence].sort((a, b) => a.start - b.start)) {
    if (!span.text) continue;
    let at = text.indexOf(span.text, cursor);
    let needle = span.text;
    if (at < 0) {
      // A span decoded at its edges may differ in leading/trailing whitespace from the answer.
      needle = span.text.trim();
      at = needle ? text.indexOf(needle, cursor) : -1;
    }
    if (at < 0) continue;
    found.push({ from: at, to: at + needle.length, span });
    cursor = at;
  }
  const merged: { from: number; to: number; spans: ReceiptSpan[] }[] = [];
  for (const f of found.sort((a, b) => a.from - b.from)) {
    const last = merged[merged.length - 1];
    if (last && f.from < last.to) {
      last.to = Math.max(last.to, f.to);
      last.spans.push(f.span);
    } else merged.push({ from: f.from, to: f.to, spans: [f.span] });
  }
  const segments: Segment[] = [];
  let pos = 0;
  for (const m of merged) {
    if (m.from > pos) segments.push({ text: text.slice(pos, m.from), spans: [] });
    segments.push({ text: text.slice(m.from, m.to), spans: m.spans });
    pos = m.to;
  }
  if (pos < text.length) segments.push({ text: text.slice(pos), spans: [] });
  return segments;
}

function tooltip(spans: readonly ReceiptSpan[]): string {
  const lines = new Set<string>();
  for (const span of spans)
    for (const o of span.occurrences)
      lines.add(
        `${o.contributor} · datanet ${o.datanetId} v${o.version} · row ${o.rowHash.slice(0, 16)}…`,
      );
  const listed = spans.reduce((n, s) => n + s.occurrences.length, 0);
  const count = Math.max(...spans.map((s) => s.count));
  return [
    `Found verbatim in ${count} datanet row${count === 1 ? '' : 's'}:`,
    ...lines,
    ...(count > listed ? [`… and ${count - listed} more`] : []),
  ].join('\n');
}

export function AttributionBreakdown({
  receiptId,
  text,
  stats,
  showAnswer = true,
}: {
  receiptId: string;
  text: string;
  /** The answer's stats line, shown between the answer and its attribution. */
  stats: ReactNode;
  /** False: only the Attribution section (a RAG answer shows its text with its citations). */
  showAnswer?: boolean;
}) {
  const [view, setView] = useState<ReceiptView | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => {
    const ctrl = new AbortController();
    rewardsApi
      .receipt(receiptId, ctrl.signal)
      .then(setView)
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) setError(toApiError(err));
      });
    return () => ctrl.abort();
  }, [receiptId]);

  const receipt = view?.receipt ?? null;
  const segments = receipt ? attributedSegments(text, receipt.channels.span?.evidence ?? []) : null;
  const contributors = receipt?.channels.span?.weights ?? [];
  return (
    <>
      {showAnswer && (
        <p className="playground-text" data-testid="playground-text">
          {segments
            ? segments.map((s, i) =>
                s.spans.length === 0 ? (
                  s.text
                ) : (
                  <mark
                    key={i}
                    className="attribution-span"
                    title={tooltip(s.spans)}
                    data-testid="attribution-highlight"
                    data-contributors={[
                      ...new Set(s.spans.flatMap((x) => x.occurrences.map((o) => o.contributor))),
                    ].join(',')}
                  >
                    {s.text}
                  </mark>
                ),
              )
            : text}
        </p>
      )}
      {showAnswer && stats}
      <div className="playground-attribution" data-testid="attribution">
        <p className="small strong">Attribution</p>
        <ErrorBanner error={error} testId="attribution-error" />
        {!view && !error && <Spinner label="Attributing the answer…" />}
        {view && !receipt && (
          <p className="muted small" data-testid="attribution-status">
            {view.status === 'failed'
              ? `Attribution failed: ${view.error?.message ?? 'unknown error'}`
              : 'Not attributed yet.'}
          </p>
        )}
        {receipt && (
          <>
            {contributors.length > 0 && (
              <p className="muted small" data-testid="attribution-weights">
                Span credit:{' '}
                {contributors
                  .map((w) => `${shortAddress(w.contributor)} ${percent(w.weight)}`)
                  .join(', ')}
              </p>
            )}
            <details>
              <summary className="small">Spans found in datanet rows</summary>
              <SpanList receipt={receipt} />
            </details>
            <PayoutTable receipt={receipt} />
          </>
        )}
      </div>
    </>
  );
}
