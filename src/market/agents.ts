/**
 * Agents on a node (issue #8, item 3): registration of launched agents (their specification
 * checked against the hash AgentStaking holds), their on-chain state, and the runtime that plays
 * an agent's steps when it is called as `agent:<name>` through the OpenAI API.
 */
import { asc, eq, sql } from 'drizzle-orm';
import { getAddress, type Address } from 'viem';
import type { Principal } from '../auth/index.ts';
import type { ChainConnection } from '../chain/clients.ts';
import { AgentStakingAbi } from '../chain/generated/contracts.ts';
import { schema, type Db } from '../db/index.ts';
import { OpenLedgerError } from '../errors.ts';
import { finishRag, prepareRag, recordRagAnswer, type FinishedRag } from '../rag/answer.ts';
import type { RagService } from '../rag/index.ts';
import type { ChatMessage, ServingEngine } from '../serving/index.ts';
import { agentSpecHash, parseAgentSpec, type AgentSpec, type AgentStep } from './agent-spec.ts';

/** An agent as the API shows it: the node's record and the chain's state. */
export interface AgentView {
  id: number;
  name: string;
  owner: Address;
  description: string | null;
  spec: AgentSpec;
  specHash: string;
  /** Whether the chain's spec hash is still this spec's (the owner may have pointed it elsewhere). */
  specCurrent: boolean;
  stake: string;
  unbonding: string;
  releaseAt: number | null;
  openChallenges: number;
  retired: boolean;
  /** Served: not retired and staked at least the current minimum. */
  active: boolean;
  minStake: string;
  launchedAt: number;
  model: string;
}

/** One step of an agent call that ran before the last. */
export interface AgentStepResult {
  step: number;
  model: string;
  receipt: { id: string; hash: string | undefined };
  promptTokens: number;
  completionTokens: number;
  publishedModelId: number | undefined;
  rag: { answer: FinishedRag['kind']; citations: number } | null;
}

/** What the OpenAI route needs to run an agent's last step as an ordinary generation. */
export interface AgentPlan {
  agent: { id: number; name: string };
  /** The last step: its model, adapters, RAG and sampling, over `messages`. */
  final: AgentStep;
  messages: ChatMessage[];
  steps: AgentStepResult[];
}

export const AGENT_PREFIX = 'agent:';

export class AgentService {
  constructor(
    private readonly deps: {
      db: Db;
      chain: ChainConnection;
      agentStaking: Address;
      serving: ServingEngine;
      rag: RagService | undefined;
    },
  ) {}

  private read<T>(functionName: string, args: readonly unknown[] = []): Promise<T> {
    return this.deps.chain.publicClient.readContract({
      address: this.deps.agentStaking,
      abi: AgentStakingAbi,
      functionName,
      args,
    } as never) as Promise<T>;
  }

  /** AgentStaking's parameters, for launching. */
  async parameters() {
    const [minStake, unbondingPeriod, challengeBond] = await Promise.all([
      this.read<bigint>('minStake'),
      this.read<bigint>('unbondingPeriod'),
      this.read<bigint>('challengeBond'),
    ]);
    return {
      agentStaking: this.deps.agentStaking,
      minStake: minStake.toString(),
      unbondingSeconds: Number(unbondingPeriod),
      challengeBond: challengeBond.toString(),
    };
  }

  /**
   * Checks a specification before it is launched: its shape, its name still free on-chain, and
   * that this node can run every step (models and adapters exist and fit their base).
   */
  async validate(value: unknown): Promise<{ spec: AgentSpec; specHash: string }> {
    const spec = parseAgentSpec(value);
    for (const [i, step] of spec.steps.entries()) {
      try {
        await this.deps.serving.resolve(step.model, step.adapters ?? []);
      } catch (error) {
        if (error instanceof OpenLedgerError)
          throw new OpenLedgerError(error.code, `steps[${i}]: ${error.message}`, {
            ...(error.hint ? { hint: error.hint } : {}),
            details: { field: `steps[${i}].model` },
          });
        throw error;
      }
      if (step.rag && !this.deps.rag)
        throw new OpenLedgerError('RAG_UNAVAILABLE', `steps[${i}].rag: this node has no RAG.`, {
          details: { field: `steps[${i}].rag` },
        });
    }
    return { spec, specHash: agentSpecHash(spec) };
  }

  /**
   * Records a launched agent's specification: the chain must hold an agent `id` of that name
   * whose spec hash is this spec's. Registering again after `updateSpec` replaces the spec.
   */
  async register(id: number, value: unknown): Promise<AgentView> {
    const { spec, specHash } = await this.validate(value);
    const onChain = await this.onChain(id);
    if (!onChain)
      throw new OpenLedgerError('NOT_FOUND', `There is no agent ${id} in AgentStaking.`, {
        hint: 'Launch it on-chain first (`openledger agent launch`).',
      });
    if (onChain.name !== spec.name)
      throw new OpenLedgerError(
        'CONFLICT',
        `Agent ${id} is named "${onChain.name}" on-chain, not "${spec.name}".`,
        { details: { field: 'name' } },
      );
    if (onChain.specHash !== specHash)
      throw new OpenLedgerError(
        'CONFLICT',
        `The specification hashes to ${specHash}; agent ${id} records ${onChain.specHash} on-chain.`,
        { hint: 'Register the exact specification you launched (or call updateSpec first).' },
      );
    await this.deps.db
      .insert(schema.agents)
      .values({ id, name: spec.name, owner: onChain.owner.toLowerCase(), spec, specHash })
      .onConflictDoUpdate({
        target: schema.agents.id,
        set: { spec, specHash, owner: onChain.owner.toLowerCase(), updatedAt: sql`now()` },
      });
    return (await this.get(String(id)))!;
  }

  async list(): Promise<AgentView[]> {
    const rows = await this.deps.db.select().from(schema.agents).orderBy(asc(schema.agents.id));
    const minStake = await this.read<bigint>('minStake');
    return Promise.all(rows.map((row) => this.view(row, minStake)));
  }

  /** By id, name or `agent:<name>`; undefined when this node has no such agent. */
  async get(ref: string): Promise<AgentView | undefined> {
    const name = ref.startsWith(AGENT_PREFIX) ? ref.slice(AGENT_PREFIX.length) : ref;
    const [row] = await this.deps.db
      .select()
      .from(schema.agents)
      .where(
        /^\d{1,9}$/.test(name) ? eq(schema.agents.id, Number(name)) : eq(schema.agents.name, name),
      )
      .limit(1);
    return row ? this.view(row, await this.read<bigint>('minStake')) : undefined;
  }

  /**
   * Plays every step but the last of agent `model` for `caller` and returns what the last step
   * runs on. Refuses an agent that is not active on-chain (retired, or slashed or left below the
   * minimum stake).
   */
  async plan(input: {
    model: string;
    messages: readonly ChatMessage[];
    caller: Principal;
    signal: AbortSignal;
  }): Promise<AgentPlan> {
    const agent = await this.get(input.model);
    if (!agent)
      throw new OpenLedgerError(
        'MODEL_NOT_FOUND',
        `There is no agent "${input.model}" on this node.`,
        {
          hint: 'GET /api/agents lists the agents this node serves.',
          details: { field: 'model' },
        },
      );
    if (!agent.active)
      throw new OpenLedgerError(
        'AGENT_INACTIVE',
        agent.retired
          ? `Agent "${agent.name}" is retired (its owner unbonded its stake).`
          : `Agent "${agent.name}" is staked ${agent.stake} OPEN wei, below the minimum ${agent.minStake}: it is not served.`,
        { details: { field: 'model' } },
      );
    if (!agent.specCurrent)
      throw new OpenLedgerError(
        'AGENT_INACTIVE',
        `Agent "${agent.name}" points on-chain at a specification this node does not have.`,
        { hint: 'Its owner must register the new specification (`openledger agent register`).' },
      );
    const spec = agent.spec;
    const conversation: ChatMessage[] = [
      ...(spec.system ? [{ role: 'system', content: spec.system }] : []),
      ...input.messages,
    ];
    let messages = conversation;
    let lastText = '';
    const steps: AgentStepResult[] = [];
    for (const [i, step] of spec.steps.entries()) {
      if (i > 0) {
        messages = [
          ...conversation,
          { role: 'assistant', content: lastText },
          { role: 'user', content: step.instruction! },
        ];
      }
      if (i === spec.steps.length - 1) break;
      const ran = await this.runStep(i, step, messages, input.caller, input.signal);
      steps.push(ran.result);
      lastText = ran.text;
    }
    return {
      agent: { id: agent.id, name: agent.name },
      final: spec.steps.at(-1)!,
      messages,
      steps,
    };
  }

  private async runStep(
    index: number,
    step: AgentStep,
    messages: ChatMessage[],
    caller: Principal,
    signal: AbortSignal,
  ): Promise<{ text: string; result: AgentStepResult }> {
    const adapters = step.adapters ?? [];
    const prepared =
      step.rag && this.deps.rag
        ? await prepareRag(
            { rag: this.deps.rag, serving: this.deps.serving },
            {
              caller: caller.address,
              model: step.model,
              adapters,
              messages,
              options: step.rag,
              ...(step.max_tokens === undefined ? {} : { maxTokens: step.max_tokens }),
              signal,
            },
          )
        : undefined;
    const result = await this.deps.serving.generate({
      endpoint: 'chat.completions',
      model: step.model,
      adapters,
      messages: prepared?.messages ?? messages,
      sampling: {
        ...(step.max_tokens === undefined ? {} : { maxTokens: step.max_tokens }),
        ...(step.temperature === undefined ? {} : { temperature: step.temperature }),
      },
      caller,
      signal,
      onText: () => {},
    });
    let text = result.text;
    let rag: AgentStepResult['rag'] = null;
    if (prepared) {
      const finished = finishRag(prepared, result.text);
      await recordRagAnswer(this.deps.db, {
        usageId: result.receipt.id,
        prepared,
        datanets: [...new Set(step.rag!.datanets)].sort((a, b) => a - b),
        finished,
      });
      text = finished.text;
      rag = { answer: finished.kind, citations: finished.citations.length };
    }
    return {
      text,
      result: {
        step: index,
        model: step.model,
        receipt: { id: result.receipt.id, hash: result.receiptHash },
        promptTokens: result.promptTokens,
        completionTokens: result.completionTokens,
        publishedModelId: result.receipt.publishedModelId ?? undefined,
        rag,
      },
    };
  }

  private async onChain(id: number) {
    const a = await this.read<{
      owner: Address;
      specHash: `0x${string}`;
      stake: bigint;
      unbonding: bigint;
      releaseAt: bigint;
      launchedAt: bigint;
      openChallenges: number;
      retired: boolean;
      name: string;
    }>('agent', [BigInt(id)]);
    if (getAddress(a.owner) === '0x0000000000000000000000000000000000000000') return undefined;
    return { ...a, specHash: a.specHash.slice(2) };
  }

  private async view(row: typeof schema.agents.$inferSelect, minStake: bigint): Promise<AgentView> {
    const chain = await this.onChain(row.id);
    // AgentStaking.isActive, from the record just read and the minimum read with it.
    const active =
      chain !== undefined && !chain.retired && chain.stake !== 0n && chain.stake >= minStake;
    const spec = row.spec as AgentSpec;
    return {
      id: row.id,
      name: row.name,
      owner: getAddress(chain?.owner ?? row.owner),
      description: spec.description ?? null,
      spec,
      specHash: row.specHash,
      specCurrent: chain?.specHash === row.specHash,
      stake: (chain?.stake ?? 0n).toString(),
      unbonding: (chain?.unbonding ?? 0n).toString(),
      releaseAt: chain && chain.unbonding > 0n ? Number(chain.releaseAt) : null,
      openChallenges: Number(chain?.openChallenges ?? 0),
      retired: chain?.retired ?? false,
      active,
      minStake: minStake.toString(),
      launchedAt: Number(chain?.launchedAt ?? 0n),
      model: `${AGENT_PREFIX}${row.name}`,
    };
  }
}
