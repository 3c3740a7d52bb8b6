// /proposals — model proposals, bounties for models (GET /api/proposals): what each asks for
// (goal, training datanet, evaluation set, metric and bar), its funding, deadline and state, and
// the model submitted for it. Signed in, a form creates one as `openledger proposal create` does:
// the node checks the specification (POST /api/proposals/validate, which gives its sha256), the
// wallet approves the initial funding and calls ModelProposals.create, and the node is given the
// specification (POST /api/proposals) under the new id.
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { parseEventLogs } from 'viem';
import { Icon } from '../../components/icons';
import { PageHeader } from '../../components/PageHeader';
import { Badge, Card, Spinner } from '../../components/ui';
import { ApiError, datanetsApi, type DatanetSummary } from '../../lib/api';
import { useAuth } from '../../lib/auth';
import { approveOpen, chainNow, ModelProposalsAbi, useChainWallet } from '../../lib/chain';
import { formatDuration, formatUnixTime as at } from '../../lib/format';
import { useNode } from '../../lib/node';
import { useNotify } from '../../lib/notify';
import { Link, useRouter } from '../../lib/router';
import { ActionStep, SignInNotice, useAction } from '../datanets/common';
import { parseOpen } from '../escrow/api';
import { openText } from '../market/api';

import {
  barText,
  METRICS,
  metricText,
  proposalsApi,
  shownStatus,
  statusTone,
  toScore,
  type ModelProposal,
  type ProposalSettings,
  type ProposalSpec,
} from './api';

/** A time the chain decides (Unix seconds) as a date. */

/** `(in 2d 3h)` or `(passed)` against the chain's clock; empty when it is not known. */
export function untilText(seconds: number, now: number | null): string {
  if (now === null) return '';
  return seconds > now ? `(in ${formatDuration(seconds - now)})` : '(passed)';
}

export function ProposalStatus({ proposal: p }: { proposal: ModelProposal }) {
  const shown = shownStatus(p);
  return (
    <span data-testid="proposal-status" data-status={shown}>
      <Badge tone={statusTone[shown]}>{shown}</Badge>
    </span>
  );
}

/** `#3 colours` for a datanet this node knows, `#3` otherwise. */
export function datanetText(id: number, datanets: DatanetSummary[]): string {
  const d = datanets.find((x) => x.id === id);
  return d ? `#${id} ${d.name}` : `#${id}`;
}

export function fundingText(p: ModelProposal): string {
  return BigInt(p.minFunding) > 0n
    ? `${openText(p.funded)} / ${openText(p.minFunding)}`
    : openText(p.funded);
}

function invalid(message: string, field: string): ApiError {
  return new ApiError({ status: 0, code: 'VALIDATION_FAILED', message, details: { field } });
}

const UNITS = { hours: 3600, days: 86_400 } as const;

function CreateForm({ datanets }: { datanets: DatanetSummary[] }) {
  const { status } = useNode();
  const { navigate } = useRouter();
  const wallet = useChainWallet();
  const { busy, step, run } = useAction();
  const committed = datanets.filter((d) => d.stats.latestVersion > 0);
  const [title, setTitle] = useState('');
  const [goal, setGoal] = useState('');
  const [datanetId, setDatanetId] = useState('');
  const [evalId, setEvalId] = useState('');
  const [evalVersion, setEvalVersion] = useState('');
  const [bar, setBar] = useState('');
  const [deadline, setDeadline] = useState('7');
  const [unit, setUnit] = useState<keyof typeof UNITS>('days');
  const [minFunding, setMinFunding] = useState('');
  const [funding, setFunding] = useState('');

  const pickEvaluation = (id: string) => {
    setEvalId(id);
    const d = committed.find((x) => String(x.id) === id);
    setEvalVersion(d ? String(d.stats.latestVersion) : '');
  };

  const create = async (e: FormEvent) => {
    e.preventDefault();
    const created = await run(async (setStep) => {
      if (!title.trim()) throw invalid('Give the proposal a title.', 'title');
      if (!goal.trim()) throw invalid('Say what the model is for (the goal).', 'goal');
      if (!datanetId) throw invalid('Pick the datanet the model must be trained on.', 'datanetId');
      if (!evalId)
        throw invalid('Pick the datanet whose rows are the evaluation set.', 'evaluation');
      const version = Number(evalVersion);
      if (!Number.isSafeInteger(version) || version < 1)
        throw invalid('The evaluation version is a committed version number.', 'evaluation');
      const barValue = Number(bar);
      if (!bar.trim() || !Number.isFinite(barValue) || barValue <= 0)
        throw invalid('The bar is a perplexity above 0 (a model must score at most this).', 'bar');
      const span = Number(deadline);
      if (!deadline.trim() || !Number.isFinite(span) || span <= 0)
        throw invalid(`The deadline is a number of ${unit} from now.`, 'deadline');
      const min = minFunding.trim() ? parseOpen(minFunding) : 0n;
      const initial = funding.trim() ? parseOpen(funding) : 0n;
      const spec: ProposalSpec = {
        title: title.trim(),
        goal: goal.trim(),
        datanetId: Number(datanetId),
        evaluation: { datanetId: Number(evalId), version },
        metric: 'perplexity',
      };
      setStep('Checking the specification…');
      const checked = await proposalsApi.validate(spec);
      const contract = checked.settings.address;
      if (!status) throw invalid('The node status is not loaded yet.', 'status');
      const w = await wallet();
      if (initial > 0n) {
        setStep('Approving OPEN…');
        await approveOpen(w, checked.settings.token, contract, initial);
      }
      const end = (await chainNow(status)) + Math.round(span * UNITS[unit]);
      setStep('Creating on-chain…');
      const tx = await w.send({
        address: contract,
        abi: ModelProposalsAbi,
        functionName: 'create',
        args: [
          `0x${checked.specHash}`,
          BigInt(checked.spec.datanetId),
          toScore(barValue),
          METRICS[checked.spec.metric].higherIsBetter,
          BigInt(end),
          min,
          initial,
        ],
      });
      const receipt = await w.publicClient.getTransactionReceipt({ hash: tx });
      const [event] = parseEventLogs({
        abi: ModelProposalsAbi,
        eventName: 'ProposalCreated',
        logs: receipt.logs,
      });
      const id = event
        ? event.args.id
        : await w.publicClient.readContract({
            address: contract,
            abi: ModelProposalsAbi,
            functionName: 'proposalCount',
          });
      setStep('Registering the specification with the node…');
      return proposalsApi.register(Number(id), checked.spec);
    });
    if (created) navigate(`/proposals/${created.id}`);
  };

  return (
    <form onSubmit={(e) => void create(e)} noValidate data-testid="proposal-create-form">
      <div className="form-grid">
        <label className="field field-wide">
          <span className="field-label">Title</span>
          <input
            type="text"
            value={title}
            onChange={(e) => setTitle(e.target.value)}
            maxLength={200}
            placeholder="e.g. A household colours model"
            disabled={busy}
            data-testid="proposal-title"
          />
        </label>
        <label className="field field-wide">
          <span className="field-label">Goal</span>
          <textarea
            rows={3}
            value={goal}
            onChange={(e) => setGoal(e.target.value)}
            maxLength={8000}
            placeholder="What the model is for, in words."
            disabled={busy}
            data-testid="proposal-goal"
          />
        </label>
        <label className="field">
          <span className="field-label">Training datanet</span>
          <select
            value={datanetId}
            onChange={(e) => setDatanetId(e.target.value)}
            disabled={busy}
            data-testid="proposal-datanet"
          >
            <option value="">Pick a datanet…</option>
            {datanets.map((d) => (
              <option key={d.id} value={d.id}>
                #{d.id} {d.name}
              </option>
            ))}
          </select>
          <span className="field-help">A winning model must cite a version of it on-chain.</span>
        </label>
        <label className="field">
          <span className="field-label">Evaluation set: datanet</span>
          <select
            value={evalId}
            onChange={(e) => pickEvaluation(e.target.value)}
            disabled={busy}
            data-testid="proposal-eval-datanet"
          >
            <option value="">Pick a datanet…</option>
            {committed.map((d) => (
              <option key={d.id} value={d.id}>
                #{d.id} {d.name}
              </option>
            ))}
          </select>
          <span className="field-help">Its rows score candidate models (a committed version).</span>
        </label>
        <label className="field">
          <span className="field-label">Evaluation version</span>
          <input
            type="text"
            inputMode="numeric"
            value={evalVersion}
            onChange={(e) => setEvalVersion(e.target.value)}
            disabled={busy}
            data-testid="proposal-eval-version"
          />
        </label>
        <label className="field">
          <span className="field-label">Bar: {METRICS.perplexity.label}</span>
          <input
            type="text"
            inputMode="decimal"
            value={bar}
            onChange={(e) => setBar(e.target.value)}
            placeholder="e.g. 12.5"
            disabled={busy}
            data-testid="proposal-bar"
          />
          <span className="field-help">A model must score at most this perplexity.</span>
        </label>
        <div className="field">
          <span className="field-label">Deadline, from now (chain time)</span>
          <div className="toolbar">
            <input
              type="text"
              inputMode="decimal"
              size={6}
              value={deadline}
              onChange={(e) => setDeadline(e.target.value)}
              aria-label="Deadline"
              disabled={busy}
              data-testid="proposal-deadline"
            />
            <select
              value={unit}
              onChange={(e) => setUnit(e.target.value as keyof typeof UNITS)}
              aria-label="Deadline unit"
              disabled={busy}
              data-testid="proposal-deadline-unit"
            >
              <option value="hours">hours</option>
              <option value="days">days</option>
            </select>
          </div>
        </div>
        <label className="field">
          <span className="field-label">Minimum funding (OPEN)</span>
          <input
            type="text"
            inputMode="decimal"
            value={minFunding}
            onChange={(e) => setMinFunding(e.target.value)}
            placeholder="0"
            disabled={busy}
            data-testid="proposal-min-funding"
          />
          <span className="field-help">Below it, no model can win: funders are refunded.</span>
        </label>
        <label className="field">
          <span className="field-label">Initial funding (OPEN)</span>
          <input
            type="text"
            inputMode="decimal"
            value={funding}
            onChange={(e) => setFunding(e.target.value)}
            placeholder="0"
            disabled={busy}
            data-testid="proposal-initial-funding"
          />
        </label>
      </div>
      <div className="form-actions toolbar">
        <button
          type="submit"
          className="button button-primary"
          disabled={busy}
          data-testid="proposal-create"
        >
          Create proposal
        </button>
        <ActionStep step={step} testId="proposal-create-step" />
      </div>
      <p className="muted small">
        The specification (title, goal, datanets, metric) is checked by the node and its sha256 goes
        on-chain; your wallet approves the initial funding, then calls ModelProposals.create, and
        the node keeps the specification to evaluate models against it.
      </p>
    </form>
  );
}

export function ProposalsPage() {
  const { session, checking } = useAuth();
  const { status } = useNode();
  const { report } = useNotify();
  const [data, setData] = useState<{
    proposals: ModelProposal[];
    settings: ProposalSettings;
  } | null>(null);
  const [datanets, setDatanets] = useState<DatanetSummary[]>([]);
  const [now, setNow] = useState<number | null>(null);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const [p, d, t] = await Promise.all([
          proposalsApi.list(signal),
          datanetsApi.list({}, signal),
          status ? chainNow(status).catch(() => null) : Promise.resolve(null),
        ]);
        setData(p);
        setDatanets(d.datanets);
        setNow(t);
      } catch (err) {
        if (!signal?.aborted) report(err);
      }
    },
    [status, report],
  );
  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load]);

  return (
    <div className="page" data-testid="page-proposals">
      <PageHeader
        title="Model proposals"
        actions={
          <button
            type="button"
            className="button button-ghost button-small"
            onClick={() => void load()}
            data-testid="proposals-refresh"
          >
            Refresh
          </button>
        }
      >
        A proposal asks for a model: a goal, the datanet it must be trained on and an evaluation
        bar. Anyone funds it with OPEN; a model that meets the bar, as this node&apos;s evaluator
        measures it, wins the funds once the challenge window has closed
        {data ? ` (${formatDuration(data.settings.challengeWindowSeconds)})` : ''}.
      </PageHeader>
      <Card
        title="Proposals"
        testId="proposals-card"
        actions={
          now !== null ? <span className="muted small">Chain time {at(now)}</span> : undefined
        }
      >
        {data === null ? (
          <Spinner label="Loading proposals…" />
        ) : data.proposals.length === 0 ? (
          <div className="empty" data-testid="proposals-empty">
            <Icon name="proposals" />
            <p className="muted">No proposals yet.</p>
          </div>
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="proposals-table">
              <thead>
                <tr>
                  <th className="num">ID</th>
                  <th>Proposal</th>
                  <th>Training datanet</th>
                  <th>Evaluation set</th>
                  <th>Bar</th>
                  <th className="num">Funded / minimum</th>
                  <th>Deadline</th>
                  <th>Status</th>
                  <th>Submission</th>
                </tr>
              </thead>
              <tbody>
                {data.proposals.map((p) => (
                  <tr
                    key={p.id}
                    data-testid="proposal-row"
                    data-id={p.id}
                    data-status={shownStatus(p)}
                  >
                    <td className="num">{p.id}</td>
                    <td className="cell-main">
                      <Link
                        to={`/proposals/${p.id}`}
                        className="strong"
                        data-testid="proposal-link"
                      >
                        {p.title ?? `Proposal ${p.id}`}
                      </Link>
                      <span className="cell-sub">
                        {p.spec?.goal.split('\n')[0] ??
                          'Its specification is not registered on this node.'}
                      </span>
                    </td>
                    <td className="small">{datanetText(p.datanetId, datanets)}</td>
                    <td className="small">
                      {p.spec
                        ? `${datanetText(p.spec.evaluation.datanetId, datanets)} v${p.spec.evaluation.version}`
                        : '—'}
                    </td>
                    <td className="small mono" data-testid="proposal-bar-value">
                      {barText(p)}
                    </td>
                    <td className="num small" data-testid="proposal-funded" data-value={p.funded}>
                      {fundingText(p)}
                    </td>
                    <td className="small">
                      {at(p.deadline)} <span className="muted">{untilText(p.deadline, now)}</span>
                    </td>
                    <td className="small">
                      <ProposalStatus proposal={p} />
                      {p.submission && p.status === 'submitted' && (
                        <div className="muted">
                          {p.claimable
                            ? 'claimable'
                            : `window until ${at(p.submission.challengeEndsAt)}`}
                        </div>
                      )}
                    </td>
                    <td className="small">
                      {p.submission ? (
                        <Link to={`/market/models/${p.submission.modelId}`}>
                          model {p.submission.modelId}: {metricText(p.submission.scoreValue)}
                        </Link>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
      <Card title="Propose a model" testId="proposal-create-card">
        {checking || !data ? (
          <Spinner label="Loading…" />
        ) : !session ? (
          <SignInNotice title="Sign in to create a proposal">
            Creating a proposal is a transaction from your wallet, which also funds it.
          </SignInNotice>
        ) : (
          <CreateForm key={session.address} datanets={datanets} />
        )}
      </Card>
    </div>
  );
}
