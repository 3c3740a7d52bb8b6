// /governance — the Governor's settings and the protocol parameters it controls
// (GET /api/governance); the signed-in wallet's voting power (GET /api/governance/accounts/{a})
// with deposit / withdraw of gOPEN, delegation and syncing contribution votes; a form to propose
// parameter changes (each call from POST /api/governance/encode, then Governor.propose); and the
// proposals (GET /api/governance/proposals) with vote, queue and execute. Every wallet action is
// a transaction the wallet sends (lib/chain.ts), as `openledger gov` does.
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { getAddress, isAddress } from 'viem';
import { PageHeader } from '../../components/PageHeader';
import { Badge, Card, Spinner, Stat } from '../../components/ui';
import { ApiError } from '../../lib/api';
import { useAuth } from '../../lib/auth';
import {
  approveOpen,
  chainNow,
  ContributionVotesAbi,
  GovernorAbi,
  StakedOpenAbi,
  useChainWallet,
} from '../../lib/chain';
import { formatDuration, formatUnixTime as at } from '../../lib/format';
import { useNode } from '../../lib/node';
import { useNotify } from '../../lib/notify';
import { ActionStep, Hash, SignInNotice, useAction } from '../datanets/common';
import { parseOpen } from '../escrow/api';
import { openText, splitText } from '../market/api';

import {
  governanceApi,
  type GovernanceAction,
  type GovernanceOverview,
  type Proposal,
  type ProposalState,
  type VotingPower,
} from './api';

const SUPPORT = { against: 0, for: 1, abstain: 2 } as const;

const stateTone: Record<ProposalState, 'ok' | 'fail' | 'neutral' | 'info' | 'warn'> = {
  pending: 'info',
  active: 'info',
  canceled: 'neutral',
  defeated: 'fail',
  succeeded: 'ok',
  queued: 'warn',
  expired: 'neutral',
  executed: 'ok',
};

function invalid(message: string): ApiError {
  return new ApiError({ status: 0, code: 'VALIDATION_FAILED', message });
}

function Parameters({ overview }: { overview: GovernanceOverview }) {
  const { settings: s, parameters: p } = overview;
  const split = p.defaultSplit;
  return (
    <Card title="Protocol parameters" testId="gov-parameters">
      <dl className="stats">
        <Stat
          label="Default split (owner / stakers / contributors)"
          testId="gov-param-split"
          value={`${split.owner}/${split.stakers}/${split.contributors}`}
        >
          {splitText(split)}
        </Stat>
        <Stat
          label="Minimum agent stake"
          testId="gov-param-min-agent-stake"
          value={p.agents.minStake}
        >
          {openText(p.agents.minStake)}
        </Stat>
        <Stat label="Agent unbonding">{formatDuration(p.agents.unbondingSeconds)}</Stat>
        {p.epochs && (
          <Stat
            label="Fee epoch length"
            testId="gov-param-epoch-length"
            value={String(p.epochs.lengthSeconds)}
          >
            {formatDuration(p.epochs.lengthSeconds)}
            {p.epochs.next &&
              ` (${formatDuration(p.epochs.next.lengthSeconds)} from epoch ${p.epochs.next.fromEpoch}, ${at(p.epochs.next.start)})`}
          </Stat>
        )}
        <Stat label="Minimum model stake">{openText(p.modelStaking.minStake)}</Stat>
        <Stat
          label="Penalty threshold"
          testId="gov-param-penalty-threshold"
          value={p.contributionPenalties?.penaltyThreshold}
        >
          {p.contributionPenalties ? p.contributionPenalties.penaltyThreshold : '—'}
        </Stat>
      </dl>
      <p className="muted small">
        A model published without a split of its own gets the default split. Agents: a challenge
        bond of {openText(p.agents.challengeBond)}, a proven failure slashes{' '}
        {p.agents.challengeSlashBps / 100}% of the stake ({p.agents.reporterShareBps / 100}% of it
        to the reporter). Model stakes unbond for {formatDuration(p.modelStaking.unbondingSeconds)},
        at most {p.modelStaking.maxStakers} stakers a model.
        {p.contributionPenalties &&
          ` Contributors: each slash adds ${p.contributionPenalties.penaltyPerSlash} to a penalty score; at the threshold their rewards are cut; a bond unbonds after ${formatDuration(p.contributionPenalties.unbondDelaySeconds)}.`}
      </p>
      <h3 style={{ marginTop: 16 }}>Governor</h3>
      <dl className="stats" data-testid="gov-settings">
        <Stat label="Voting delay">{formatDuration(s.votingDelaySeconds)}</Stat>
        <Stat label="Voting period">{formatDuration(s.votingPeriodSeconds)}</Stat>
        <Stat label="Timelock delay">{formatDuration(s.timelockDelaySeconds)}</Stat>
        <Stat label="Proposal threshold">{openText(s.proposalThreshold)}</Stat>
        <Stat label="Quorum">{s.quorumPercent}% of all votes</Stat>
      </dl>
      <p className="muted small">
        Votes: {openText(s.supply.staked)} staked (gOPEN) and {openText(s.supply.contribution)}{' '}
        contribution votes (cVOTE, minted for attribution rewards claimed). Governor{' '}
        <Hash value={overview.contracts.OpenLedgerGovernor} />, Timelock{' '}
        <Hash value={overview.contracts.OpenLedgerTimelock} />.
      </p>
    </Card>
  );
}

function Power({
  overview,
  power,
  reload,
}: {
  overview: GovernanceOverview;
  power: VotingPower;
  reload: () => Promise<void>;
}) {
  const wallet = useChainWallet();
  const { busy, step, run } = useAction();
  const [deposit, setDeposit] = useState('');
  const [withdraw, setWithdraw] = useState('');
  const [delegatee, setDelegatee] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const c = overview.contracts;

  const act = async (fn: (setStep: (s: string) => void) => Promise<string>) => {
    setDone(null);
    const result = await run(fn);
    await reload();
    if (result) setDone(result);
  };

  const self = power.address.toLowerCase();
  const delegateText = (d: string) =>
    /^0x0{40}$/i.test(d) ? 'nobody (not counted)' : d.toLowerCase() === self ? 'yourself' : d;

  return (
    <Card title="Your voting power" testId="gov-power">
      <dl className="stats">
        <Stat label="Votes" testId="gov-votes" value={power.votes}>
          {openText(power.votes)}
        </Stat>
        <Stat label="gOPEN (staked OPEN)" testId="gov-staked" value={power.staked.balance}>
          {openText(power.staked.balance)}
        </Stat>
        <Stat
          label="Contribution votes"
          testId="gov-contribution"
          value={power.contribution.balance}
        >
          {openText(power.contribution.balance)}
        </Stat>
        <Stat label="To sync" testId="gov-pending" value={power.contribution.pending}>
          {openText(power.contribution.pending)}
        </Stat>
        <Stat label="OPEN in the wallet" testId="gov-open" value={power.open}>
          {openText(power.open)}
        </Stat>
      </dl>
      <p className="muted small">
        gOPEN votes are delegated to {delegateText(power.staked.delegate)} (
        {openText(power.staked.votes)} delegated to you); contribution votes to{' '}
        {delegateText(power.contribution.delegate)} ({openText(power.contribution.votes)} to you).
        Votes count as they were when a proposal&apos;s vote opened.
      </p>
      <form
        className="toolbar"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void act(async (setStep) => {
            const wei = parseOpen(deposit);
            const w = await wallet();
            setStep('Approving OPEN…');
            await approveOpen(w, c.OpenToken, c.StakedOpen, wei);
            setStep('Depositing…');
            await w.send({
              address: c.StakedOpen,
              abi: StakedOpenAbi,
              functionName: 'depositFor',
              args: [w.address, wei],
            });
            setDeposit('');
            return `Deposited ${deposit} OPEN for ${deposit} gOPEN.`;
          });
        }}
      >
        <input
          type="text"
          inputMode="decimal"
          value={deposit}
          onChange={(e) => setDeposit(e.target.value)}
          placeholder="OPEN to stake for votes"
          aria-label="OPEN to deposit"
          disabled={busy}
          data-testid="gov-deposit-amount"
        />
        <button
          type="submit"
          className="button button-primary"
          disabled={busy || !deposit.trim()}
          data-testid="gov-deposit"
        >
          Deposit
        </button>
      </form>
      <form
        className="toolbar"
        noValidate
        style={{ marginTop: 8 }}
        onSubmit={(e) => {
          e.preventDefault();
          void act(async (setStep) => {
            const wei = parseOpen(withdraw);
            const w = await wallet();
            setStep('Withdrawing…');
            await w.send({
              address: c.StakedOpen,
              abi: StakedOpenAbi,
              functionName: 'withdrawTo',
              args: [w.address, wei],
            });
            setWithdraw('');
            return `Burnt ${withdraw} gOPEN for ${withdraw} OPEN.`;
          });
        }}
      >
        <input
          type="text"
          inputMode="decimal"
          value={withdraw}
          onChange={(e) => setWithdraw(e.target.value)}
          placeholder="gOPEN to withdraw"
          aria-label="gOPEN to withdraw"
          disabled={busy}
          data-testid="gov-withdraw-amount"
        />
        <button
          type="submit"
          className="button button-secondary"
          disabled={busy || !withdraw.trim()}
          data-testid="gov-withdraw"
        >
          Withdraw
        </button>
      </form>
      <form
        className="toolbar"
        noValidate
        style={{ marginTop: 8 }}
        onSubmit={(e) => {
          e.preventDefault();
          void act(async (setStep) => {
            const to = delegatee.trim() || power.address;
            if (!isAddress(to, { strict: false })) throw invalid(`"${to}" is not an address.`);
            const address = getAddress(to);
            const w = await wallet();
            setStep('Delegating gOPEN votes…');
            await w.send({
              address: c.StakedOpen,
              abi: StakedOpenAbi,
              functionName: 'delegate',
              args: [address],
            });
            setStep('Delegating contribution votes…');
            await w.send({
              address: c.ContributionVotes,
              abi: ContributionVotesAbi,
              functionName: 'delegate',
              args: [address],
            });
            setDelegatee('');
            return `Delegated your votes to ${address.toLowerCase() === self ? 'yourself' : address}.`;
          });
        }}
      >
        <input
          type="text"
          value={delegatee}
          onChange={(e) => setDelegatee(e.target.value)}
          placeholder="0x… (empty: yourself)"
          aria-label="Delegate to"
          disabled={busy}
          className="mono"
          size={44}
          data-testid="gov-delegate-address"
        />
        <button
          type="submit"
          className="button button-secondary"
          disabled={busy}
          data-testid="gov-delegate"
        >
          Delegate
        </button>
        <button
          type="button"
          className="button button-secondary"
          disabled={busy || BigInt(power.contribution.pending) === 0n}
          title="Mint the contribution votes your claimed rewards earned (the node pays the gas)"
          onClick={() =>
            void act(async (setStep) => {
              setStep('Syncing contribution votes…');
              const r = await governanceApi.sync();
              return r.txHash
                ? `Minted ${openText(r.minted)} of contribution votes.`
                : 'No new contribution votes.';
            })
          }
          data-testid="gov-sync"
        >
          Sync contribution votes
        </button>
      </form>
      <div className="toolbar" style={{ marginTop: 8 }}>
        <ActionStep step={step} testId="gov-power-step" />
        {done && !step && (
          <p className="success small" role="status" data-testid="gov-power-done">
            {done}
          </p>
        )}
      </div>
    </Card>
  );
}

function ProposeForm({
  overview,
  reload,
}: {
  overview: GovernanceOverview;
  reload: () => Promise<void>;
}) {
  const wallet = useChainWallet();
  const { busy, step, run } = useAction();
  const [description, setDescription] = useState('');
  const [split, setSplit] = useState({ owner: '', stakers: '', contributors: '' });
  const [minStake, setMinStake] = useState('');
  const [threshold, setThreshold] = useState('');
  const [epochHours, setEpochHours] = useState('');
  const [slashId, setSlashId] = useState('');
  const [slashAmount, setSlashAmount] = useState('');
  const [done, setDone] = useState<string | null>(null);

  const propose = async (e: FormEvent) => {
    e.preventDefault();
    setDone(null);
    const ok = await run(async (setStep) => {
      const text = description.trim();
      if (!text)
        throw invalid('Describe the proposal: what and why (the first line is its title).');
      const actions: GovernanceAction[] = [];
      const parts = [split.owner, split.stakers, split.contributors].map((x) => x.trim());
      if (parts.some(Boolean)) {
        if (parts.some((x) => !x))
          throw invalid('A split needs all three parts: owner, stakers and contributors (%).');
        actions.push({ kind: 'default-split', split: parts.join('/') });
      }
      if (minStake.trim())
        actions.push({ kind: 'min-agent-stake', wei: parseOpen(minStake).toString() });
      if (threshold.trim()) {
        const n = Number(threshold);
        if (!Number.isSafeInteger(n) || n < 1)
          throw invalid('The penalty threshold is a positive integer.');
        actions.push({ kind: 'penalty-threshold', threshold: n });
      }
      if (epochHours.trim()) {
        const hours = Number(epochHours);
        if (!Number.isFinite(hours) || hours <= 0)
          throw invalid('The fee epoch length is a positive number of hours.');
        actions.push({ kind: 'epoch-length', seconds: Math.round(hours * 3600) });
      }
      if (slashId.trim() || slashAmount.trim()) {
        const id = Number(slashId);
        if (!Number.isSafeInteger(id) || id < 1)
          throw invalid('Slashing names an agent by its id.');
        actions.push({
          kind: 'slash-agent',
          agentId: id,
          wei: parseOpen(slashAmount).toString(),
          reason: text,
        });
      }
      if (actions.length === 0)
        throw invalid(
          'Name at least one change: a split, a minimum agent stake, a penalty threshold, a fee epoch length or an agent to slash.',
        );
      setStep('Encoding the calls…');
      const calls = await Promise.all(actions.map((a) => governanceApi.encode(a)));
      const w = await wallet();
      setStep('Proposing…');
      await w.send({
        address: overview.contracts.OpenLedgerGovernor,
        abi: GovernorAbi,
        functionName: 'propose',
        args: [
          calls.map((c) => c.target),
          calls.map((c) => BigInt(c.value)),
          calls.map((c) => c.calldata),
          text,
        ],
      });
      return true;
    });
    await reload();
    if (ok) {
      setDone('Proposed: the vote opens after the voting delay.');
      setDescription('');
      setSplit({ owner: '', stakers: '', contributors: '' });
      setMinStake('');
      setThreshold('');
      setSlashId('');
      setSlashAmount('');
    }
  };

  const splitField = (key: keyof typeof split, label: string) => (
    <label className="field">
      <span className="field-label">{label} %</span>
      <input
        type="text"
        inputMode="decimal"
        value={split[key]}
        onChange={(e) => setSplit((s) => ({ ...s, [key]: e.target.value }))}
        disabled={busy}
        data-testid={`gov-split-${key}`}
      />
    </label>
  );

  return (
    <Card title="Propose" testId="gov-propose-card">
      <form onSubmit={(e) => void propose(e)} noValidate>
        <div className="form-grid">
          <label className="field field-wide">
            <span className="field-label">Description</span>
            <textarea
              rows={3}
              value={description}
              onChange={(e) => setDescription(e.target.value)}
              placeholder={'Pay stakers more\n\nWhy this change…'}
              disabled={busy}
              data-testid="gov-propose-description"
            />
            <span className="field-help">
              The first line is the title. Leave a change empty to keep it.
            </span>
          </label>
          {splitField('owner', 'Default split: owner')}
          {splitField('stakers', 'Stakers')}
          {splitField('contributors', 'Contributors')}
          <label className="field">
            <span className="field-label">Minimum agent stake (OPEN)</span>
            <input
              type="text"
              inputMode="decimal"
              value={minStake}
              onChange={(e) => setMinStake(e.target.value)}
              disabled={busy}
              data-testid="gov-min-agent-stake"
            />
          </label>
          {overview.parameters.contributionPenalties && (
            <label className="field">
              <span className="field-label">Penalty threshold</span>
              <input
                type="text"
                inputMode="numeric"
                value={threshold}
                onChange={(e) => setThreshold(e.target.value)}
                disabled={busy}
                data-testid="gov-penalty-threshold"
              />
            </label>
          )}
          {overview.parameters.epochs && (
            <label className="field">
              <span className="field-label">Fee epoch length (hours)</span>
              <input
                type="text"
                inputMode="decimal"
                value={epochHours}
                onChange={(e) => setEpochHours(e.target.value)}
                disabled={busy}
                data-testid="gov-epoch-hours"
              />
            </label>
          )}
          <label className="field">
            <span className="field-label">Slash agent (id)</span>
            <input
              type="text"
              inputMode="numeric"
              value={slashId}
              onChange={(e) => setSlashId(e.target.value)}
              disabled={busy}
              data-testid="gov-slash-agent"
            />
          </label>
          <label className="field">
            <span className="field-label">Slash amount (OPEN)</span>
            <input
              type="text"
              inputMode="decimal"
              value={slashAmount}
              onChange={(e) => setSlashAmount(e.target.value)}
              disabled={busy}
              data-testid="gov-slash-amount"
            />
          </label>
        </div>
        <div className="form-actions toolbar">
          <button
            type="submit"
            className="button button-primary"
            disabled={busy}
            data-testid="gov-propose"
          >
            Propose
          </button>
          <ActionStep step={step} testId="gov-propose-step" />
          {done && !step && (
            <p className="success small" role="status" data-testid="gov-propose-done">
              {done}
            </p>
          )}
        </div>
        <p className="muted small">
          Proposing needs {openText(overview.settings.proposalThreshold)} of votes. A passed
          proposal is queued in the Timelock and executed after its delay: the Timelock holds every
          protocol parameter.
        </p>
      </form>
    </Card>
  );
}

function timing(p: Proposal, now: number | null): string {
  const rel = (t: number) =>
    now === null ? '' : t > now ? ` (in ${formatDuration(t - now)}, chain time)` : ' (chain time)';
  switch (p.state) {
    case 'pending':
      return `Voting opens ${at(p.voteStart)}${rel(p.voteStart)}`;
    case 'active':
      return `Vote ends ${at(p.voteEnd)}${rel(p.voteEnd)}`;
    case 'succeeded':
      return `Passed; the vote ended ${at(p.voteEnd)}: queue it in the Timelock`;
    case 'queued':
      return p.eta !== null
        ? now !== null && p.eta <= now
          ? `Executable since ${at(p.eta)} (chain time)`
          : `Executable from ${at(p.eta)}${rel(p.eta)}`
        : 'Queued';
    default:
      return `The vote ended ${at(p.voteEnd)}`;
  }
}

function ProposalCard({
  proposal: p,
  now,
  overview,
  signedIn,
  reload,
}: {
  proposal: Proposal;
  now: number | null;
  overview: GovernanceOverview;
  signedIn: boolean;
  reload: () => Promise<void>;
}) {
  const wallet = useChainWallet();
  const { busy, step, run } = useAction();
  const [title, ...rest] = p.description.split('\n');
  const governor = overview.contracts.OpenLedgerGovernor;
  const act = async (what: string, fn: () => Promise<void>) => {
    await run(async (setStep) => {
      setStep(what);
      await fn();
    });
    await reload();
  };
  const vote = (support: keyof typeof SUPPORT) =>
    act('Voting…', async () => {
      const w = await wallet();
      await w.send({
        address: governor,
        abi: GovernorAbi,
        functionName: 'castVote',
        args: [BigInt(p.id), SUPPORT[support]],
      });
    });
  const call = (fn: 'queue' | 'execute') =>
    act(fn === 'queue' ? 'Queueing…' : 'Executing…', async () => {
      const w = await wallet();
      await w.send({
        address: governor,
        abi: GovernorAbi,
        functionName: fn,
        args: [
          p.calls.map((c) => c.target),
          p.calls.map((c) => BigInt(c.value)),
          p.calls.map((c) => c.calldata),
          p.descriptionHash,
        ],
      });
    });
  const executable = p.state === 'queued' && p.eta !== null && now !== null && p.eta <= now;
  return (
    <section className="card" data-testid="gov-proposal" data-id={p.id} data-state={p.state}>
      <header className="card-header">
        <h2>{title}</h2>
        <div className="card-actions">
          <Badge tone={stateTone[p.state]} testId="gov-proposal-state">
            {p.state}
          </Badge>
        </div>
      </header>
      <div className="card-body">
        {rest.join('\n').trim() && <p className="small">{rest.join('\n').trim()}</p>}
        <ul className="plain-list small">
          {p.calls.map((c, i) => (
            <li key={i} className="mono" data-testid="gov-proposal-call">
              → {c.summary}
            </li>
          ))}
        </ul>
        <p className="small" data-testid="gov-proposal-votes">
          For {openText(p.votes.for)} · Against {openText(p.votes.against)} · Abstain{' '}
          {openText(p.votes.abstain)} · quorum {openText(p.quorum)}
        </p>
        <p className="muted small" data-testid="gov-proposal-timing">
          {timing(p, now)}
        </p>
        {signedIn && (
          <div className="toolbar">
            {p.state === 'active' &&
              (['for', 'against', 'abstain'] as const).map((s) => (
                <button
                  key={s}
                  type="button"
                  className={`button ${s === 'for' ? 'button-primary' : 'button-secondary'} button-small`}
                  disabled={busy}
                  onClick={() => void vote(s)}
                  data-testid={`gov-vote-${s}`}
                >
                  Vote {s}
                </button>
              ))}
            {p.state === 'succeeded' && (
              <button
                type="button"
                className="button button-primary button-small"
                disabled={busy}
                onClick={() => void call('queue')}
                data-testid="gov-queue"
              >
                Queue
              </button>
            )}
            {p.state === 'queued' && (
              <button
                type="button"
                className="button button-primary button-small"
                disabled={busy || !executable}
                title={executable ? undefined : 'After the Timelock delay (chain time)'}
                onClick={() => void call('execute')}
                data-testid="gov-execute"
              >
                Execute
              </button>
            )}
            <ActionStep step={step} testId="gov-proposal-step" />
          </div>
        )}
        <p className="muted small">
          Proposal{' '}
          <span className="mono">
            {p.id.length > 20 ? `${p.id.slice(0, 10)}…${p.id.slice(-6)}` : p.id}
          </span>{' '}
          by <Hash value={p.proposer} /> in <Hash value={p.createdTx} />
        </p>
      </div>
    </section>
  );
}

export function GovernancePage() {
  const { session, checking } = useAuth();
  const { status } = useNode();
  const { report } = useNotify();
  const [overview, setOverview] = useState<GovernanceOverview | null>(null);
  const [proposals, setProposals] = useState<Proposal[] | null>(null);
  const [power, setPower] = useState<VotingPower | null>(null);
  const [now, setNow] = useState<number | null>(null);
  const address = session?.address;

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const [o, p, a, t] = await Promise.all([
          governanceApi.overview(signal),
          governanceApi.proposals(signal),
          address ? governanceApi.account(address, signal) : Promise.resolve(null),
          status ? chainNow(status).catch(() => null) : Promise.resolve(null),
        ]);
        setOverview(o);
        setProposals(p.proposals);
        setPower(a);
        setNow(t);
      } catch (err) {
        if (!signal?.aborted) report(err);
      }
    },
    [address, status, report],
  );
  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load]);
  const reload = useCallback(() => load(), [load]);

  return (
    <div className="page" data-testid="page-governance">
      <PageHeader
        title="Governance"
        actions={
          <button
            type="button"
            className="button button-ghost button-small"
            onClick={() => void load()}
            data-testid="gov-refresh"
          >
            Refresh
          </button>
        }
      >
        OPEN staked for votes (gOPEN) and contribution votes earned from attribution rewards (cVOTE)
        decide the protocol&apos;s parameters through the Governor; a passed proposal waits in the
        Timelock, which holds them, before it takes effect.
      </PageHeader>
      {!overview ? (
        <Spinner label="Reading governance…" />
      ) : (
        <>
          <Parameters overview={overview} />
          {checking ? null : !session ? (
            <SignInNotice title="Sign in to vote and propose">
              Your voting power, deposits, delegation and votes belong to your wallet.
            </SignInNotice>
          ) : power ? (
            <>
              <Power overview={overview} power={power} reload={reload} />
              <ProposeForm overview={overview} reload={reload} />
            </>
          ) : (
            <Spinner label="Reading your voting power…" />
          )}
          <Card
            title="Proposals"
            testId="gov-proposals"
            actions={
              now !== null ? <span className="muted small">Chain time {at(now)}</span> : undefined
            }
          >
            {proposals === null || proposals.length === 0 ? (
              <p className="muted small" data-testid="gov-no-proposals">
                No proposals yet.
              </p>
            ) : (
              proposals.map((p) => (
                <ProposalCard
                  key={p.id}
                  proposal={p}
                  now={now}
                  overview={overview}
                  signedIn={session !== null}
                  reload={reload}
                />
              ))
            )}
          </Card>
        </>
      )}
    </div>
  );
}
