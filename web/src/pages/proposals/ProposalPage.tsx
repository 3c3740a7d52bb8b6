// /proposals/{id} — one model proposal (GET /api/proposals/{id}): what it asks for, its funding,
// deadline and state, the standing submission and its challenge window, and the evaluator's
// reports (GET /api/proposals/{id}/reports). Signed in: fund it, have the node's evaluator score
// a published model (POST /api/proposals/{id}/evaluate, a job followed until it ends),
// challenge a submission with the bond, claim after the window, take funding back from a
// refundable proposal, and cancel it (its creator, while open) — each a wallet transaction, as
// `openledger proposal` sends them.
import { useCallback, useEffect, useState } from 'react';
import { sha256, stringToHex, type Address } from 'viem';
import { PageHeader } from '../../components/PageHeader';
import { Badge, Card, Spinner, Stat } from '../../components/ui';
import {
  ApiError,
  datanetsApi,
  jobsApi,
  TERMINAL_JOB_STATUSES,
  type DatanetSummary,
} from '../../lib/api';
import { useAuth } from '../../lib/auth';
import {
  approveOpen,
  chainNow,
  ModelProposalsAbi,
  publicClientFor,
  requireContract,
  useChainWallet,
} from '../../lib/chain';
import { formatDate, formatUnixTime as at } from '../../lib/format';
import { useNode } from '../../lib/node';
import { useNotify } from '../../lib/notify';
import { Link } from '../../lib/router';
import { JobStatusBadge } from '../factory/common';
import { ActionStep, Hash, useAction } from '../datanets/common';
import { parseOpen } from '../escrow/api';
import { openText } from '../market/api';

import {
  barText,
  metricText,
  proposalsApi,
  type EvaluationJob,
  type ModelProposal,
  type ProposalReport,
} from './api';
import { datanetText, fundingText, ProposalStatus, untilText } from './ProposalsPage';

/** What the wallet may do now, by the proposal's state and the chain's clock. */
function allowed(p: ModelProposal, now: number | null, me: string | null, myFunding: bigint) {
  const beforeDeadline = now !== null && now < p.deadline;
  const funded = BigInt(p.funded);
  return {
    fund: p.status === 'open' && beforeDeadline,
    evaluate:
      p.registered &&
      p.status === 'open' &&
      beforeDeadline &&
      funded > 0n &&
      funded >= BigInt(p.minFunding),
    challenge:
      p.status === 'submitted' &&
      p.submission !== null &&
      now !== null &&
      now < p.submission.challengeEndsAt,
    claim: p.claimable,
    refund: p.refundable && myFunding > 0n,
    cancel: p.status === 'open' && me !== null && me.toLowerCase() === p.creator.toLowerCase(),
  };
}

function EvaluationResult({ job }: { job: EvaluationJob }) {
  const r = job.result;
  return (
    <div data-testid="proposal-eval-result" data-status={job.status}>
      <p className="small">
        Evaluation job <span className="mono">{job.id}</span>:{' '}
        <JobStatusBadge status={job.status} />
      </p>
      {job.error && (
        <p className="fail-text small" data-testid="proposal-eval-error">
          {job.error.code}: {job.error.message}
        </p>
      )}
      {r && (
        <>
          <dl className="stats" data-testid="proposal-eval-report" data-meets={String(r.meetsBar)}>
            <Stat label={`Model ${r.modelId}: ${r.metric}`} testId="proposal-eval-value">
              {metricText(r.value)}
            </Stat>
            <Stat label="Base model alone">
              {r.baseValue === null ? '—' : metricText(r.baseValue)}
            </Stat>
            <Stat label="Bar">{barText(r)}</Stat>
            <Stat label="Bar met">
              <Badge tone={r.meetsBar ? 'ok' : 'fail'}>{r.meetsBar ? 'yes' : 'no'}</Badge>
            </Stat>
            <Stat label="Rows (tokens scored)">
              {r.rows} ({r.targets})
            </Stat>
          </dl>
          <p className="small">{r.message}</p>
          <dl className="kv small">
            <dt>Report sha256</dt>
            <dd>
              <Hash value={r.reportHash} copy />
            </dd>
            <dt>Submission</dt>
            <dd data-testid="proposal-eval-tx">
              {r.txHash ? <Hash value={r.txHash} copy /> : 'none (the bar is not met)'}
            </dd>
          </dl>
        </>
      )}
    </div>
  );
}

function Reports({ reports }: { reports: ProposalReport[] }) {
  if (reports.length === 0)
    return (
      <p className="muted small" data-testid="proposal-no-reports">
        No evaluations yet.
      </p>
    );
  return (
    <div className="table-wrap">
      <table className="table table-compact" data-testid="proposal-reports">
        <thead>
          <tr>
            <th>When</th>
            <th className="num">Model</th>
            <th className="num">Score</th>
            <th>Bar met</th>
            <th className="num">Rows</th>
            <th>Report</th>
            <th>Submitted in</th>
          </tr>
        </thead>
        <tbody>
          {reports.map((r) => (
            <tr key={r.id} data-testid="proposal-report" data-model-id={r.modelId}>
              <td className="small">{formatDate(r.createdAt)}</td>
              <td className="num">
                <Link to={`/market/models/${r.modelId}`}>{r.modelId}</Link>
              </td>
              <td className="num">
                {r.metric} {metricText(r.value)}
              </td>
              <td>
                <Badge tone={r.meetsBar ? 'ok' : 'fail'}>{r.meetsBar ? 'yes' : 'no'}</Badge>
              </td>
              <td className="num">{r.rows}</td>
              <td>
                <Hash value={r.reportHash} copy />
              </td>
              <td>{r.txHash ? <Hash value={r.txHash} /> : <span className="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function ProposalPage({ id }: { id: number }) {
  const { session } = useAuth();
  const { status } = useNode();
  const { report } = useNotify();
  const wallet = useChainWallet();
  const { busy, step, run } = useAction();
  const [proposal, setProposal] = useState<ModelProposal | null>(null);
  const [reports, setReports] = useState<ProposalReport[]>([]);
  const [datanets, setDatanets] = useState<DatanetSummary[]>([]);
  const [now, setNow] = useState<number | null>(null);
  const [myFunding, setMyFunding] = useState(0n);
  const [bond, setBond] = useState<bigint | null>(null);
  const [amount, setAmount] = useState('');
  const [modelId, setModelId] = useState('');
  const [evidence, setEvidence] = useState('');
  const [job, setJob] = useState<EvaluationJob | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const address = session?.address ?? null;
  const contract = status?.contracts.ModelProposals;

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const client = status ? publicClientFor(status) : null;
        const [p, r, d, t, mine, b] = await Promise.all([
          proposalsApi.get(id, signal),
          proposalsApi.reports(id, signal),
          datanetsApi.list({}, signal).catch(() => ({ datanets: [] })),
          status ? chainNow(status).catch(() => null) : Promise.resolve(null),
          client && contract && address
            ? client.readContract({
                address: contract,
                abi: ModelProposalsAbi,
                functionName: 'fundedBy',
                args: [BigInt(id), address as Address],
              })
            : Promise.resolve(0n),
          client && contract
            ? client.readContract({
                address: contract,
                abi: ModelProposalsAbi,
                functionName: 'challengeBond',
              })
            : Promise.resolve(null),
        ]);
        setProposal(p);
        setReports(r.reports);
        setDatanets(d.datanets);
        setNow(t);
        setMyFunding(mine);
        setBond(b);
      } catch (err) {
        if (!signal?.aborted) report(err);
      }
    },
    [id, status, contract, address, report],
  );
  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load]);

  // Follow an evaluation until it ends (a short poll, as the factory's evaluations are followed),
  // then reread the proposal: a score that meets the bar was submitted on-chain.
  useEffect(() => {
    if (!job) return;
    if (TERMINAL_JOB_STATUSES.includes(job.status)) {
      void load();
      return;
    }
    const timer = setTimeout(() => {
      jobsApi
        .get(job.id)
        .then((j) => setJob(j as EvaluationJob))
        .catch((err: unknown) => report(err));
    }, 500);
    return () => clearTimeout(timer);
  }, [job, load, report]);

  const act = async (fn: (setStep: (s: string) => void) => Promise<string>) => {
    setDone(null);
    const result = await run(fn);
    await load();
    if (result) setDone(result);
  };

  const send = (what: string, functionName: 'claim' | 'refund' | 'cancel', result: string) =>
    act(async (setStep) => {
      const address = requireContract(contract, 'ModelProposals');
      const w = await wallet();
      setStep(what);
      await w.send({ address, abi: ModelProposalsAbi, functionName, args: [BigInt(id)] });
      return result;
    });

  const fund = () =>
    act(async (setStep) => {
      const wei = parseOpen(amount);
      const proposals = requireContract(contract, 'ModelProposals');
      const w = await wallet();
      setStep('Approving OPEN…');
      await approveOpen(
        w,
        requireContract(status?.contracts.OpenToken, 'OpenToken'),
        proposals,
        wei,
      );
      setStep('Funding…');
      await w.send({
        address: proposals,
        abi: ModelProposalsAbi,
        functionName: 'fund',
        args: [BigInt(id), wei],
      });
      setAmount('');
      return `Funded proposal ${id} with ${amount.trim()} OPEN.`;
    });

  const challenge = () =>
    act(async (setStep) => {
      const text = evidence.trim();
      if (!text)
        throw new ApiError({
          status: 0,
          code: 'VALIDATION_FAILED',
          message: 'Say what is wrong with the evaluation: its sha256 goes on-chain.',
        });
      const proposals = requireContract(contract, 'ModelProposals');
      const w = await wallet();
      const challengeBond = await w.publicClient.readContract({
        address: proposals,
        abi: ModelProposalsAbi,
        functionName: 'challengeBond',
      });
      if (challengeBond > 0n) {
        setStep('Approving the bond…');
        await approveOpen(
          w,
          requireContract(status?.contracts.OpenToken, 'OpenToken'),
          proposals,
          challengeBond,
        );
      }
      setStep('Challenging…');
      await w.send({
        address: proposals,
        abi: ModelProposalsAbi,
        functionName: 'challenge',
        args: [BigInt(id), sha256(stringToHex(text))],
      });
      setEvidence('');
      return `Challenged the submission (bond ${openText(challengeBond.toString())}): the arbiter rules.`;
    });

  const evaluate = () =>
    act(async (setStep) => {
      const n = Number(modelId.trim());
      if (!/^\d{1,9}$/.test(modelId.trim()) || n < 1)
        throw new ApiError({
          status: 0,
          code: 'VALIDATION_FAILED',
          message: `"${modelId}" is not a Model ID.`,
        });
      setStep('Starting the evaluation…');
      setJob(await proposalsApi.evaluate(id, n));
      return '';
    });

  if (!proposal)
    return (
      <div className="page" data-testid="page-proposal">
        <Link to="/proposals" className="back-link">
          ← Proposals
        </Link>
        <Spinner label="Loading the proposal…" />
      </div>
    );

  const p = proposal;
  const can = allowed(p, now, address, myFunding);
  const evaluating = job !== null && !TERMINAL_JOB_STATUSES.includes(job.status);
  const s = p.submission;

  return (
    <div className="page" data-testid="page-proposal">
      <Link to="/proposals" className="back-link">
        ← Proposals
      </Link>
      <PageHeader
        title={p.title ?? `Proposal ${p.id}`}
        actions={
          <button
            type="button"
            className="button button-ghost button-small"
            onClick={() => void load()}
            data-testid="proposal-refresh"
          >
            Refresh
          </button>
        }
      >
        {p.spec?.goal ??
          'This node does not have the specification of this proposal: it cannot evaluate models for it.'}
      </PageHeader>
      <Card
        title="State"
        testId="proposal-summary"
        actions={
          now !== null ? <span className="muted small">Chain time {at(now)}</span> : undefined
        }
      >
        <dl className="stats">
          <Stat label="Status">
            <ProposalStatus proposal={p} />
          </Stat>
          <Stat label="Funded / minimum" testId="proposal-funded" value={p.funded}>
            {fundingText(p)}
          </Stat>
          <Stat label="Bar" testId="proposal-bar-value" value={p.bar}>
            {barText(p)}
          </Stat>
          <Stat label="Deadline (chain time)" testId="proposal-deadline-value">
            {at(p.deadline)} {untilText(p.deadline, now)}
          </Stat>
          {address && (
            <Stat label="Your funding" testId="proposal-my-funding" value={myFunding.toString()}>
              {openText(myFunding.toString())}
            </Stat>
          )}
        </dl>
        <dl className="kv small">
          <dt>Proposal ID</dt>
          <dd>{p.id}</dd>
          <dt>Creator</dt>
          <dd>
            <code className="mono" data-testid="proposal-creator">
              {p.creator}
            </code>
          </dd>
          <dt>Training datanet</dt>
          <dd>
            <Link to={`/datanets/${p.datanetId}`}>{datanetText(p.datanetId, datanets)}</Link>
          </dd>
          <dt>Evaluation set</dt>
          <dd data-testid="proposal-eval-set">
            {p.spec ? (
              <>
                <Link to={`/datanets/${p.spec.evaluation.datanetId}`}>
                  {datanetText(p.spec.evaluation.datanetId, datanets)}
                </Link>{' '}
                version {p.spec.evaluation.version}
                {p.spec.evaluation.maxRows !== undefined &&
                  `, its first ${p.spec.evaluation.maxRows} rows`}
                {p.spec.evaluation.maxTokens !== undefined &&
                  `, ${p.spec.evaluation.maxTokens} tokens a row`}
              </>
            ) : (
              '—'
            )}
          </dd>
          <dt>Metric</dt>
          <dd>
            {p.metric ?? '—'} ({p.higherIsBetter ? 'higher' : 'lower'} is better; on-chain ×10⁶:{' '}
            {p.bar})
          </dd>
          <dt>Spec sha256</dt>
          <dd>
            <Hash value={p.specHash} copy />
          </dd>
        </dl>
      </Card>
      {s && (
        <Card title="Submission" testId="proposal-submission">
          <dl className="kv small">
            <dt>Model</dt>
            <dd>
              <Link to={`/market/models/${s.modelId}`} data-testid="proposal-submission-model">
                model {s.modelId}
              </Link>
            </dd>
            <dt>Score</dt>
            <dd data-testid="proposal-submission-score">
              {p.metric ?? 'score'} {metricText(s.scoreValue)}
            </dd>
            <dt>Report sha256</dt>
            <dd>
              <Hash value={s.reportHash} copy />
            </dd>
            <dt>Challenge window</dt>
            <dd data-testid="proposal-window">
              {p.status === 'submitted' && now !== null && now < s.challengeEndsAt
                ? `open until ${at(s.challengeEndsAt)} ${untilText(s.challengeEndsAt, now)}`
                : `closed ${at(s.challengeEndsAt)}`}
            </dd>
            {s.challenger && (
              <>
                <dt>Challenged by</dt>
                <dd>
                  <Hash value={s.challenger} /> (bond {openText(s.challengerBond)}; the arbiter
                  rules)
                </dd>
              </>
            )}
          </dl>
        </Card>
      )}
      <Card title="Act" testId="proposal-actions">
        {!session ? (
          <p className="muted small">Sign in to fund, evaluate, challenge, claim or refund.</p>
        ) : (
          <>
            <div className="toolbar">
              <input
                type="text"
                inputMode="decimal"
                value={amount}
                onChange={(e) => setAmount(e.target.value)}
                placeholder="OPEN"
                aria-label="OPEN to fund"
                disabled={busy || !can.fund}
                data-testid="proposal-fund-amount"
              />
              <button
                type="button"
                className="button button-primary"
                disabled={busy || !can.fund || !amount.trim()}
                title={can.fund ? undefined : 'Only an open proposal before its deadline'}
                onClick={() => void fund()}
                data-testid="proposal-fund"
              >
                Fund
              </button>
              <button
                type="button"
                className="button button-secondary"
                disabled={busy || !can.claim}
                title={can.claim ? undefined : 'Once a submission stands and its window has closed'}
                onClick={() =>
                  void send('Claiming…', 'claim', 'Paid the funds to the model’s holder.')
                }
                data-testid="proposal-claim"
              >
                Claim for the winner
              </button>
              <button
                type="button"
                className="button button-secondary"
                disabled={busy || !can.refund}
                title={
                  can.refund
                    ? undefined
                    : 'Your funding of a cancelled proposal, or of one expired without a winner'
                }
                onClick={() =>
                  void send('Refunding…', 'refund', 'Your funding came back to your wallet.')
                }
                data-testid="proposal-refund"
              >
                Refund my funding
              </button>
              {address?.toLowerCase() === p.creator.toLowerCase() && (
                <button
                  type="button"
                  className="button button-secondary"
                  disabled={busy || !can.cancel}
                  title={can.cancel ? undefined : 'While it is open'}
                  onClick={() =>
                    void send(
                      'Cancelling…',
                      'cancel',
                      'Cancelled: funders can take their funding back.',
                    )
                  }
                  data-testid="proposal-cancel"
                >
                  Cancel proposal
                </button>
              )}
              <ActionStep step={step} testId="proposal-step" />
            </div>
            {done && (
              <p className="success small" role="status" data-testid="proposal-done">
                {done}
              </p>
            )}
            <h3 style={{ marginTop: 16 }}>Evaluate a model</h3>
            <div className="toolbar">
              <input
                type="text"
                inputMode="numeric"
                value={modelId}
                onChange={(e) => setModelId(e.target.value)}
                placeholder="Model ID"
                aria-label="Model ID"
                disabled={busy || evaluating || !can.evaluate}
                data-testid="proposal-eval-model"
              />
              <button
                type="button"
                className="button button-primary"
                disabled={busy || evaluating || !can.evaluate || !modelId.trim()}
                title={
                  can.evaluate
                    ? undefined
                    : 'An open, registered proposal before its deadline, funded to its minimum'
                }
                onClick={() => void evaluate()}
                data-testid="proposal-evaluate"
              >
                Evaluate
              </button>
            </div>
            <p className="muted small">
              The node&apos;s evaluator scores a published model trained on datanet #{p.datanetId}{' '}
              on the evaluation set; a score that meets the bar is submitted on-chain, opening the
              challenge window.
            </p>
            {job && <EvaluationResult job={job} />}
            <h3 style={{ marginTop: 16 }}>Challenge the submission</h3>
            <textarea
              rows={2}
              value={evidence}
              onChange={(e) => setEvidence(e.target.value)}
              placeholder="What is wrong with the evaluation (its sha256 goes on-chain)"
              aria-label="Evidence"
              disabled={busy || !can.challenge}
              data-testid="proposal-evidence"
            />
            <div className="toolbar">
              <button
                type="button"
                className="button button-secondary"
                disabled={busy || !can.challenge || !evidence.trim()}
                title={can.challenge ? undefined : 'A standing submission, within its window'}
                onClick={() => void challenge()}
                data-testid="proposal-challenge"
              >
                Challenge{bond !== null && bond > 0n ? ` (bond ${openText(bond.toString())})` : ''}
              </button>
            </div>
          </>
        )}
      </Card>
      <Card title="Evaluations" testId="proposal-reports-card">
        <Reports reports={reports} />
      </Card>
    </div>
  );
}
