// /agents — the agents this node serves as `agent:<name>` (GET /api/agents) and a form to launch
// one: its specification is checked by the node (POST /api/agents/validate, which gives its
// sha256), the wallet approves and stakes OPEN in AgentStaking.launch(name, specHash, amount),
// and the node is given the specification to serve (POST /api/agents), as `openledger agent
// launch` does.
import { useCallback, useEffect, useMemo, useState, type FormEvent } from 'react';
import { keccak256, stringToHex } from 'viem';
import { Icon } from '../../components/icons';
import { PageHeader } from '../../components/PageHeader';
import { Badge, Card, Spinner } from '../../components/ui';
import { ApiError, datanetsApi, type DatanetSummary } from '../../lib/api';
import { useAuth } from '../../lib/auth';
import { AgentStakingAbi, approveOpen, requireContract, useChainWallet } from '../../lib/chain';
import { formatDuration, shortAddress } from '../../lib/format';
import { useNode } from '../../lib/node';
import { useNotify } from '../../lib/notify';
import { Link, useRouter } from '../../lib/router';
import { ActionStep, SignInNotice, useAction } from '../datanets/common';
import { parseOpen } from '../escrow/api';
import { openText } from '../market/api';

import {
  agentsApi,
  v1Models,
  type Agent,
  type AgentParameters,
  type AgentSpec,
  type AgentStep,
  type V1Model,
} from '../governance/api';

/** AgentStaking's name rule (src/market/agent-spec.ts). */
const AGENT_NAME = /^[a-z0-9](?:[a-z0-9-]{1,46})[a-z0-9]$/;
const MAX_STEPS = 4;
const MAX_ADAPTERS = 8;

export function AgentState({ agent }: { agent: Agent }) {
  const [tone, label] = agent.active
    ? (['ok', 'active'] as const)
    : agent.retired
      ? (['neutral', 'retired'] as const)
      : (['warn', 'below the minimum stake'] as const);
  return (
    <span
      data-testid="agent-state"
      data-state={agent.active ? 'active' : agent.retired ? 'retired' : 'inactive'}
    >
      <Badge tone={tone}>{label}</Badge>
    </span>
  );
}

/** A step as `tiny + model:1×0.6 + model:2×0.4 (RAG 1, 2)`. */
export function stepText(step: AgentStep): string {
  const adapters = step.adapters?.length
    ? ` + ${step.adapters.map((a) => `${a.id}×${a.weight}`).join(' + ')}`
    : '';
  const rag = step.rag ? ` (RAG over datanets ${step.rag.datanets.join(', ')})` : '';
  return `${step.model}${adapters}${rag}`;
}

interface StepForm {
  model: string;
  adapters: { id: string; weight: string }[];
  adding: string;
  datanets: number[];
  instruction: string;
  maxTokens: string;
}

const emptyStep = (model: string): StepForm => ({
  model,
  adapters: [],
  adding: '',
  datanets: [],
  instruction: '',
  maxTokens: '',
});

function invalid(message: string, field: string): ApiError {
  return new ApiError({ status: 0, code: 'VALIDATION_FAILED', message, details: { field } });
}

function buildSpec(input: {
  name: string;
  description: string;
  system: string;
  steps: StepForm[];
}): AgentSpec {
  const name = input.name.trim();
  if (!AGENT_NAME.test(name))
    throw invalid(
      'An agent name is 3 to 48 lower-case letters, digits and inner hyphens (e.g. "colour-helper").',
      'name',
    );
  const steps = input.steps.map((s, i): AgentStep => {
    if (!s.model) throw invalid(`Step ${i + 1}: pick a model.`, `steps[${i}].model`);
    const adapters = s.adapters.map((a) => {
      const weight = Number(a.weight);
      if (!a.weight.trim() || !Number.isFinite(weight) || Math.abs(weight) > 10)
        throw invalid(
          `Step ${i + 1}: the weight of ${a.id} must be a number from -10 to 10.`,
          `steps[${i}].adapters`,
        );
      return { id: a.id, weight };
    });
    const tokens = s.maxTokens.trim() === '' ? undefined : Number(s.maxTokens);
    if (tokens !== undefined && (!Number.isSafeInteger(tokens) || tokens < 1))
      throw invalid(
        `Step ${i + 1}: max tokens must be a positive integer.`,
        `steps[${i}].max_tokens`,
      );
    if (i > 0 && !s.instruction.trim())
      throw invalid(
        `Step ${i + 1} needs an instruction: the user turn that follows the previous step's answer.`,
        `steps[${i}].instruction`,
      );
    return {
      model: s.model,
      ...(adapters.length ? { adapters } : {}),
      ...(s.datanets.length ? { rag: { datanets: [...s.datanets].sort((a, b) => a - b) } } : {}),
      ...(i > 0 ? { instruction: s.instruction.trim() } : {}),
      ...(tokens !== undefined ? { max_tokens: tokens } : {}),
    };
  });
  return {
    name,
    ...(input.description.trim() ? { description: input.description.trim() } : {}),
    ...(input.system.trim() ? { system: input.system.trim() } : {}),
    steps,
  };
}

function StepEditor({
  index,
  step,
  models,
  adapters,
  datanets,
  onChange,
  onRemove,
  disabled,
}: {
  index: number;
  step: StepForm;
  models: V1Model[];
  adapters: V1Model[];
  datanets: DatanetSummary[];
  onChange: (patch: Partial<StepForm>) => void;
  onRemove?: () => void;
  disabled: boolean;
}) {
  const id = (s: string) => `agent-step-${index}-${s}`;
  return (
    <fieldset
      className="card"
      data-testid={`agent-step-${index}`}
      style={{ padding: 14, marginBottom: 12 }}
    >
      <legend className="strong">Step {index + 1}</legend>
      <div className="form-grid">
        <label className="field">
          <span className="field-label">Model</span>
          <select
            value={step.model}
            onChange={(e) => onChange({ model: e.target.value })}
            disabled={disabled}
            data-testid={id('model')}
          >
            <option value="">Pick a model…</option>
            {models.map((m) => (
              <option key={m.id} value={m.id}>
                {m.id} ({m.openledger.kind})
              </option>
            ))}
          </select>
          <span className="field-help">A base model, a published model or an adapter.</span>
        </label>
        <label className="field">
          <span className="field-label">Max tokens</span>
          <input
            type="text"
            inputMode="numeric"
            value={step.maxTokens}
            onChange={(e) => onChange({ maxTokens: e.target.value })}
            placeholder="the node's default"
            disabled={disabled}
            data-testid={id('max-tokens')}
          />
        </label>
        <div className="field field-wide">
          <span className="field-label">Adapters composed with the model, with weights</span>
          {step.adapters.map((a, j) => (
            <div className="toolbar" key={a.id} data-testid={id('adapter')} data-adapter={a.id}>
              <span className="mono small">{a.id}</span>
              <label className="small">
                weight{' '}
                <input
                  type="text"
                  inputMode="decimal"
                  size={5}
                  value={a.weight}
                  disabled={disabled}
                  onChange={(e) =>
                    onChange({
                      adapters: step.adapters.map((x, k) =>
                        k === j ? { ...x, weight: e.target.value } : x,
                      ),
                    })
                  }
                  data-testid={id('adapter-weight')}
                />
              </label>
              <button
                type="button"
                className="button button-ghost button-small"
                disabled={disabled}
                onClick={() => onChange({ adapters: step.adapters.filter((_, k) => k !== j) })}
              >
                Remove
              </button>
            </div>
          ))}
          <div className="toolbar">
            <select
              value={step.adding}
              onChange={(e) => onChange({ adding: e.target.value })}
              disabled={disabled || step.adapters.length >= MAX_ADAPTERS}
              aria-label="Adapter to add"
              data-testid={id('adapter-choice')}
            >
              <option value="">Add an adapter…</option>
              {adapters
                .filter((a) => !step.adapters.some((x) => x.id === a.id))
                .map((a) => (
                  <option key={a.id} value={a.id}>
                    {a.id}
                  </option>
                ))}
            </select>
            <button
              type="button"
              className="button button-secondary button-small"
              disabled={disabled || !step.adding}
              onClick={() =>
                onChange({
                  adapters: [...step.adapters, { id: step.adding, weight: '1' }],
                  adding: '',
                })
              }
              data-testid={id('adapter-add')}
            >
              Add
            </button>
          </div>
        </div>
        {datanets.length > 0 && (
          <div className="field field-wide">
            <span className="field-label">Ground on datanets (RAG, optional)</span>
            <div className="toolbar" style={{ flexWrap: 'wrap' }}>
              {datanets.map((d) => (
                <label className="checkbox small" key={d.id}>
                  <input
                    type="checkbox"
                    checked={step.datanets.includes(d.id)}
                    disabled={disabled}
                    onChange={(e) =>
                      onChange({
                        datanets: e.target.checked
                          ? [...step.datanets, d.id]
                          : step.datanets.filter((x) => x !== d.id),
                      })
                    }
                    data-testid={id(`rag-${d.id}`)}
                  />{' '}
                  #{d.id} {d.name}
                </label>
              ))}
            </div>
          </div>
        )}
        {index > 0 && (
          <label className="field field-wide">
            <span className="field-label">Instruction</span>
            <input
              type="text"
              value={step.instruction}
              onChange={(e) => onChange({ instruction: e.target.value })}
              placeholder="e.g. Rewrite this for a child."
              maxLength={4000}
              disabled={disabled}
              data-testid={id('instruction')}
            />
            <span className="field-help">
              The user turn after the previous step&apos;s answer: this step rewrites or checks it.
            </span>
          </label>
        )}
      </div>
      {onRemove && (
        <button
          type="button"
          className="button button-ghost button-small"
          disabled={disabled}
          onClick={onRemove}
          data-testid={id('remove')}
        >
          Remove step {index + 1}
        </button>
      )}
    </fieldset>
  );
}

function LaunchForm({ parameters }: { parameters: AgentParameters }) {
  const { status } = useNode();
  const { report } = useNotify();
  const { navigate } = useRouter();
  const wallet = useChainWallet();
  const { busy, step, run } = useAction();
  const [models, setModels] = useState<V1Model[] | null>(null);
  const [datanets, setDatanets] = useState<DatanetSummary[]>([]);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [system, setSystem] = useState('');
  const [stake, setStake] = useState('');
  const [steps, setSteps] = useState<StepForm[]>([emptyStep('')]);

  useEffect(() => {
    const ctrl = new AbortController();
    Promise.all([v1Models(ctrl.signal), datanetsApi.list({}, ctrl.signal)])
      .then(([m, d]) => {
        const callable = m.filter((x) => x.openledger.kind !== 'agent');
        setModels(callable);
        setDatanets(d.datanets.filter((x) => x.stats.latestVersion > 0));
        const firstBase = callable.find((x) => x.openledger.kind === 'base')?.id ?? '';
        setSteps((prev) =>
          prev.map((s, i) => (i === 0 && !s.model ? { ...s, model: firstBase } : s)),
        );
      })
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) report(err);
      });
    return () => ctrl.abort();
  }, [report]);

  const adapters = useMemo(
    () =>
      (models ?? []).filter(
        (m) => m.openledger.kind === 'published' || m.openledger.kind === 'adapter',
      ),
    [models],
  );

  const launch = async (e: FormEvent) => {
    e.preventDefault();
    const launched = await run(async (setStep) => {
      const spec = buildSpec({ name, description, system, steps });
      const wei = parseOpen(stake);
      setStep('Checking the specification…');
      const checked = await agentsApi.validate(spec);
      if (wei < BigInt(checked.parameters.minStake))
        throw invalid(
          `An agent needs at least ${openText(checked.parameters.minStake)} at stake.`,
          'stake',
        );
      const staking = checked.parameters.agentStaking;
      const w = await wallet();
      setStep('Approving OPEN…');
      await approveOpen(w, requireContract(status?.contracts.OpenToken, 'OpenToken'), staking, wei);
      setStep('Launching on-chain…');
      await w.send({
        address: staking,
        abi: AgentStakingAbi,
        functionName: 'launch',
        args: [checked.spec.name, `0x${checked.specHash}`, wei],
      });
      const id = await w.publicClient.readContract({
        address: staking,
        abi: AgentStakingAbi,
        functionName: 'agentOfName',
        args: [keccak256(stringToHex(checked.spec.name))],
      });
      setStep('Registering the agent with the node…');
      return agentsApi.register(Number(id), checked.spec);
    });
    if (launched) navigate(`/agents/${launched.name}`);
  };

  if (!models) return <Spinner label="Loading the models you can call…" />;

  return (
    <form onSubmit={(e) => void launch(e)} noValidate data-testid="agent-launch-form">
      <div className="form-grid">
        <label className="field">
          <span className="field-label">Name</span>
          <input
            type="text"
            value={name}
            onChange={(e) => setName(e.target.value)}
            placeholder="e.g. colour-helper"
            maxLength={48}
            disabled={busy}
            data-testid="agent-name"
          />
          <span className="field-help">
            Served as <code className="mono">agent:{name || '<name>'}</code>; lower-case letters,
            digits and hyphens, unique on-chain.
          </span>
        </label>
        <label className="field">
          <span className="field-label">Stake (OPEN)</span>
          <input
            type="text"
            inputMode="decimal"
            value={stake}
            onChange={(e) => setStake(e.target.value)}
            placeholder={`at least ${openText(parameters.minStake)}`}
            disabled={busy}
            data-testid="agent-stake"
          />
          <span className="field-help">
            Slashed for a proven failure; unbonding takes{' '}
            {formatDuration(parameters.unbondingSeconds)}.
          </span>
        </label>
        <label className="field field-wide">
          <span className="field-label">Description</span>
          <input
            type="text"
            value={description}
            onChange={(e) => setDescription(e.target.value)}
            maxLength={2000}
            disabled={busy}
            data-testid="agent-description"
          />
        </label>
        <label className="field field-wide">
          <span className="field-label">System prompt</span>
          <textarea
            rows={2}
            value={system}
            onChange={(e) => setSystem(e.target.value)}
            maxLength={8000}
            disabled={busy}
            data-testid="agent-system"
          />
          <span className="field-help">Given to every step.</span>
        </label>
      </div>
      {steps.map((s, i) => (
        <StepEditor
          key={i}
          index={i}
          step={s}
          models={models}
          adapters={adapters}
          datanets={datanets}
          disabled={busy}
          onChange={(patch) =>
            setSteps((prev) => prev.map((x, j) => (j === i ? { ...x, ...patch } : x)))
          }
          {...(i > 0 ? { onRemove: () => setSteps((prev) => prev.filter((_, j) => j !== i)) } : {})}
        />
      ))}
      <div className="form-actions toolbar">
        <button
          type="button"
          className="button button-secondary"
          disabled={busy || steps.length >= MAX_STEPS}
          onClick={() => setSteps((prev) => [...prev, emptyStep(prev[0]?.model ?? '')])}
          data-testid="agent-add-step"
        >
          Add a step
        </button>
        <button
          type="submit"
          className="button button-primary"
          disabled={busy}
          data-testid="agent-launch"
        >
          Stake &amp; launch
        </button>
        <ActionStep step={step} testId="agent-launch-step" />
      </div>
      <p className="muted small">
        Each step is one generation, paid as an ordinary call, so the models and the data behind
        them are paid through Proof of Attribution. Launching sends two transactions from your
        wallet: approving the stake, then AgentStaking.launch with the specification&apos;s sha256.
      </p>
    </form>
  );
}

export function AgentsPage() {
  const { session, checking } = useAuth();
  const { report } = useNotify();
  const [data, setData] = useState<{ agents: Agent[]; parameters: AgentParameters } | null>(null);

  const load = useCallback(
    (signal?: AbortSignal) =>
      agentsApi
        .list(signal)
        .then(setData)
        .catch((err: unknown) => {
          if (!signal?.aborted) report(err);
        }),
    [report],
  );
  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load]);

  return (
    <div className="page" data-testid="page-agents">
      <PageHeader title="Agents">
        An agent is a named composition — model calls in sequence, adapters with weights, datanets
        to ground on, a system prompt — served through the OpenAI API as the model{' '}
        <code className="mono">agent:&lt;name&gt;</code>. Launching one stakes OPEN in AgentStaking;
        a proven failure slashes it.
      </PageHeader>
      <Card title="Agents on this node" testId="agents-card">
        {data === null ? (
          <Spinner label="Loading agents…" />
        ) : data.agents.length === 0 ? (
          <div className="empty" data-testid="agents-empty">
            <Icon name="models" />
            <p className="muted">No agents yet.</p>
          </div>
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="agents-table">
              <thead>
                <tr>
                  <th className="num">ID</th>
                  <th>Agent</th>
                  <th>Steps</th>
                  <th className="num">Stake</th>
                  <th>State</th>
                  <th>Owner</th>
                </tr>
              </thead>
              <tbody>
                {data.agents.map((a) => (
                  <tr key={a.id} data-testid="agent-row" data-name={a.name}>
                    <td className="num">{a.id}</td>
                    <td className="cell-main">
                      <Link to={`/agents/${a.name}`} className="strong" data-testid="agent-link">
                        {a.model}
                      </Link>
                      {a.description && <span className="cell-sub">{a.description}</span>}
                    </td>
                    <td className="small">
                      {a.spec.steps.map((s, i) => (
                        <div key={i}>{stepText(s)}</div>
                      ))}
                    </td>
                    <td className="num" data-value={a.stake}>
                      {openText(a.stake)}
                    </td>
                    <td>
                      <AgentState agent={a} />
                    </td>
                    <td className="mono small" title={a.owner}>
                      {shortAddress(a.owner)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
      <Card title="Launch an agent" testId="agent-launch-card">
        {checking || !data ? (
          <Spinner label="Loading…" />
        ) : !session ? (
          <SignInNotice title="Sign in to launch an agent">
            Launching stakes OPEN from your wallet, and picking models needs the node&apos;s model
            list, which is for signed-in callers.
          </SignInNotice>
        ) : (
          <LaunchForm key={session.address} parameters={data.parameters} />
        )}
      </Card>
    </div>
  );
}
