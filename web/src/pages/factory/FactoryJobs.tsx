// /factory: the caller's training runs, with their status and progress.
import { useCallback, useEffect, useState } from 'react';
import { Icon } from '../../components/icons';
import { PageHeader } from '../../components/PageHeader';
import { Card, Spinner } from '../../components/ui';
import { TERMINAL_JOB_STATUSES, datanetsApi, factoryApi, type TrainJob } from '../../lib/api';
import { useAuth } from '../../lib/auth';
import { formatDate } from '../../lib/format';
import { useNotify } from '../../lib/notify';
import { Link } from '../../lib/router';
import { SignInNotice } from '../datanets/common';
import { formatInt, formatLoss, JobStatusBadge, modelName } from './common';

/** How often the list refreshes while a run is active. */
const REFRESH_MS = 3000;

function JobProgress({ job }: { job: TrainJob }) {
  const p = job.progress;
  if (!p) return <span className="muted">—</span>;
  const pct = p.of > 0 ? Math.min(100, (p.step / p.of) * 100) : 0;
  return (
    <div className="job-progress" data-testid="job-progress" data-step={p.step} data-of={p.of}>
      <div className="progress-track" aria-hidden="true">
        <div className="progress-bar" style={{ width: `${pct}%` }} />
      </div>
      <span className="small">
        step {formatInt(p.step)}/{formatInt(p.of)} · loss {formatLoss(p.loss)}
      </span>
    </div>
  );
}

function JobsTable() {
  const { report } = useNotify();
  const [jobs, setJobs] = useState<TrainJob[] | null>(null);
  const [names, setNames] = useState<Map<number, string>>(new Map());

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        setJobs((await factoryApi.trainJobs(signal)).jobs);
      } catch (err) {
        if (!signal?.aborted) report(err);
      }
    },
    [report],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    datanetsApi
      .list({}, ctrl.signal)
      .then(({ datanets }) => setNames(new Map(datanets.map((d) => [d.id, d.name]))))
      .catch(() => {
        /* names are a nicety: ids are shown without them */
      });
    return () => ctrl.abort();
  }, [load]);

  const active = jobs?.some((j) => !TERMINAL_JOB_STATUSES.includes(j.status)) ?? false;
  useEffect(() => {
    if (!active) return;
    const ctrl = new AbortController();
    const timer = window.setInterval(() => void load(ctrl.signal), REFRESH_MS);
    return () => {
      window.clearInterval(timer);
      ctrl.abort();
    };
  }, [active, load]);

  return (
    <Card
      title="Your training runs"
      testId="factory-jobs-card"
      actions={
        <button
          type="button"
          className="button button-secondary button-small"
          onClick={() => void load()}
          data-testid="factory-jobs-refresh"
        >
          Refresh
        </button>
      }
    >
      {jobs === null ? (
        <Spinner label="Loading training runs…" />
      ) : jobs.length === 0 ? (
        <div className="empty" data-testid="factory-jobs-empty">
          <Icon name="factory" />
          <p className="muted">No training runs yet. Start one with “New training run”.</p>
        </div>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="factory-jobs-table">
            <thead>
              <tr>
                <th>Run</th>
                <th>Base model</th>
                <th>Datanets</th>
                <th>Status</th>
                <th>Progress</th>
                <th>Started</th>
              </tr>
            </thead>
            <tbody>
              {jobs.map((job) => (
                <tr key={job.id} data-testid="factory-job-row" data-job-id={job.id}>
                  <td>
                    <Link
                      to={`/factory/jobs/${job.id}`}
                      className="mono strong"
                      title={job.id}
                      data-testid="factory-job-link"
                    >
                      {job.id.slice(0, 8)}
                    </Link>
                    <span className="cell-sub">{job.params.template}</span>
                  </td>
                  <td>{modelName(job.params.baseModel)}</td>
                  <td className="wrap">
                    {job.params.datanets.map((d, i) => (
                      <span key={d.id}>
                        {i > 0 && ', '}
                        <Link to={`/datanets/${d.id}`}>{names.get(d.id) ?? `#${d.id}`}</Link>{' '}
                        <span className="muted">
                          {d.version === 'latest' ? 'latest' : `v${d.version}`}
                        </span>
                      </span>
                    ))}
                  </td>
                  <td>
                    <JobStatusBadge status={job.status} />
                  </td>
                  <td>
                    <JobProgress job={job} />
                  </td>
                  <td>{formatDate(job.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

export function FactoryPage() {
  const { session, checking } = useAuth();
  return (
    <div className="page" data-testid="page-factory">
      <PageHeader
        title="Model Factory"
        actions={
          session && (
            <Link
              to="/factory/new"
              className="button button-primary"
              data-testid="new-training-run"
            >
              New training run
            </Link>
          )
        }
      >
        Fine-tune LoRA adapters on the node&apos;s base models with the data of one or more
        datanets, without writing code. Every run records which rows it used and whose they were.
      </PageHeader>
      {checking ? (
        <Spinner label="Checking session…" />
      ) : !session ? (
        <SignInNotice title="Sign in to train models">
          Training runs belong to the wallet that starts them. Connect your wallet and sign in to
          see yours and start a new one.
        </SignInNotice>
      ) : (
        <JobsTable key={session.address} />
      )}
    </div>
  );
}
