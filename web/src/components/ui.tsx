import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { ApiError } from '../lib/api';
import { Icon } from './icons';

export function ErrorBanner({
  error,
  onClose,
  testId = 'error-banner',
}: {
  error: ApiError | null;
  onClose?: () => void;
  testId?: string;
}) {
  if (!error) return null;
  const retryAfter =
    error.details && typeof error.details === 'object' && 'retryAfterSeconds' in error.details
      ? Number((error.details as { retryAfterSeconds: unknown }).retryAfterSeconds)
      : undefined;
  return (
    <div className="banner banner-error" role="alert" data-testid={testId} data-code={error.code}>
      <Icon name="alert" />
      <div className="banner-body">
        <p className="banner-message" data-testid="error-message">
          {error.message}
        </p>
        {error.hint && (
          <p className="banner-hint" data-testid="error-hint">
            {error.hint}
          </p>
        )}
        {retryAfter !== undefined && Number.isFinite(retryAfter) && (
          <p className="banner-hint">Try again in {Math.ceil(retryAfter)} s.</p>
        )}
        <p className="banner-code">
          {error.code}
          {error.status ? ` · HTTP ${error.status}` : ''}
        </p>
      </div>
      {onClose && (
        <button
          type="button"
          className="icon-button"
          onClick={onClose}
          aria-label="Dismiss error"
          data-testid="dismiss-error"
        >
          <Icon name="close" size={16} />
        </button>
      )}
    </div>
  );
}

export function Badge({
  tone,
  children,
  testId,
}: {
  tone: 'ok' | 'fail' | 'neutral' | 'info' | 'warn';
  children: ReactNode;
  testId?: string;
}) {
  return (
    <span className={`badge badge-${tone}`} data-testid={testId}>
      {children}
    </span>
  );
}

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return (
    <span className="loading" role="status" data-testid="loading">
      <span className="spinner" aria-hidden="true" />
      {label}
    </span>
  );
}

export function Card({
  title,
  actions,
  children,
  testId,
}: {
  title: ReactNode;
  actions?: ReactNode;
  children: ReactNode;
  testId?: string;
}) {
  return (
    <section className="card" data-testid={testId}>
      <header className="card-header">
        <h2>{title}</h2>
        {actions && <div className="card-actions">{actions}</div>}
      </header>
      <div className="card-body">{children}</div>
    </section>
  );
}

export function CopyButton({
  value,
  label = 'Copy',
  testId,
}: {
  value: string;
  label?: string;
  testId?: string;
}) {
  const [copied, setCopied] = useState(false);
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => () => window.clearTimeout(timer.current), []);

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      // Clipboard API unavailable (e.g. plain http on a non-localhost host): fall back.
      const ta = document.createElement('textarea');
      ta.value = value;
      ta.setAttribute('readonly', '');
      ta.style.position = 'fixed';
      ta.style.opacity = '0';
      document.body.appendChild(ta);
      ta.select();
      try {
        document.execCommand('copy');
      } finally {
        ta.remove();
      }
    }
    setCopied(true);
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => setCopied(false), 1500);
  };

  return (
    <button
      type="button"
      className="button button-secondary button-small"
      onClick={copy}
      data-testid={testId}
    >
      <Icon name="copy" size={14} />
      {copied ? 'Copied' : label}
    </button>
  );
}

export function Modal({
  title,
  onClose,
  children,
  testId,
  footer,
}: {
  title: ReactNode;
  onClose: () => void;
  children: ReactNode;
  testId?: string;
  footer?: ReactNode;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const closeRef = useRef(onClose);
  useEffect(() => {
    closeRef.current = onClose;
  });
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && closeRef.current();
    document.addEventListener('keydown', onKey);
    const previouslyFocused = document.activeElement as HTMLElement | null;
    ref.current?.focus();
    return () => {
      document.removeEventListener('keydown', onKey);
      previouslyFocused?.focus?.();
    };
  }, []);

  return (
    <div className="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div
        className="modal"
        role="dialog"
        aria-modal="true"
        aria-labelledby="modal-title"
        tabIndex={-1}
        ref={ref}
        data-testid={testId}
      >
        <header className="modal-header">
          <h2 id="modal-title">{title}</h2>
          <button
            type="button"
            className="icon-button"
            onClick={onClose}
            aria-label="Close"
            data-testid="modal-close"
          >
            <Icon name="close" size={16} />
          </button>
        </header>
        <div className="modal-body">{children}</div>
        {footer && <footer className="modal-footer">{footer}</footer>}
      </div>
    </div>
  );
}

/** One figure of a `<dl className="stats">`: its label, its text, and its raw value for tests. */
export function Stat({
  label,
  children,
  testId,
  value,
}: {
  label: string;
  children: ReactNode;
  testId?: string;
  value?: string;
}) {
  return (
    <div>
      <dt>{label}</dt>
      <dd data-testid={testId} data-value={value}>
        {children}
      </dd>
    </div>
  );
}
