// The evaluation of a succeeded training run: base vs adapter loss and perplexity on the
// held-out rows, greedy samples side by side, and a form to sample your own prompts (a
// factory.eval job, followed until it ends).
import { useCallback, useEffect, useState } from 'react';
import { Card, Spinner } from '../../components/ui';
import { request } from '../../lib/api';
import { formatInt, formatLoss } from './common';

interface Sample {
  source: 'held-out' | 'custom';
  prompt: string;
  reference: string | null;
  base: string;
  adapter: string;
}

interface Evaluation {
  heldOutRows: number;
  targets: number;
  baseLoss: number | null;
  adapterLoss: number | null;
  basePerplexity: number | null;
  adapterPerplexity: number | null;
  samples: Sample[];
  maxNewTokens: number;
}

interface EvalJob {
  id: string;
  status: string;
  result: Evaluation | null;
  error: { code: string; message: string } | null;
}

const TERMINAL = ['succeeded', 'failed', 'cancelled'];
const perplexity = (x: number | null) => (x === null ? '—' : x.toFixed(2));

function Samples({ samples, testId }: { samples: Sample[]; testId: string }) {
  if (samples.length === 0) return <p className="muted">No samples.</p>;
  return (
    <table className="table" data-testid={testId}>
      <thead>
        <tr>
          <th>Prompt</th>
          <th>Reference</th>
          <th>Base model</th>
          <th>With the adapter</th>
        </tr>
      </thead>
      <tbody>
        {samples.map((s, i) => (
          <tr key={i} data-testid={`${testId}-row`}>
            <td>
              <code style={{ whiteSpace: 'pre-wrap' }}>{s.prompt}</code>
            </td>
            <td>{s.reference ?? <span className="muted">—</span>}</td>
            <td>{s.base || <span className="muted">(nothing)</span>}</td>
            <td>
              <strong>{s.adapter || <span className="muted">(nothing)</span>}</strong>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function EvaluationSection({ jobId }: { jobId: string }) {
  const [evaluation, setEvaluation] = useState<Evaluation | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [prompts, setPrompts] = useState('');
  const [running, setRunning] = useState<EvalJob | null>(null);

  useEffect(() => {
    const ctrl = new AbortController();
    request<{ evaluation: Evaluation | null }>(`/api/factory/jobs/${jobId}/evaluation`, {
      signal: ctrl.signal,
    })
      .then((answer) => setEvaluation(answer.evaluation))
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) setError(err instanceof Error ? err.message : String(err));
      });
    return () => ctrl.abort();
  }, [jobId]);

  // Follow a custom evaluation until it ends (a short poll: it takes seconds).
  useEffect(() => {
    if (!running || TERMINAL.includes(running.status)) return;
    const timer = setTimeout(() => {
      request<EvalJob>(`/api/jobs/${running.id}`)
        .then(setRunning)
        .catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)));
    }, 500);
    return () => clearTimeout(timer);
  }, [running]);

  const submit = useCallback(async () => {
    const list = prompts
      .split('\n')
      .map((p) => p.trim())
      .filter(Boolean);
    if (list.length === 0) return;
    setError(null);
    try {
      setRunning(
        await request<EvalJob>(`/api/factory/jobs/${jobId}/evaluation`, {
          method: 'POST',
          body: { prompts: list.slice(0, 16) },
        }),
      );
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  }, [jobId, prompts]);

  return (
    <Card title="Evaluation" testId="job-evaluation">
      {error && <p className="field-error">{error}</p>}
      {evaluation === undefined && !error && <Spinner />}
      {evaluation === null && <p className="muted">This run has no stored evaluation.</p>}
      {evaluation && (
        <>
          <p className="muted">
            On {formatInt(evaluation.heldOutRows)} held-out rows ({formatInt(evaluation.targets)}{' '}
            answer tokens), greedy samples of up to {evaluation.maxNewTokens} tokens.
          </p>
          <table className="table table-compact" data-testid="job-evaluation-losses">
            <thead>
              <tr>
                <th />
                <th>Held-out loss</th>
                <th>Perplexity</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <td>Base model</td>
                <td data-testid="evaluation-base-loss">{formatLoss(evaluation.baseLoss)}</td>
                <td>{perplexity(evaluation.basePerplexity)}</td>
              </tr>
              <tr>
                <td>With the adapter</td>
                <td data-testid="evaluation-adapter-loss">{formatLoss(evaluation.adapterLoss)}</td>
                <td>{perplexity(evaluation.adapterPerplexity)}</td>
              </tr>
            </tbody>
          </table>
          <Samples samples={evaluation.samples} testId="job-evaluation-samples" />
        </>
      )}
      <label className="field field-wide">
        <span className="field-label">Try your own prompts (one per line)</span>
        <textarea
          rows={3}
          value={prompts}
          onChange={(e) => setPrompts(e.target.value)}
          data-testid="evaluation-prompts"
        />
      </label>
      <button
        type="button"
        className="button button-primary"
        onClick={() => void submit()}
        disabled={!prompts.trim() || (running !== null && !TERMINAL.includes(running.status))}
        data-testid="evaluation-run"
      >
        Compare base and adapter
      </button>
      {running && !TERMINAL.includes(running.status) && (
        <p className="muted">
          <Spinner /> Evaluating ({running.status})…
        </p>
      )}
      {running?.status === 'failed' && (
        <p className="field-error">
          [{running.error?.code}] {running.error?.message}
        </p>
      )}
      {running?.status === 'succeeded' && running.result && (
        <Samples samples={running.result.samples} testId="evaluation-custom-samples" />
      )}
    </Card>
  );
}
