/**
 * `openledger agent|stake|gov` (docs/cli.md, "Agents, staking and governance"): the wallet acts
 * on-chain itself (it stakes its OPEN and casts its votes, paying the gas), the node is asked for
 * what it knows (agents it serves, proposals, parameters) and checks agent specifications.
 */
import type { Command } from 'commander';
import {
  formatUnits,
  getAddress,
  isAddress,
  keccak256,
  stringToHex,
  type Address,
  type Hex,
} from 'viem';
import {
  AgentStakingAbi,
  ContributionVotesAbi,
  ModelStakingAbi,
  OpenLedgerGovernorAbi,
  StakedOpenAbi,
} from '../../chain/generated/contracts.ts';
import { OpenLedgerError } from '../../errors.ts';
import {
  encodeAction,
  getProposal,
  governorSettings,
  listProposals,
  modelStakes,
  parseSplit,
  readParameters,
  requireGovernance,
  votingPower,
  type AgentView,
  type GovernanceAction,
  type ProposalView,
} from '../../market/index.ts';
import type { Output } from '../output.ts';
import { readJsonFile } from '../input.ts';
import { approveOpen, nodeWallet, send, type NodeWallet } from '../wallet.ts';
import { parseOpenAmount } from './escrow.ts';
import { authenticatedClient, type AuthFlags } from './keys.ts';

type SignerOptions = (command: Command) => Command;
const open = (wei: string | bigint) => `${formatUnits(BigInt(wei), 18)} OPEN`;

function idArg(value: string, what: string): bigint {
  if (!/^\d{1,78}$/.test(value))
    throw new OpenLedgerError('VALIDATION_FAILED', `"${value}" is not ${what}.`);
  return BigInt(value);
}

function addressArg(value: string): Address {
  if (!isAddress(value, { strict: false }))
    throw new OpenLedgerError('VALIDATION_FAILED', `"${value}" is not an address.`);
  return getAddress(value);
}

// ----- agents ------------------------------------------------------------------------------------

function agentLine(a: AgentView): string {
  const state = a.active ? 'active' : a.retired ? 'retired' : 'inactive (below the minimum stake)';
  return `${a.id}  ${a.model}  ${open(a.stake)} staked  ${state}  owner ${a.owner}`;
}

export function registerAgentCommands(program: Command, out: Output, signer: SignerOptions): void {
  const agent = program
    .command('agent')
    .description('agents: staked compositions of models, adapters and datanets, served as models');

  signer(agent.command('list').description('agents this node serves')).action(
    async (options: AuthFlags) => {
      const client = await authenticatedClient(options);
      const r = await client.request<{ agents: AgentView[] }>('GET', '/api/agents');
      out.result(r, (x) => (x.agents.length ? x.agents.map(agentLine).join('\n') : 'no agents'));
    },
  );

  signer(agent.command('show').description('one agent').argument('<agent>', 'id or name')).action(
    async (ref: string, options: AuthFlags) => {
      const client = await authenticatedClient(options);
      const a = await client.request<AgentView>(
        'GET',
        `/api/agents/${encodeURIComponent(ref.replace(/^agent:/, ''))}`,
      );
      out.result(a, (x) =>
        [
          agentLine(x),
          `spec ${x.specHash}${x.specCurrent ? '' : ' (the chain now names another spec)'}`,
          ...x.spec.steps.map(
            (s, i) =>
              `  step ${i + 1}: ${s.model}${s.adapters?.length ? ` + ${s.adapters.map((d) => `${d.id}×${d.weight}`).join(' + ')}` : ''}${s.rag ? ` (RAG over datanets ${s.rag.datanets.join(', ')})` : ''}${s.instruction ? ` — "${s.instruction}"` : ''}`,
          ),
          ...(BigInt(x.unbonding) > 0n
            ? [
                `unbonding ${open(x.unbonding)} until ${new Date(x.releaseAt! * 1000).toISOString()}`,
              ]
            : []),
        ].join('\n'),
      );
    },
  );

  signer(
    agent
      .command('validate')
      .description('check a specification file against this node (models, adapters, datanets)')
      .argument('<spec.json>'),
  ).action(async (file: string, options: AuthFlags) => {
    const client = await authenticatedClient(options);
    const r = await client.request<{ specHash: string; parameters: { minStake: string } }>(
      'POST',
      '/api/agents/validate',
      { spec: await readJsonFile(file) },
    );
    out.result(
      r,
      (x) => `valid: sha256 ${x.specHash}; launching needs at least ${open(x.parameters.minStake)}`,
    );
  });

  signer(
    agent
      .command('launch')
      .description(
        'stake OPEN and launch an agent on-chain from a specification file, then register it here',
      )
      .argument('<spec.json>')
      .requiredOption('--stake <open>', 'OPEN to stake (at least the minimum)'),
  ).action(async (file: string, options: AuthFlags & { stake: string }) => {
    const amount = parseOpenAmount(options.stake, { allowZero: false });
    const w = await nodeWallet(options);
    const spec = await readJsonFile(file);
    const client = await authenticatedClient(options);
    out.progress('checking the specification');
    const checked = await client.request<{
      spec: { name: string };
      specHash: string;
      parameters: { minStake: string; agentStaking: Address };
    }>('POST', '/api/agents/validate', { spec });
    if (amount < BigInt(checked.parameters.minStake))
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `An agent needs at least ${open(checked.parameters.minStake)} at stake; --stake is ${open(amount)}.`,
      );
    const staking = checked.parameters.agentStaking;
    out.progress(`approving ${open(amount)}`);
    await approveOpen(w, staking, amount);
    out.progress(`launching "${checked.spec.name}"`);
    const tx = await send(w.chain, w.account, {
      address: staking,
      abi: AgentStakingAbi,
      functionName: 'launch',
      args: [checked.spec.name, `0x${checked.specHash}`, amount],
    });
    const id = await w.chain.publicClient.readContract({
      address: staking,
      abi: AgentStakingAbi,
      functionName: 'agentOfName',
      args: [keccak256(stringToHex(checked.spec.name))],
    });
    out.progress(`registering agent ${id} with the node`);
    const view = await client.request<AgentView>('POST', '/api/agents', { id: Number(id), spec });
    out.result(
      { ...view, tx },
      (x) => `launched ${x.model} (agent ${x.id}) with ${open(x.stake)} staked in ${x.tx}`,
    );
  });

  signer(
    agent
      .command('register')
      .description(
        'give this node the specification of an agent launched elsewhere (or after updateSpec)',
      )
      .argument('<id>')
      .argument('<spec.json>'),
  ).action(async (id: string, file: string, options: AuthFlags) => {
    const client = await authenticatedClient(options);
    const view = await client.request<AgentView>('POST', '/api/agents', {
      id: Number(idArg(id, 'an agent id')),
      spec: await readJsonFile(file),
    });
    out.result(view, (x) => `registered ${x.model} (agent ${x.id})`);
  });

  const agentAction = (
    name: string,
    description: string,
    run: (
      w: NodeWallet,
      staking: Address,
      id: bigint,
      extra: string | undefined,
    ) => Promise<{ tx: Hex; text: string }>,
    extraArg?: string,
  ) => {
    let command = agent.command(name).description(description).argument('<id>', 'the agent id');
    if (extraArg) command = command.argument(extraArg);
    signer(command).action(async (id: string, ...rest: unknown[]) => {
      const options = (extraArg ? rest[1] : rest[0]) as AuthFlags;
      const extra = extraArg ? (rest[0] as string) : undefined;
      const w = await nodeWallet(options);
      const staking = requireGovernance(w.contracts).AgentStaking;
      const r = await run(w, staking, idArg(id, 'an agent id'), extra);
      out.result({ agentId: Number(id), tx: r.tx }, () => r.text);
    });
  };

  agentAction(
    'add-stake',
    "add OPEN to an agent's stake",
    async (w, staking, id, amount) => {
      const wei = parseOpenAmount(amount!, { allowZero: false });
      await approveOpen(w, staking, wei);
      const tx = await send(w.chain, w.account, {
        address: staking,
        abi: AgentStakingAbi,
        functionName: 'addStake',
        args: [id, wei],
      });
      return { tx, text: `added ${open(wei)} to agent ${id} in ${tx}` };
    },
    '<open>',
  );
  agentAction(
    'unbond',
    'start unbonding part of the stake (all of it retires the agent)',
    async (w, staking, id, amount) => {
      const wei = parseOpenAmount(amount!, { allowZero: false });
      const tx = await send(w.chain, w.account, {
        address: staking,
        abi: AgentStakingAbi,
        functionName: 'requestUnbond',
        args: [id, wei],
      });
      return {
        tx,
        text: `unbonding ${open(wei)} of agent ${id} (withdraw after the unbonding period) in ${tx}`,
      };
    },
    '<open>',
  );
  agentAction(
    'withdraw',
    'take back the unbonded stake once its period has passed',
    async (w, staking, id) => {
      const tx = await send(w.chain, w.account, {
        address: staking,
        abi: AgentStakingAbi,
        functionName: 'withdraw',
        args: [id],
      });
      return { tx, text: `withdrew the unbonded stake of agent ${id} in ${tx}` };
    },
  );
  agentAction(
    'challenge',
    "dispute an agent's behaviour with the challenge bond (the arbiter rules)",
    async (w, staking, id, evidence) => {
      const bond = await w.chain.publicClient.readContract({
        address: staking,
        abi: AgentStakingAbi,
        functionName: 'challengeBond',
      });
      if (bond > 0n) await approveOpen(w, staking, bond);
      const tx = await send(w.chain, w.account, {
        address: staking,
        abi: AgentStakingAbi,
        functionName: 'challenge',
        args: [id, keccak256(stringToHex(evidence!))],
      });
      return { tx, text: `challenged agent ${id} (bond ${open(bond)}) in ${tx}` };
    },
    '<evidence>',
  );
}

// ----- model stakes ------------------------------------------------------------------------------

export function registerStakeCommands(program: Command, out: Output, signer: SignerOptions): void {
  const stake = program
    .command('stake')
    .description(
      "stake OPEN on models: stakers share each model's stakers part of every paid call",
    );

  signer(
    stake.command('list').description('who is staked on a model').argument('<model>', 'Model ID'),
  ).action(async (model: string, options: AuthFlags) => {
    const w = await nodeWallet(options);
    const r = await modelStakes(
      w.chain.publicClient,
      requireGovernance(w.contracts),
      Number(idArg(model, 'a Model ID')),
    );
    out.result(r, (x) =>
      [
        `model ${x.modelId}: ${open(x.total)} staked`,
        ...x.stakers.map((s) => `  ${s.address}  ${open(s.stake)}`),
      ].join('\n'),
    );
  });

  signer(
    stake
      .command('add')
      .description('stake OPEN on a model')
      .argument('<model>', 'Model ID')
      .argument('<open>', 'amount'),
  ).action(async (model: string, amount: string, options: AuthFlags) => {
    const wei = parseOpenAmount(amount, { allowZero: false });
    const w = await nodeWallet(options);
    const staking = requireGovernance(w.contracts).ModelStaking;
    await approveOpen(w, staking, wei);
    const tx = await send(w.chain, w.account, {
      address: staking,
      abi: ModelStakingAbi,
      functionName: 'stake',
      args: [idArg(model, 'a Model ID'), wei],
    });
    out.result(
      { modelId: Number(model), amount: wei.toString(), tx },
      (r) => `staked ${open(r.amount)} on model ${r.modelId} in ${r.tx}`,
    );
  });

  signer(
    stake
      .command('remove')
      .description(
        'stop staking an amount on a model (it stops earning now; withdraw after the unbonding period)',
      )
      .argument('<model>', 'Model ID')
      .argument('<open>', 'amount'),
  ).action(async (model: string, amount: string, options: AuthFlags) => {
    const wei = parseOpenAmount(amount, { allowZero: false });
    const w = await nodeWallet(options);
    const staking = requireGovernance(w.contracts).ModelStaking;
    const tx = await send(w.chain, w.account, {
      address: staking,
      abi: ModelStakingAbi,
      functionName: 'requestUnstake',
      args: [idArg(model, 'a Model ID'), wei],
    });
    out.result(
      { modelId: Number(model), amount: wei.toString(), tx },
      (r) => `unstaking ${open(r.amount)} from model ${r.modelId} in ${r.tx}`,
    );
  });

  signer(
    stake
      .command('withdraw')
      .description('take back unstaked OPEN after its unbonding period')
      .argument('<model>', 'Model ID'),
  ).action(async (model: string, options: AuthFlags) => {
    const w = await nodeWallet(options);
    const staking = requireGovernance(w.contracts).ModelStaking;
    const tx = await send(w.chain, w.account, {
      address: staking,
      abi: ModelStakingAbi,
      functionName: 'withdraw',
      args: [idArg(model, 'a Model ID')],
    });
    out.result(
      { modelId: Number(model), tx },
      (r) => `withdrew from model ${r.modelId} in ${r.tx}`,
    );
  });
}

// ----- governance --------------------------------------------------------------------------------

const SUPPORT = { against: 0, for: 1, abstain: 2 } as const;

function proposalLines(p: ProposalView): string {
  return [
    `${p.id}  ${p.state}  "${p.description.split('\n')[0]}"`,
    `  for ${open(p.votes.for)} · against ${open(p.votes.against)} · abstain ${open(p.votes.abstain)} · quorum ${open(p.quorum)}`,
    `  vote ${new Date(p.voteStart * 1000).toISOString()} → ${new Date(p.voteEnd * 1000).toISOString()}${p.eta ? ` · executable from ${new Date(p.eta * 1000).toISOString()}` : ''}`,
    ...p.calls.map((c) => `  → ${c.summary}`),
  ].join('\n');
}

/** `3600`, `90m`, `6h`, `1d` → seconds. */
function durationSeconds(text: string): bigint {
  const match = /^(\d+)\s*([smhd]?)$/i.exec(text.trim());
  if (!match)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `"${text}" is not a duration: seconds, or a number with s, m, h or d (e.g. 6h).`,
    );
  const unit = { '': 1n, s: 1n, m: 60n, h: 3600n, d: 86_400n }[match[2]!.toLowerCase()]!;
  return BigInt(match[1]!) * unit;
}

/** `--set name=value` → an action. */
function actionOfSetting(setting: string): GovernanceAction {
  const [name, value] = [
    setting.slice(0, setting.indexOf('=')),
    setting.slice(setting.indexOf('=') + 1),
  ];
  if (!setting.includes('=') || !value)
    throw new OpenLedgerError('VALIDATION_FAILED', `--set takes name=value, got "${setting}".`);
  switch (name) {
    case 'default-split':
      return { kind: 'default-split', split: parseSplit(value) };
    case 'min-agent-stake':
      return { kind: 'min-agent-stake', wei: parseOpenAmount(value, { allowZero: false }) };
    case 'penalty-threshold':
      return { kind: 'penalty-threshold', threshold: idArg(value, 'a penalty threshold') };
    case 'epoch-length':
      return { kind: 'epoch-length', seconds: durationSeconds(value) };
    default:
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `Unknown parameter "${name}": expected default-split, min-agent-stake, penalty-threshold or epoch-length.`,
      );
  }
}

export function registerGovernanceCommands(
  program: Command,
  out: Output,
  signer: SignerOptions,
): void {
  const gov = program
    .command('gov')
    .description(
      'governance: staked OPEN (gOPEN) and contribution votes (cVOTE) decide protocol parameters',
    );

  signer(
    gov
      .command('status')
      .description('Governor settings, protocol parameters and your voting power'),
  ).action(async (options: AuthFlags) => {
    const w = await nodeWallet(options);
    const c = requireGovernance(w.contracts);
    const [settings, parameters, power] = await Promise.all([
      governorSettings(w.chain.publicClient, c),
      readParameters(w.chain.publicClient, c),
      votingPower(w.chain.publicClient, c, w.account.address),
    ]);
    out.result({ settings, parameters, account: power }, (r) =>
      [
        `voting delay ${r.settings.votingDelaySeconds}s, period ${r.settings.votingPeriodSeconds}s, timelock ${r.settings.timelockDelaySeconds}s, threshold ${open(r.settings.proposalThreshold)}, quorum ${r.settings.quorumPercent}%`,
        `default split owner/stakers/contributors ${r.parameters.defaultSplit.owner}/${r.parameters.defaultSplit.stakers}/${r.parameters.defaultSplit.contributors} bps; minimum agent stake ${open(r.parameters.agents.minStake)}${r.parameters.contributionPenalties ? `; penalty threshold ${r.parameters.contributionPenalties.penaltyThreshold}` : ''}`,
        `${r.account.address}: ${open(r.account.votes)} votes (staked ${open(r.account.staked.votes)}, contribution ${open(r.account.contribution.votes)}${BigInt(r.account.contribution.pending) > 0n ? `, ${open(r.account.contribution.pending)} to sync` : ''}); ${open(r.account.open)} in the wallet`,
      ].join('\n'),
    );
  });

  signer(
    gov.command('deposit').description('stake OPEN for votes (mints gOPEN 1:1)').argument('<open>'),
  ).action(async (amount: string, options: AuthFlags) => {
    const wei = parseOpenAmount(amount, { allowZero: false });
    const w = await nodeWallet(options);
    const c = requireGovernance(w.contracts);
    await approveOpen(w, c.StakedOpen, wei);
    const tx = await send(w.chain, w.account, {
      address: c.StakedOpen,
      abi: StakedOpenAbi,
      functionName: 'depositFor',
      args: [w.account.address, wei],
    });
    out.result(
      { amount: wei.toString(), tx },
      (r) => `staked ${open(r.amount)} for votes in ${r.tx}`,
    );
  });

  signer(
    gov.command('withdraw').description('burn gOPEN and take the OPEN back').argument('<open>'),
  ).action(async (amount: string, options: AuthFlags) => {
    const wei = parseOpenAmount(amount, { allowZero: false });
    const w = await nodeWallet(options);
    const c = requireGovernance(w.contracts);
    const tx = await send(w.chain, w.account, {
      address: c.StakedOpen,
      abi: StakedOpenAbi,
      functionName: 'withdrawTo',
      args: [w.account.address, wei],
    });
    out.result({ amount: wei.toString(), tx }, (r) => `withdrew ${open(r.amount)} in ${r.tx}`);
  });

  signer(
    gov
      .command('delegate')
      .description('delegate your staked and contribution votes')
      .argument('<address>'),
  ).action(async (to: string, options: AuthFlags) => {
    const delegatee = addressArg(to);
    const w = await nodeWallet(options);
    const c = requireGovernance(w.contracts);
    const txs = [];
    for (const [address, abi] of [
      [c.StakedOpen, StakedOpenAbi],
      [c.ContributionVotes, ContributionVotesAbi],
    ] as const)
      txs.push(
        await send(w.chain, w.account, {
          address,
          abi,
          functionName: 'delegate',
          args: [delegatee],
        }),
      );
    out.result({ delegate: delegatee, txs }, (r) => `delegated your votes to ${r.delegate}`);
  });

  signer(
    gov
      .command('sync')
      .description(
        'mint the contribution votes your claimed rewards earned (the node pays the gas)',
      )
      .option('--address <address>', 'another account to sync'),
  ).action(async (options: AuthFlags & { address?: string }) => {
    const client = await authenticatedClient(options);
    const r = await client.request<{ address: string; minted: string; txHash: string | null }>(
      'POST',
      '/api/governance/sync',
      options.address ? { address: addressArg(options.address) } : {},
    );
    out.result(r, (x) =>
      x.txHash
        ? `minted ${open(x.minted)} contribution votes for ${x.address} in ${x.txHash}`
        : `${x.address} has no new contribution votes`,
    );
  });

  signer(
    gov
      .command('propose')
      .description(
        'propose parameter changes or slashing an agent (needs the proposal threshold in votes)',
      )
      .requiredOption('--description <text>', 'what and why (the first line is the title)')
      .option(
        '--set <name=value...>',
        'default-split=60/10/30 · min-agent-stake=<open> · penalty-threshold=<n> · epoch-length=<6h>',
        [],
      )
      .option('--slash-agent <id:open>', "slash an agent's stake (e.g. 3:100)"),
  ).action(
    async (options: AuthFlags & { description: string; set: string[]; slashAgent?: string }) => {
      const w = await nodeWallet(options);
      const c = requireGovernance(w.contracts);
      const actions = options.set.map(actionOfSetting);
      if (options.slashAgent) {
        const [id, amount] = options.slashAgent.split(':');
        actions.push({
          kind: 'slash-agent',
          agentId: idArg(id ?? '', 'an agent id'),
          wei: parseOpenAmount(amount ?? '', { allowZero: false }),
          reason: options.description,
        });
      }
      if (actions.length === 0)
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          'Name at least one change: --set name=value or --slash-agent id:open.',
        );
      const calls = await Promise.all(actions.map((a) => encodeAction(w.chain.publicClient, c, a)));
      const tx = await send(w.chain, w.account, {
        address: c.OpenLedgerGovernor,
        abi: OpenLedgerGovernorAbi,
        functionName: 'propose',
        args: [
          calls.map((x) => x.target),
          calls.map((x) => x.value),
          calls.map((x) => x.calldata),
          options.description,
        ],
      });
      const id = await w.chain.publicClient.readContract({
        address: c.OpenLedgerGovernor,
        abi: OpenLedgerGovernorAbi,
        functionName: 'getProposalId',
        args: [
          calls.map((x) => x.target),
          calls.map((x) => x.value),
          calls.map((x) => x.calldata),
          keccak256(stringToHex(options.description)),
        ],
      });
      out.result({ id: id.toString(), tx }, (r) => `proposal ${r.id} created in ${r.tx}`);
    },
  );

  signer(gov.command('list').description('governance proposals, newest first')).action(
    async (options: AuthFlags) => {
      const w = await nodeWallet(options);
      const proposals = await listProposals(w.chain.publicClient, requireGovernance(w.contracts));
      out.result({ proposals }, (r) =>
        r.proposals.length ? r.proposals.map(proposalLines).join('\n') : 'no proposals',
      );
    },
  );

  signer(gov.command('show').description('one proposal').argument('<id>')).action(
    async (id: string, options: AuthFlags) => {
      const w = await nodeWallet(options);
      const p = await getProposal(
        w.chain.publicClient,
        requireGovernance(w.contracts),
        idArg(id, 'a proposal id').toString(),
      );
      out.result(p, proposalLines);
    },
  );

  signer(
    gov
      .command('vote')
      .description('vote on an active proposal')
      .argument('<id>')
      .argument('<support>', 'for, against or abstain')
      .option('--reason <text>'),
  ).action(async (id: string, support: string, options: AuthFlags & { reason?: string }) => {
    const choice = SUPPORT[support.toLowerCase() as keyof typeof SUPPORT];
    if (choice === undefined)
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `Vote for, against or abstain; got "${support}".`,
      );
    const w = await nodeWallet(options);
    const c = requireGovernance(w.contracts);
    const tx = await send(w.chain, w.account, {
      address: c.OpenLedgerGovernor,
      abi: OpenLedgerGovernorAbi,
      functionName: 'castVoteWithReason',
      args: [idArg(id, 'a proposal id'), choice, options.reason ?? ''],
    });
    const p = await getProposal(w.chain.publicClient, c, id);
    out.result({ ...p, tx }, (r) => `voted ${support} in ${r.tx}\n${proposalLines(r)}`);
  });

  for (const [name, fn, description] of [
    ['queue', 'queue', 'queue a succeeded proposal in the Timelock'],
    ['execute', 'execute', 'carry out a queued proposal once the Timelock delay has passed'],
  ] as const) {
    signer(gov.command(name).description(description).argument('<id>')).action(
      async (id: string, options: AuthFlags) => {
        const w = await nodeWallet(options);
        const c = requireGovernance(w.contracts);
        const p = await getProposal(w.chain.publicClient, c, idArg(id, 'a proposal id').toString());
        const tx = await send(w.chain, w.account, {
          address: c.OpenLedgerGovernor,
          abi: OpenLedgerGovernorAbi,
          functionName: fn,
          args: [
            p.calls.map((x) => x.target),
            p.calls.map((x) => x.value),
            p.calls.map((x) => x.calldata),
            p.descriptionHash,
          ],
        });
        const after = await getProposal(w.chain.publicClient, c, p.id);
        out.result(
          { ...after, tx },
          (r) =>
            `${name === 'queue' ? 'queued' : 'executed'} proposal ${r.id} in ${r.tx}\n${proposalLines(r)}`,
        );
      },
    );
  }
}
