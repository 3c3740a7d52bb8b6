// The memory/time estimate of a training run (POST /api/factory/estimate), shown in the wizard's
// hyperparameter step: it follows the fields as they are edited.
import { useEffect, useState } from 'react';
import { request, type Hyperparameters } from '../../lib/api';
import { formatBytes } from '../datanets/common';
import { formatInt } from './common';

interface Estimate {
  maxTokens: number;
  parameters: { base: number; trainable: number; trainablePercent: number };
  memory: {
    baseStoredBytes: number;
    baseF32Bytes: number;
    kvCacheBytes: number;
    loraBytes: number;
    activationBytes: number;
    evaluationBytes: number;
    peakBytes: number;
  };
  compute: { flopsPerStep: number; totalFlops: number };
  time?: { flopsPerSecond: number; secondsPerStep: number; totalSeconds: number };
}

function duration(seconds: number): string {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function TrainingEstimate({
  baseModel,
  hyperparameters,
}: {
  baseModel: string;
  /** Undefined while the fields are invalid. */
  hyperparameters: Partial<Hyperparameters> | undefined;
}) {
  const key = hyperparameters && baseModel ? JSON.stringify([baseModel, hyperparameters]) : '';
  const [state, setState] = useState<{ key: string; estimate?: Estimate; error?: string }>({
    key: '',
  });
  useEffect(() => {
    if (!key) return;
    const ctrl = new AbortController();
    // wait for the typing to pause: each estimate reads the model header and may run a probe
    const timer = setTimeout(() => {
      const [model, h] = JSON.parse(key) as [string, Partial<Hyperparameters>];
      request<Estimate>('/api/factory/estimate', {
        method: 'POST',
        body: { baseModel: model, hyperparameters: h },
        signal: ctrl.signal,
      })
        .then((estimate) => setState({ key, estimate }))
        .catch((err: unknown) => {
          if (!ctrl.signal.aborted)
            setState({ key, error: err instanceof Error ? err.message : String(err) });
        });
    }, 400);
    return () => {
      clearTimeout(timer);
      ctrl.abort();
    };
  }, [key]);

  if (!key) return null;
  const e = state.key === key ? state.estimate : undefined;
  if (state.key === key && state.error)
    return (
      <p className="estimate field-error" data-testid="hp-resource-estimate-error">
        No memory estimate: {state.error}
      </p>
    );
  if (!e)
    return (
      <p className="estimate muted" data-testid="hp-resource-estimate-pending">
        Estimating memory and time…
      </p>
    );
  return (
    <div className="estimate" data-testid="hp-resource-estimate">
      <p>
        Peak memory about{' '}
        <strong data-testid="hp-estimate-peak">{formatBytes(e.memory.peakBytes)}</strong>
        {e.time && (
          <>
            {' '}
            · training about{' '}
            <strong data-testid="hp-estimate-time">{duration(e.time.totalSeconds)}</strong> on this
            node for full rows of {formatInt(e.maxTokens)} tokens (shorter rows go faster)
          </>
        )}
      </p>
      <dl className="kv">
        <dt>Trainable</dt>
        <dd data-testid="hp-estimate-trainable">
          {formatInt(e.parameters.trainable)} of {formatInt(e.parameters.base)} parameters (
          {e.parameters.trainablePercent}%)
        </dd>
        <dt>Base weights</dt>
        <dd>
          {formatBytes(e.memory.baseStoredBytes)} stored, {formatBytes(e.memory.baseF32Bytes)} as
          float32
        </dd>
        <dt>Adapter + AdamW</dt>
        <dd>{formatBytes(e.memory.loraBytes)}</dd>
        <dt>Activations</dt>
        <dd>{formatBytes(e.memory.activationBytes)} per micro-batch</dd>
        <dt>Compute</dt>
        <dd>{(e.compute.totalFlops / 1e12).toFixed(2)} TFLOP in all</dd>
      </dl>
    </div>
  );
}
