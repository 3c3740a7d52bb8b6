import { Badge } from '../../components/ui';
import type { JobStatus, TemplateName } from '../../lib/api';

const statusTone = {
  queued: 'neutral',
  validating: 'info',
  running: 'info',
  succeeded: 'ok',
  failed: 'fail',
  cancelled: 'warn',
} as const;

export function JobStatusBadge({
  status,
  testId = 'job-status',
}: {
  status: JobStatus;
  testId?: string;
}) {
  return (
    <span data-status={status} data-testid={testId}>
      <Badge tone={statusTone[status] ?? 'neutral'}>{status}</Badge>
    </span>
  );
}

/** The catalogue name of a job's base model: its file name without `.gguf`. */
export function modelName(baseModel: string): string {
  const file = baseModel.split(/[\\/]/).pop() ?? baseModel;
  return file.replace(/\.gguf$/i, '');
}

export const TEMPLATE_INFO: Record<TemplateName, { label: string; description: string }> = {
  llama2: {
    label: 'Llama 2 chat',
    description: '<s>[INST] <<SYS>> system <</SYS>> user [/INST] answer </s>',
  },
  chatml: {
    label: 'ChatML',
    description: '<|im_start|>role … <|im_end|> around each turn',
  },
  plain: {
    label: 'Plain text',
    description: 'The turns one after the other, no markup',
  },
};

const grouped = new Intl.NumberFormat('en-US');

export function formatInt(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '—' : grouped.format(Math.round(n));
}

export function formatLoss(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(3);
}

export function formatRate(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return n === 0 ? '0' : n.toExponential(2);
}

/** Relative improvement of the adapter's held-out loss over the base model's, in percent. */
export function improvement(evalLoss: number | null, baseEvalLoss: number | null): number | null {
  if (evalLoss === null || baseEvalLoss === null || !(baseEvalLoss > 0)) return null;
  return ((baseEvalLoss - evalLoss) / baseEvalLoss) * 100;
}
