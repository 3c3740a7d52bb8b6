// /datanets/:id/rows/:rowId — one row of a datanet, what a RAG citation links to
// (GET /api/datanets/:id/rows/:rowId, for readers of the datanet): its text with the cited
// characters highlighted (`?start=&end=`, as the Playground's citation links pass them), its hash,
// version, status and contributor, and the way back to the datanet.
import { useEffect, useRef, useState } from 'react';
import { Icon } from '../../components/icons';
import { PageHeader } from '../../components/PageHeader';
import { Badge, Card, Spinner } from '../../components/ui';
import { datanetsApi, request, toApiError, type ApiError } from '../../lib/api';
import { useAuth } from '../../lib/auth';
import { formatDate } from '../../lib/format';
import { Link } from '../../lib/router';
import { ContributorLink, Hash } from './common';

/** A datanet row as GET /api/datanets/:id/rows/:rowId returns it (src/api/routes/rag.ts). */
export interface DatanetRow {
  id: string;
  datanetId: number;
  contributionId: string;
  contributor: string;
  rowHash: string;
  /** The row's text: citations' character ranges index it. */
  text: string;
  content: unknown;
  status: string;
  /** The first version that holds the row; null before one does. */
  version: number | null;
  createdAt: string;
}

/** `?start=&end=` as a character range of `length` characters, or null. */
function highlightRange(length: number): { start: number; end: number } | null {
  const q = new URLSearchParams(window.location.search);
  const start = Number(q.get('start'));
  const end = Number(q.get('end'));
  if (q.get('start') === null || q.get('end') === null) return null;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return null;
  const from = Math.max(0, Math.min(start, length));
  const to = Math.max(0, Math.min(end, length));
  return from < to ? { start: from, end: to } : null;
}

const statusTone = { approved: 'ok', pending: 'info', rejected: 'fail' } as const;

function RowStatus({ status }: { status: string }) {
  const tone = Object.hasOwn(statusTone, status)
    ? statusTone[status as keyof typeof statusTone]
    : 'neutral';
  return (
    <Badge tone={tone} testId="row-status">
      {status}
    </Badge>
  );
}

function Unavailable({ id, rowId, error }: { id: number; rowId: string; error: ApiError }) {
  const { session } = useAuth();
  const title =
    error.status === 404
      ? `Datanet ${id} has no row ${rowId}`
      : error.status === 403
        ? `You may not read datanet ${id}`
        : error.status === 401
          ? 'Sign in to read this row'
          : 'The row could not be loaded';
  return (
    <div
      className="notice"
      data-testid="row-unavailable"
      data-status={error.status}
      data-code={error.code}
    >
      <Icon name="info" />
      <div>
        <p className="notice-title">{title}</p>
        <p className="muted">{error.message}</p>
        {error.status === 403 && (
          <p className="muted">
            Its content needs a grant from the owner:{' '}
            <Link to={`/datanets/${id}?tab=access`} data-testid="row-request-access">
              request access
            </Link>
            .
          </p>
        )}
        {error.status === 401 && !session && (
          <p className="muted">Connect your wallet and sign in, then reload this page.</p>
        )}
      </div>
    </div>
  );
}

export function RowPage({ id, rowId }: { id: number; rowId: string }) {
  const { session } = useAuth();
  const viewer = session?.address ?? null;
  const [row, setRow] = useState<DatanetRow | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [datanetName, setDatanetName] = useState<string | null>(null);
  const markRef = useRef<HTMLElement>(null);

  // Reload when the viewer changes: reading depends on who is signed in.
  useEffect(() => {
    const ctrl = new AbortController();
    setError(null);
    request<DatanetRow>(`/api/datanets/${id}/rows/${encodeURIComponent(rowId)}`, {
      signal: ctrl.signal,
    })
      .then((r) => {
        setRow(r);
        setError(null);
      })
      .catch((err: unknown) => {
        if (ctrl.signal.aborted) return;
        setRow(null);
        setError(toApiError(err));
      });
    return () => ctrl.abort();
  }, [id, rowId, viewer]);

  // The datanet's name (its metadata is public) for the header; the page works without it.
  useEffect(() => {
    const ctrl = new AbortController();
    datanetsApi
      .get(id, ctrl.signal)
      .then((d) => setDatanetName(d.name))
      .catch(() => {});
    return () => ctrl.abort();
  }, [id]);

  const range = row ? highlightRange(row.text.length) : null;
  const highlighted = range !== null;

  useEffect(() => {
    if (highlighted) markRef.current?.scrollIntoView?.({ block: 'center' });
  }, [highlighted, row]);

  const datanetLabel = datanetName ? `${datanetName} (#${id})` : `Datanet #${id}`;

  return (
    <div className="page" data-testid="page-row" data-datanet-id={id} data-row-id={rowId}>
      <Link to={`/datanets/${id}`} className="back-link" data-testid="row-back-to-datanet">
        ← {datanetLabel}
      </Link>
      <PageHeader title="Datanet row">
        A row of <Link to={`/datanets/${id}`}>{datanetLabel}</Link>, as contributed.
      </PageHeader>
      {!row ? (
        error ? (
          <Unavailable id={id} rowId={rowId} error={error} />
        ) : (
          <Spinner label="Loading the row…" />
        )
      ) : (
        <>
          <Card title="Row" testId="row-details">
            <dl className="kv">
              <dt>Row hash</dt>
              <dd>
                <Hash value={row.rowHash} testId="row-hash" head={18} tail={10} copy />
              </dd>
              <dt>Version</dt>
              <dd data-testid="row-version" data-version={row.version ?? ''}>
                {row.version === null ? 'not in a version yet' : `v${row.version}`}
              </dd>
              <dt>Status</dt>
              <dd>
                <RowStatus status={row.status} />
              </dd>
              <dt>Contributor</dt>
              <dd>
                <ContributorLink address={row.contributor} full testId="row-contributor" />
              </dd>
              <dt>Contribution</dt>
              <dd>
                <Hash value={row.contributionId} testId="row-contribution" head={8} tail={4} />
              </dd>
              <dt>Added</dt>
              <dd>{formatDate(row.createdAt)}</dd>
            </dl>
          </Card>
          <Card title="Text" testId="row-text-card">
            {range && (
              <p className="muted small" data-testid="row-range">
                Highlighted: characters {range.start}–{range.end}, the passage cited.
              </p>
            )}
            <p className="prose" data-testid="row-text">
              {range ? (
                <>
                  {row.text.slice(0, range.start)}
                  <mark
                    ref={markRef}
                    data-testid="row-highlight"
                    data-start={range.start}
                    data-end={range.end}
                  >
                    {row.text.slice(range.start, range.end)}
                  </mark>
                  {row.text.slice(range.end)}
                </>
              ) : (
                row.text
              )}
            </p>
            {row.content !== null && row.content !== undefined && (
              <details>
                <summary className="small">Content (JSON)</summary>
                <p className="prose mono small" data-testid="row-content">
                  {JSON.stringify(row.content, null, 2)}
                </p>
              </details>
            )}
          </Card>
        </>
      )}
    </div>
  );
}
