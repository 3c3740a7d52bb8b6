import { useCallback, useState, type ReactNode } from 'react';
import { Icon } from '../../components/icons';
import { useOpenConnect } from '../../components/Layout';
import { Badge, CopyButton } from '../../components/ui';
import type { AccessStatus, ContributionStatus, DatanetPolicy } from '../../lib/api';
import { shortAddress } from '../../lib/format';
import { useNotify } from '../../lib/notify';
import { Link } from '../../lib/router';

export function PolicyBadge({ policy }: { policy: DatanetPolicy }) {
  return (
    <span title={policy === 'open' ? 'Anyone may read its content' : 'Reading needs a grant'}>
      <Badge tone={policy === 'open' ? 'ok' : 'warn'} testId="policy-badge">
        {policy === 'open' ? 'Open' : 'Permissioned'}
      </Badge>
    </span>
  );
}

const contributionTone = { pending: 'info', approved: 'ok', rejected: 'fail' } as const;
const contributionLabel = { pending: 'Pending review', approved: 'Approved', rejected: 'Rejected' };

export function ContributionStatusBadge({ status }: { status: ContributionStatus }) {
  return (
    <Badge tone={contributionTone[status]} testId="contribution-status">
      {contributionLabel[status]}
    </Badge>
  );
}

const accessTone = { pending: 'info', granted: 'ok', denied: 'fail', revoked: 'neutral' } as const;

export function AccessStatusBadge({ status }: { status: AccessStatus }) {
  return (
    <Badge tone={accessTone[status]} testId="access-status">
      {status}
    </Badge>
  );
}

/** A hash or address shortened for display, in full in the title and the copy button. */
export function Hash({
  value,
  testId,
  copy = false,
  head = 10,
  tail = 8,
}: {
  value: string;
  testId?: string;
  copy?: boolean;
  head?: number;
  tail?: number;
}) {
  const short =
    value.length > head + tail + 1 ? `${value.slice(0, head)}…${value.slice(-tail)}` : value;
  return (
    <span className="hash">
      <code className="mono" title={value} data-testid={testId} data-value={value}>
        {short}
      </code>
      {copy && <CopyButton value={value} />}
    </span>
  );
}

/** The path of a contributor's profile page. */
export function contributorPath(address: string): string {
  return `/contributors/${address}`;
}

/** A contributor's address (shortened unless `full`) linking to their profile page. */
export function ContributorLink({
  address,
  full = false,
  testId = 'contributor-link',
}: {
  address: string;
  full?: boolean;
  testId?: string;
}) {
  return (
    <Link
      to={contributorPath(address)}
      className="mono contributor-link"
      title={`${address}: contributor profile`}
      data-testid={testId}
      data-address={address}
    >
      {full ? address : shortAddress(address)}
    </Link>
  );
}

export function formatScore(score: number | null | undefined): string {
  return score === null || score === undefined || !Number.isFinite(score) ? '—' : score.toFixed(2);
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 10 ? 0 : 1)} ${units[i]}`;
}

/** A notice with a connect button, for actions that need a signed-in wallet. */
export function SignInNotice({ title, children }: { title: string; children: ReactNode }) {
  const openConnect = useOpenConnect();
  return (
    <div className="notice" data-testid="signin-required">
      <Icon name="info" />
      <div>
        <p className="notice-title">{title}</p>
        <p className="muted">{children}</p>
        <button
          type="button"
          className="button button-primary"
          onClick={openConnect}
          data-testid="signin-connect"
        >
          <Icon name="wallet" size={16} /> Connect wallet
        </button>
      </div>
    </div>
  );
}

/** The step an action is at, shown next to its button. */
export function ActionStep({
  step,
  testId = 'action-step',
}: {
  step: string | null;
  testId?: string;
}) {
  if (!step) return null;
  return (
    <span className="loading action-step" role="status" data-testid={testId}>
      <span className="spinner" aria-hidden="true" />
      {step}
    </span>
  );
}

/**
 * Runs a multi-step action (prepare, sign, submit): exposes the current step for the UI, clears
 * the page's error banner on success and reports any failure to it.
 */
export function useAction() {
  const { report, clear } = useNotify();
  const [step, setStep] = useState<string | null>(null);
  const run = useCallback(
    async <T,>(fn: (setStep: (step: string) => void) => Promise<T>): Promise<T | undefined> => {
      setStep('Preparing…');
      try {
        const result = await fn(setStep);
        clear();
        return result;
      } catch (err) {
        report(err);
        return undefined;
      } finally {
        setStep(null);
      }
    },
    [report, clear],
  );
  return { busy: step !== null, step, run };
}
