/**
 * `openledger proposal` (docs/cli.md, "Model proposals"): bounties for models. The wallet acts
 * on-chain itself (it creates and funds proposals, challenges, claims, refunds, paying the gas);
 * the node checks and keeps specifications, and its evaluator scores published models against
 * a proposal's bar (submitting the score on-chain when the bar is met).
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { formatUnits, parseEventLogs, sha256, type Address, type Hex } from 'viem';
import { ModelProposalsAbi } from '../../chain/generated/contracts.ts';
import { OpenLedgerError } from '../../errors.ts';
import {
  PROPOSAL_METRICS,
  toScore,
  type ModelProposalView,
  type ProposalEvaluationResult,
  type ProposalSettings,
  type ProposalSpec,
} from '../../market/proposals.ts';
import { NodeClient } from '../client.ts';
import type { Output } from '../output.ts';
import { readJsonFile } from '../input.ts';
import { approveOpen, nodeWallet, send, type NodeWallet } from '../wallet.ts';
import { parseOpenAmount } from './escrow.ts';
import { authenticatedClient, type AuthFlags } from './keys.ts';
import { followJob } from './train.ts';

type SignerOptions = (command: Command) => Command;
const open = (wei: string | bigint) => `${formatUnits(BigInt(wei), 18)} OPEN`;
const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
const shown = (n: number) => Number(n.toPrecision(6)).toString();

function idArg(value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1)
    throw new OpenLedgerError('VALIDATION_FAILED', `"${value}" is not a proposal id.`);
  return Number(value);
}

function contractOf(w: NodeWallet): Address {
  const address = w.contracts.ModelProposals;
  if (!address)
    throw new OpenLedgerError(
      'GOVERNANCE_UNAVAILABLE',
      'The node names no ModelProposals contract (its deployment predates it).',
      { hint: 'Restart the node with its deployer key: `up` adds the missing contracts.' },
    );
  return address;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 7 * 86_400 };

/**
 * A deadline as Unix seconds: a duration from the chain's current time (`90m`, `12h`, `7d`, `2w`,
 * `3600s`), or an ISO date.
 */
export function parseDeadline(text: string, chainNow: number): number {
  const duration = /^(\d+(?:\.\d+)?)\s*([smhdw])$/i.exec(text.trim());
  if (duration) {
    const seconds = Math.round(Number(duration[1]) * UNITS[duration[2]!.toLowerCase()]!);
    if (seconds <= 0)
      throw new OpenLedgerError('VALIDATION_FAILED', `--deadline ${text} is not in the future.`);
    return chainNow + seconds;
  }
  const at = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(at))
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `--deadline takes a duration (90m, 12h, 7d, 2w) or an ISO date; got "${text}".`,
    );
  const seconds = Math.floor(at / 1000);
  if (seconds <= chainNow)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `--deadline ${text} is not after the chain's time (${iso(chainNow)}).`,
    );
  return seconds;
}

function proposalLines(p: ModelProposalView): string {
  const comparison = p.higherIsBetter ? '≥' : '≤';
  const lines = [
    `${p.id}  ${p.status}  ${p.title ? `"${p.title}"` : '(specification not registered on this node)'}`,
    `  ${p.metric ?? 'score'} ${comparison} ${shown(p.barValue)} · datanet ${p.datanetId} · funded ${open(p.funded)}${BigInt(p.minFunding) > 0n ? ` (minimum ${open(p.minFunding)})` : ''} · deadline ${iso(p.deadline)}`,
  ];
  if (p.spec)
    lines.push(
      `  evaluation set: datanet ${p.spec.evaluation.datanetId} v${p.spec.evaluation.version} · goal: ${p.spec.goal.split('\n')[0]}`,
    );
  if (p.submission)
    lines.push(
      `  submission: model ${p.submission.modelId} scored ${shown(p.submission.scoreValue)} · challenge window until ${iso(p.submission.challengeEndsAt)}${p.submission.challenger ? ` · challenged by ${p.submission.challenger}` : ''}`,
    );
  if (p.claimable) lines.push('  claimable now (`openledger proposal claim`)');
  if (p.refundable)
    lines.push('  refundable: funders take their funding back (`openledger proposal refund`)');
  return lines.join('\n');
}

export function registerProposalCommands(
  program: Command,
  out: Output,
  signer: SignerOptions,
): void {
  const proposal = program
    .command('proposal')
    .description(
      'model proposals: fund a model that meets an evaluation bar; its builder claims the funds',
    );

  const fetchProposal = (url: string, id: number) =>
    new NodeClient(url).request<ModelProposalView>('GET', `/api/proposals/${id}`);

  signer(
    proposal
      .command('create')
      .description('create a proposal on-chain from a specification file, then register it here')
      .argument('<spec.json>')
      .requiredOption('--bar <value>', "the metric's bar (perplexity: at most this)")
      .requiredOption('--deadline <when>', 'a duration (90m, 12h, 7d, 2w) or an ISO date')
      .option('--min-funding <open>', 'below this the proposal takes no submission (refunds)', '0')
      .option('--fund <open>', 'fund it with this much OPEN at once', '0'),
  ).action(
    async (
      file: string,
      options: AuthFlags & { bar: string; deadline: string; minFunding: string; fund: string },
    ) => {
      const barValue = Number(options.bar);
      if (options.bar.trim() === '' || !Number.isFinite(barValue) || barValue < 0)
        throw new OpenLedgerError('VALIDATION_FAILED', `--bar ${options.bar} is not a number ≥ 0.`);
      const minFunding = parseOpenAmount(options.minFunding, { allowZero: true });
      const funding = parseOpenAmount(options.fund, { allowZero: true });
      const w = await nodeWallet(options);
      const client = await authenticatedClient(options);
      const spec = await readJsonFile(file);
      out.progress('checking the specification');
      const checked = await client.request<{
        spec: ProposalSpec;
        specHash: string;
        settings: ProposalSettings;
      }>('POST', '/api/proposals/validate', { spec });
      const address = checked.settings.address;
      const now = Number((await w.chain.publicClient.getBlock()).timestamp);
      const deadline = parseDeadline(options.deadline, now);
      if (funding > 0n) {
        out.progress(`approving ${open(funding)}`);
        await approveOpen(w, address, funding);
      }
      out.progress(`creating "${checked.spec.title}"`);
      const tx = await send(w.chain, w.account, {
        address,
        abi: ModelProposalsAbi,
        functionName: 'create',
        args: [
          `0x${checked.specHash}`,
          BigInt(checked.spec.datanetId),
          toScore(barValue),
          PROPOSAL_METRICS[checked.spec.metric].higherIsBetter,
          BigInt(deadline),
          minFunding,
          funding,
        ],
      });
      const receipt = await w.chain.publicClient.getTransactionReceipt({ hash: tx });
      const [created] = parseEventLogs({
        abi: ModelProposalsAbi,
        eventName: 'ProposalCreated',
        logs: receipt.logs,
      });
      const id = Number(created!.args.id);
      out.progress(`registering proposal ${id} with the node`);
      const view = await client.request<ModelProposalView>('POST', '/api/proposals', { id, spec });
      out.result(
        { ...view, tx },
        (x) => `created proposal ${x.id} in ${x.tx}\n${proposalLines(x)}`,
      );
    },
  );

  signer(
    proposal
      .command('register')
      .description('give this node the specification of a proposal created elsewhere')
      .argument('<id>')
      .argument('<spec.json>'),
  ).action(async (id: string, file: string, options: AuthFlags) => {
    const client = await authenticatedClient(options);
    const view = await client.request<ModelProposalView>('POST', '/api/proposals', {
      id: idArg(id),
      spec: await readJsonFile(file),
    });
    out.result(view, (x) => `registered proposal ${x.id}\n${proposalLines(x)}`);
  });

  signer(
    proposal
      .command('fund')
      .description('add OPEN to an open proposal (before its deadline)')
      .argument('<id>')
      .argument('<open>'),
  ).action(async (id: string, amount: string, options: AuthFlags) => {
    const n = idArg(id);
    const wei = parseOpenAmount(amount, { allowZero: false });
    const w = await nodeWallet(options);
    const address = contractOf(w);
    await approveOpen(w, address, wei);
    const tx = await send(w.chain, w.account, {
      address,
      abi: ModelProposalsAbi,
      functionName: 'fund',
      args: [BigInt(n), wei],
    });
    const view = await fetchProposal(options.url, n);
    out.result(
      { ...view, amount: wei.toString(), tx },
      (x) => `funded proposal ${x.id} with ${open(x.amount)} in ${x.tx}\n${proposalLines(x)}`,
    );
  });

  signer(proposal.command('list').description('model proposals, newest first')).action(
    async (options: AuthFlags) => {
      const r = await new NodeClient(options.url).request<{ proposals: ModelProposalView[] }>(
        'GET',
        '/api/proposals',
      );
      out.result(r, (x) =>
        x.proposals.length ? x.proposals.map(proposalLines).join('\n') : 'no proposals',
      );
    },
  );

  signer(proposal.command('show').description('one proposal').argument('<id>')).action(
    async (id: string, options: AuthFlags) => {
      out.result(await fetchProposal(options.url, idArg(id)), proposalLines);
    },
  );

  signer(
    proposal
      .command('evaluate')
      .description(
        "have the node's evaluator score a published model; a score that meets the bar is submitted on-chain",
      )
      .argument('<id>')
      .requiredOption('--model <modelId>', 'the published model (trained on the proposal datanet)'),
  ).action(async (id: string, options: AuthFlags & { model: string }) => {
    const n = idArg(id);
    if (!/^\d{1,9}$/.test(options.model))
      throw new OpenLedgerError('VALIDATION_FAILED', `--model ${options.model} is not a Model ID.`);
    const client = await authenticatedClient(options);
    const job = await client.request<{ id: string }>('POST', `/api/proposals/${n}/evaluate`, {
      modelId: Number(options.model),
    });
    out.progress(`evaluating (job ${job.id})`);
    await followJob(client, job.id, AbortSignal.timeout(3_600_000), (event, data) => {
      if (event === 'log' && !out.json) out.progressUpdate(String(data.message));
    });
    const final = await client.request<{
      status: string;
      result: ProposalEvaluationResult | null;
      error: { code: string; message: string; hint?: string } | null;
    }>('GET', `/api/jobs/${job.id}`);
    if (final.status !== 'succeeded' || !final.result)
      throw new OpenLedgerError(
        (final.error?.code ?? 'INTERNAL') as never,
        final.error?.message ?? `The evaluation job ${job.id} ended ${final.status}.`,
        final.error?.hint ? { hint: final.error.hint } : {},
      );
    out.result({ ...final.result, jobId: job.id }, (r) =>
      [r.message, ...(r.txHash ? [`submitted in ${r.txHash}`] : []), `report ${r.reportHash}`].join(
        '\n',
      ),
    );
  });

  signer(
    proposal
      .command('challenge')
      .description('dispute a submitted evaluation with the challenge bond (the arbiter rules)')
      .argument('<id>')
      .requiredOption('--evidence <file>', 'what is wrong with it (its sha256 goes on-chain)'),
  ).action(async (id: string, options: AuthFlags & { evidence: string }) => {
    const n = idArg(id);
    const evidence = await readFile(options.evidence).catch((cause: unknown) => {
      throw new OpenLedgerError('BAD_REQUEST', `Cannot read ${options.evidence}: ${String(cause)}`);
    });
    const w = await nodeWallet(options);
    const address = contractOf(w);
    const bond = await w.chain.publicClient.readContract({
      address,
      abi: ModelProposalsAbi,
      functionName: 'challengeBond',
    });
    if (bond > 0n) await approveOpen(w, address, bond);
    const evidenceHash = sha256(evidence);
    const tx = await send(w.chain, w.account, {
      address,
      abi: ModelProposalsAbi,
      functionName: 'challenge',
      args: [BigInt(n), evidenceHash],
    });
    const view = await fetchProposal(options.url, n);
    out.result(
      { ...view, bond: bond.toString(), evidenceHash, tx },
      (x) => `challenged proposal ${x.id}'s submission (bond ${open(x.bond)}) in ${x.tx}`,
    );
  });

  signer(
    proposal
      .command('resolve')
      .description('rule on a challenged evaluation (arbiters only)')
      .argument('<id>')
      .option('--upheld', 'the challenge is right: the submission is void, the bond returned')
      .option('--rejected', 'the evaluation stands: claimable at once, the bond to the builder'),
  ).action(async (id: string, options: AuthFlags & { upheld?: boolean; rejected?: boolean }) => {
    const n = idArg(id);
    if (Boolean(options.upheld) === Boolean(options.rejected))
      throw new OpenLedgerError('VALIDATION_FAILED', 'Say --upheld or --rejected (one of them).');
    const w = await nodeWallet(options);
    const tx = await send(w.chain, w.account, {
      address: contractOf(w),
      abi: ModelProposalsAbi,
      functionName: 'resolve',
      args: [BigInt(n), Boolean(options.upheld)],
    });
    const view = await fetchProposal(options.url, n);
    out.result(
      { ...view, upheld: Boolean(options.upheld), tx },
      (x) =>
        `${x.upheld ? 'upheld the challenge: the submission is void' : 'rejected the challenge: the submission stands'} (${x.tx})\n${proposalLines(x)}`,
    );
  });

  const action = (
    name: 'claim' | 'refund' | 'cancel',
    description: string,
    text: (r: { id: number; amount: string | null; to: Address | null; tx: Hex }) => string,
  ) =>
    signer(proposal.command(name).description(description).argument('<id>')).action(
      async (id: string, options: AuthFlags) => {
        const n = idArg(id);
        const w = await nodeWallet(options);
        const tx = await send(w.chain, w.account, {
          address: contractOf(w),
          abi: ModelProposalsAbi,
          functionName: name,
          args: [BigInt(n)],
        });
        const receipt = await w.chain.publicClient.getTransactionReceipt({ hash: tx });
        const logs = parseEventLogs({ abi: ModelProposalsAbi, logs: receipt.logs });
        let amount: string | null = null;
        let to: Address | null = null;
        for (const log of logs) {
          if (log.eventName === 'Claimed') {
            amount = log.args.amount.toString();
            to = log.args.builder;
          } else if (log.eventName === 'Refunded') {
            amount = log.args.amount.toString();
            to = log.args.funder;
          }
        }
        const view = await fetchProposal(options.url, n);
        const r = { ...view, amount, to, tx };
        out.result(r, (x) => `${text(x)}\n${proposalLines(x)}`);
      },
    );

  action(
    'claim',
    "pay a proposal's funds to the winning model's holder (once its challenge window has closed)",
    (r) => `paid ${open(r.amount ?? '0')} to ${r.to} (proposal ${r.id}) in ${r.tx}`,
  );
  action(
    'refund',
    'take back your funding of a cancelled or expired proposal',
    (r) => `refunded ${open(r.amount ?? '0')} to ${r.to} (proposal ${r.id}) in ${r.tx}`,
  );
  action(
    'cancel',
    'cancel your open proposal (funders can then take their funding back)',
    (r) => `cancelled proposal ${r.id} in ${r.tx}`,
  );
}
