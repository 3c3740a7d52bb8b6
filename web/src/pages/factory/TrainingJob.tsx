// /factory/jobs/:id — a training run followed live over server-sent events: status timeline,
// loss chart, throughput and ETA, cancel; at the end the adapter, its held-out loss against the
// base model's, and the tokens each contributor's rows gave.
import { useCallback, useEffect, useRef, useState } from 'react';
import { Icon } from '../../components/icons';
import { PageHeader } from '../../components/PageHeader';
import { Card, Spinner } from '../../components/ui';
import {
  TERMINAL_JOB_STATUSES,
  datanetsApi,
  factoryApi,
  jobsApi,
  toApiError,
  type ApiError,
  type BaseModel,
  type JobStatus,
  type TrainJob,
  type TrainProgress,
} from '../../lib/api';
import { useAuth } from '../../lib/auth';
import { formatDuration } from '../../lib/format';
import { useNotify } from '../../lib/notify';
import { Link } from '../../lib/router';
import { ActionStep, ContributorLink, Hash, SignInNotice, useAction } from '../datanets/common';
import {
  formatInt,
  formatLoss,
  formatRate,
  improvement,
  JobStatusBadge,
  modelName,
  TEMPLATE_INFO,
} from './common';
import { ExportLinks } from './ExportLinks';
import { EvaluationSection } from './EvaluationSection';
import { PublishModel } from './PublishModel';
import { LossChart, type LossPoint } from './LossChart';

interface StatusEvent {
  id: number;
  status: JobStatus;
  at: string;
  reason?: string;
  attempt?: number;
  error?: { code: string; message: string; hint?: string };
}

/** The event stream: `ended` once the final status arrived (the server closes it then). */
type Connection = 'connecting' | 'live' | 'reconnecting' | 'lost' | 'ended';

const connectionLabel: Record<Exclude<Connection, 'ended'>, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  lost: 'Disconnected',
};

function time(at: string | undefined): string {
  if (!at) return '';
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? at : d.toLocaleTimeString();
}

/** Everything the event stream tells about a job, folded as events arrive. */
interface Live {
  statuses: StatusEvent[];
  points: LossPoint[];
  progress: TrainProgress | null;
  lastEvalLoss: number | null;
  checkpoints: number;
  logs: { id: number; at: string; message: string }[];
}

const EMPTY: Live = {
  statuses: [],
  points: [],
  progress: null,
  lastEvalLoss: null,
  checkpoints: 0,
  logs: [],
};

/**
 * Follows /api/jobs/:id/events. EventSource reconnects by itself with Last-Event-ID; events are
 * also de-duplicated by id so that a manual reconnect (a fresh stream replays the history) folds
 * nothing twice. The stream is closed after the final status event (the server ends it there).
 */
function useJobEvents(id: string, onTerminal: () => void) {
  const [live, setLive] = useState<Live>(EMPTY);
  const [connection, setConnection] = useState<Connection>('connecting');
  const [attempt, setAttempt] = useState(0);
  const lastId = useRef(0);
  const terminalRef = useRef(onTerminal);
  useEffect(() => {
    terminalRef.current = onTerminal;
  });

  useEffect(() => {
    const source = new EventSource(jobsApi.eventsUrl(id));
    setConnection('connecting');
    const accept = (e: MessageEvent<string>): (Record<string, unknown> & { at: string }) | null => {
      const n = Number(e.lastEventId);
      if (Number.isFinite(n) && n > 0) {
        if (n <= lastId.current) return null;
        lastId.current = n;
      }
      try {
        return JSON.parse(e.data) as Record<string, unknown> & { at: string };
      } catch {
        return null;
      }
    };
    source.onopen = () => setConnection('live');
    source.onerror = () =>
      setConnection(source.readyState === EventSource.CLOSED ? 'lost' : 'reconnecting');
    source.addEventListener('status', (e) => {
      const replayed = Number(e.lastEventId) <= lastId.current;
      const data = accept(e);
      let status: unknown;
      try {
        status = (JSON.parse(e.data) as { status?: unknown }).status;
      } catch {
        return;
      }
      if (data) {
        const event = { ...data, id: Number(e.lastEventId) } as unknown as StatusEvent;
        setLive((prev) => ({ ...prev, statuses: [...prev.statuses, event] }));
      }
      // The final status ends the stream, also when a fresh stream replays one already seen
      // (otherwise EventSource would reconnect to a finished job again and again).
      if (TERMINAL_JOB_STATUSES.includes(status as JobStatus)) {
        source.close();
        setConnection('ended');
        if (!replayed) terminalRef.current();
      }
    });
    source.addEventListener('progress', (e) => {
      const data = accept(e) as (TrainProgress & { at: string }) | null;
      if (!data || !Number.isFinite(data.step)) return;
      setLive((prev) => {
        const point: LossPoint = {
          step: data.step,
          loss: data.loss,
          ...(typeof data.evalLoss === 'number' ? { evalLoss: data.evalLoss } : {}),
        };
        // A run resumed from a checkpoint repeats the steps after it: keep the latest.
        const points = prev.points.filter((p) => p.step < point.step);
        points.push(point);
        return {
          ...prev,
          points,
          progress: data,
          lastEvalLoss: typeof data.evalLoss === 'number' ? data.evalLoss : prev.lastEvalLoss,
        };
      });
    });
    source.addEventListener('checkpoint', (e) => {
      if (!accept(e)) return;
      setLive((prev) => ({ ...prev, checkpoints: prev.checkpoints + 1 }));
    });
    source.addEventListener('log', (e) => {
      const data = accept(e);
      if (!data || typeof data.message !== 'string') return;
      const message = data.message;
      setLive((prev) => ({
        ...prev,
        logs: [...prev.logs, { id: Number(e.lastEventId), at: data.at, message }],
      }));
    });
    return () => source.close();
  }, [id, attempt]);

  const reconnect = useCallback(() => setAttempt((n) => n + 1), []);
  return { live, connection, reconnect };
}

function Stat({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd data-testid={testId}>{value}</dd>
    </div>
  );
}

function Timeline({ statuses, current }: { statuses: StatusEvent[]; current: JobStatus }) {
  if (statuses.length === 0) {
    return (
      <p className="muted" data-testid="job-timeline-empty">
        Currently <JobStatusBadge status={current} testId="job-timeline-current" />
      </p>
    );
  }
  return (
    <ol className="timeline" data-testid="job-timeline">
      {statuses.map((s) => (
        <li key={s.id} data-testid="job-timeline-event" data-status={s.status}>
          <span className={`timeline-dot timeline-${s.status}`} aria-hidden="true" />
          <JobStatusBadge status={s.status} testId="job-timeline-status" />
          <span className="muted small">{time(s.at)}</span>
          {s.reason && <span className="small">{s.reason}</span>}
          {s.attempt !== undefined && s.attempt > 1 && (
            <span className="small">attempt {s.attempt}</span>
          )}
          {s.error && <span className="small fail-text">{s.error.message}</span>}
        </li>
      ))}
    </ol>
  );
}

function Result({ job }: { job: TrainJob }) {
  const r = job.result!;
  const gain = improvement(r.evalLoss, r.baseEvalLoss);
  const contributors = Object.entries(r.contributors).sort((a, b) => b[1] - a[1]);
  return (
    <Card title="Result" testId="job-result">
      <dl className="stats job-stats">
        <Stat label="Training loss" value={formatLoss(r.trainLoss)} testId="result-train-loss" />
        <Stat
          label="Held-out loss (adapter)"
          value={formatLoss(r.evalLoss)}
          testId="result-eval-loss"
        />
        <Stat
          label="Held-out loss (base model)"
          value={formatLoss(r.baseEvalLoss)}
          testId="result-base-eval-loss"
        />
        <Stat
          label="Improvement over base"
          value={gain === null ? '—' : `${gain.toFixed(1)}%`}
          testId="result-improvement"
        />
        <Stat label="Tokens trained" value={formatInt(r.tokens)} testId="result-tokens" />
        <Stat label="Tokens seen" value={formatInt(r.tokensSeen)} testId="result-tokens-seen" />
        <Stat
          label="Rows (train / held out)"
          value={`${r.rows.train} / ${r.rows.eval}`}
          testId="result-rows"
        />
        <Stat label="Duration" value={formatDuration(r.seconds)} testId="result-seconds" />
      </dl>
      {r.evalLoss === null && (
        <p className="muted small">
          No row was held out (a single row, or a held-out share of 0%): there is no held-out loss.
        </p>
      )}
      {gain !== null && (
        <p className="small result-sentence" data-testid="result-summary">
          On the held-out rows the adapter&apos;s loss is {formatLoss(r.evalLoss)} against{' '}
          {formatLoss(r.baseEvalLoss)} for the base model alone:{' '}
          {gain >= 0 ? `${gain.toFixed(1)}% lower` : `${(-gain).toFixed(1)}% higher`}.
        </p>
      )}

      <h3 className="job-subtitle">Tokens per contributor</h3>
      <div className="table-wrap-inline">
        <table className="table table-compact" data-testid="result-contributors">
          <thead>
            <tr>
              <th>Contributor</th>
              <th className="num">Tokens trained</th>
              <th className="num">Share</th>
            </tr>
          </thead>
          <tbody>
            {contributors.map(([address, tokens]) => (
              <tr key={address} data-testid="result-contributor" data-address={address}>
                <td>
                  <ContributorLink address={address} full />
                </td>
                <td className="num" data-testid="result-contributor-tokens">
                  {formatInt(tokens)}
                </td>
                <td className="num">
                  {r.tokens > 0 ? `${((tokens / r.tokens) * 100).toFixed(1)}%` : '—'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <h3 className="job-subtitle">Artifacts</h3>
      <dl className="kv">
        <dt>Adapter blob</dt>
        <dd>
          <Hash value={r.adapterBlobId} testId="result-adapter-blob" copy head={14} tail={10} />
        </dd>
        <dt>Manifest hash</dt>
        <dd>
          <Hash value={r.manifestHash} testId="result-manifest-hash" copy head={14} tail={10} />
        </dd>
        <dt>Manifest blob</dt>
        <dd>
          <Hash value={r.manifestBlobId} testId="result-manifest-blob" copy head={14} tail={10} />
        </dd>
      </dl>
      <ExportLinks jobId={job.id} />
      <Link
        to={`/playground?${new URLSearchParams({ adapter: r.adapterBlobId, base: job.params.baseModel })}`}
        className="button button-secondary"
        data-testid="job-chat-link"
      >
        Chat with this adapter
      </Link>
    </Card>
  );
}

function JobView({ id }: { id: string }) {
  const { report } = useNotify();
  const { busy, step, run } = useAction();
  const [job, setJob] = useState<TrainJob | null>(null);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  const [names, setNames] = useState<Map<number, string>>(new Map());
  const [models, setModels] = useState<BaseModel[]>([]);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        setJob((await jobsApi.get(id, signal)) as TrainJob);
        setLoadError(null);
      } catch (err) {
        if (signal?.aborted) return;
        setLoadError(toApiError(err));
        report(err);
      }
    },
    [id, report],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    datanetsApi
      .list({}, ctrl.signal)
      .then(({ datanets }) => setNames(new Map(datanets.map((d) => [d.id, d.name]))))
      .catch(() => {
        /* names are a nicety */
      });
    factoryApi
      .models(ctrl.signal)
      .then(({ models }) => setModels(models))
      .catch(() => {
        /* only used to show the token limit the model's context imposes */
      });
    return () => ctrl.abort();
  }, [load]);

  // At the final status the result (or error) is read from the job itself.
  const { live, connection, reconnect } = useJobEvents(id, () => void load());

  if (!job) {
    return loadError ? (
      <div className="notice" data-testid="job-unavailable">
        <Icon name="info" />
        <div>
          <p className="notice-title">
            {loadError.status === 404
              ? 'There is no such training run'
              : 'The run could not be loaded'}
          </p>
          <p className="muted">{loadError.message}</p>
        </div>
      </div>
    ) : (
      <Spinner label="Loading the training run…" />
    );
  }

  const lastStatus = live.statuses[live.statuses.length - 1]?.status;
  // The stream is the freshest source, unless the job row already says it is over.
  const status: JobStatus = TERMINAL_JOB_STATUSES.includes(job.status)
    ? job.status
    : (lastStatus ?? job.status);
  const terminal = TERMINAL_JOB_STATUSES.includes(status);
  const progress = live.progress ?? job.progress;
  const h = job.params.hyperparameters;
  const context = models.find((m) => m.name === modelName(job.params.baseModel))?.contextLength;
  const maxTokens = context !== undefined && context < h.maxTokens ? context : h.maxTokens;
  const pct = progress && progress.of > 0 ? Math.min(100, (progress.step / progress.of) * 100) : 0;
  const error =
    job.error ?? live.statuses.find((s) => s.status === 'failed' && s.error)?.error ?? null;

  const cancel = async () => {
    const updated = await run(async (setStep) => {
      setStep('Cancelling…');
      return jobsApi.cancel(id);
    });
    if (updated) setJob(updated as TrainJob);
  };

  return (
    <div data-testid="job-view" data-status={status} data-job-id={job.id}>
      <div className="chips job-chips">
        <JobStatusBadge status={status} testId="job-status" />
        {connection !== 'ended' && (
          <span
            className={`chip ${connection === 'live' ? 'chip-ok' : connection === 'lost' ? 'chip-fail' : ''}`}
            title="Progress arrives live from the node"
            data-testid="job-connection"
            data-connection={connection}
          >
            {connectionLabel[connection]}
          </span>
        )}
        {connection === 'lost' && (
          <button
            type="button"
            className="button button-secondary button-small"
            onClick={reconnect}
            data-testid="job-reconnect"
          >
            Reconnect
          </button>
        )}
        {!terminal && (
          <>
            <button
              type="button"
              className="button button-danger-ghost button-small"
              onClick={() => void cancel()}
              disabled={busy || job.cancelRequested}
              data-testid="job-cancel"
            >
              {job.cancelRequested ? 'Cancelling…' : 'Cancel run'}
            </button>
            <ActionStep step={step} testId="job-cancel-step" />
          </>
        )}
      </div>

      {status === 'failed' && error && (
        <div className="notice notice-fail" data-testid="job-error" data-code={error.code}>
          <Icon name="alert" />
          <div>
            <p className="notice-title">The run failed</p>
            <p>{error.message}</p>
            {error.hint && <p className="muted">{error.hint}</p>}
            <p className="muted small mono">{error.code}</p>
          </div>
        </div>
      )}
      {status === 'cancelled' && (
        <div className="notice notice-pending" data-testid="job-cancelled">
          <Icon name="info" />
          <div>
            <p className="notice-title">The run was cancelled</p>
            <p className="muted">No adapter was stored. Start a new run from the Model Factory.</p>
          </div>
        </div>
      )}

      <Card title="Training" testId="job-training">
        <div className="progress job-progress-main">
          <div className="progress-head">
            <span className="progress-label" data-testid="job-step">
              {progress
                ? `Step ${formatInt(progress.step)} of ${formatInt(progress.of)}`
                : `Step 0 of ${formatInt(h.steps)}`}
            </span>
            <span>{pct.toFixed(0)}%</span>
          </div>
          <div className="progress-track" aria-hidden="true">
            <div className="progress-bar" style={{ width: `${pct}%` }} />
          </div>
        </div>
        <dl className="stats job-stats">
          <Stat label="Loss" value={formatLoss(progress?.loss)} testId="job-loss" />
          <Stat
            label="Held-out loss"
            value={formatLoss(live.lastEvalLoss)}
            testId="job-eval-loss"
          />
          <Stat
            label="Learning rate"
            value={formatRate(progress?.learningRate)}
            testId="job-learning-rate"
          />
          <Stat
            label="Tokens / s"
            value={formatInt(progress?.tokensPerSecond)}
            testId="job-tokens-per-second"
          />
          <Stat
            label="ETA"
            value={
              terminal || !progress
                ? '—'
                : progress.etaSeconds < 1
                  ? '< 1s'
                  : formatDuration(progress.etaSeconds)
            }
            testId="job-eta"
          />
          <Stat label="Checkpoints" value={String(live.checkpoints)} testId="job-checkpoints" />
        </dl>
        <LossChart points={live.points} of={progress?.of ?? h.steps} />
      </Card>

      {job.status === 'succeeded' && job.result && <Result job={job} />}
      {job.status === 'succeeded' && job.result && <EvaluationSection jobId={job.id} />}
      {job.status === 'succeeded' && job.result && <PublishModel job={job} />}

      <div className="grid job-grid">
        <Card title="Status" testId="job-status-card">
          <Timeline statuses={live.statuses} current={status} />
          {live.logs.length > 0 && (
            <ul className="plain-list job-logs" data-testid="job-logs">
              {live.logs.map((l) => (
                <li key={l.id} className="small">
                  <span className="muted">{time(l.at)}</span> {l.message}
                </li>
              ))}
            </ul>
          )}
        </Card>
        <Card title="Configuration" testId="job-params">
          <dl className="kv">
            <dt>Base model</dt>
            <dd data-testid="job-model">{modelName(job.params.baseModel)}</dd>
            <dt>Datanets</dt>
            <dd>
              <ul className="plain-list">
                {job.params.datanets.map((d) => (
                  <li key={d.id}>
                    <Link to={`/datanets/${d.id}`}>{names.get(d.id) ?? `Datanet #${d.id}`}</Link>{' '}
                    <span className="muted">
                      {d.version === 'latest' ? 'latest' : `v${d.version}`}
                    </span>
                  </li>
                ))}
              </ul>
            </dd>
            <dt>Template</dt>
            <dd data-testid="job-template">
              {job.params.template}{' '}
              <span className="muted">· {TEMPLATE_INFO[job.params.template]?.label}</span>
            </dd>
            <dt>LoRA</dt>
            <dd>
              rank {h.rank}, alpha {h.alpha}, dropout {h.dropout} on {h.targets.join(', ')}
            </dd>
            <dt>Training</dt>
            <dd>
              {formatInt(h.steps)} steps × batch {h.batchSize}, learning rate {h.learningRate}{' '}
              (warm-up {formatInt(h.warmupSteps)}), max {formatInt(maxTokens)} tokens per row
              {maxTokens < h.maxTokens
                ? ` (${formatInt(h.maxTokens)} capped at the model's context)`
                : ''}
              , seed {h.seed}
            </dd>
            <dt>Held out</dt>
            <dd>
              {h.evalPercent}% of rows; a checkpoint every {formatInt(h.checkpointEvery)} steps
            </dd>
          </dl>
        </Card>
      </div>
    </div>
  );
}

export function TrainingJobPage({ id }: { id: string }) {
  const { session, checking } = useAuth();
  return (
    <div className="page" data-testid="page-factory-job" data-job-id={id}>
      <Link to="/factory" className="back-link" data-testid="back-to-factory">
        ← Model Factory
      </Link>
      <PageHeader title="Training run">
        <span className="mono small" title={id}>
          {id}
        </span>
      </PageHeader>
      {checking ? (
        <Spinner label="Checking session…" />
      ) : !session ? (
        <SignInNotice title="Sign in to follow this run">
          A training run is visible only to the wallet that started it.
        </SignInNotice>
      ) : (
        <JobView key={`${session.address}:${id}`} id={id} />
      )}
    </div>
  );
}
