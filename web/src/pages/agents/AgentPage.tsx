// /agents/{name} — one agent (GET /api/agents/{name}): its steps, stake and on-chain state, with
// the wallet's actions on AgentStaking: add stake (anyone may back an agent), and for its owner
// unbond and withdraw once the unbonding period has passed.
import { useCallback, useEffect, useState } from 'react';
import { PageHeader } from '../../components/PageHeader';
import { Card, Spinner } from '../../components/ui';
import { useAuth } from '../../lib/auth';
import {
  AgentStakingAbi,
  approveOpen,
  chainNow,
  requireContract,
  useChainWallet,
} from '../../lib/chain';
import { formatDate, formatDuration } from '../../lib/format';
import { useNode } from '../../lib/node';
import { useNotify } from '../../lib/notify';
import { Link } from '../../lib/router';
import { ActionStep, Hash, useAction } from '../datanets/common';
import { parseOpen } from '../escrow/api';
import { openText } from '../market/api';

import { agentsApi, type Agent } from '../governance/api';
import { AgentState, stepText } from './AgentsPage';

export function AgentPage({ name }: { name: string }) {
  const { session } = useAuth();
  const { status } = useNode();
  const { report } = useNotify();
  const wallet = useChainWallet();
  const { busy, step, run } = useAction();
  const [agent, setAgent] = useState<Agent | null>(null);
  const [now, setNow] = useState<number | null>(null);
  const [amount, setAmount] = useState('');
  const [done, setDone] = useState<string | null>(null);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        setAgent(await agentsApi.get(name, signal));
        if (status) setNow(await chainNow(status));
      } catch (err) {
        if (!signal?.aborted) report(err);
      }
    },
    [name, status, report],
  );
  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load]);

  const owner = agent && session && agent.owner.toLowerCase() === session.address.toLowerCase();

  const act = async (kind: 'add' | 'unbond' | 'withdraw') => {
    if (!agent) return;
    setDone(null);
    const result = await run(async (setStep) => {
      const staking = requireContract(status?.contracts.AgentStaking, 'AgentStaking');
      const id = BigInt(agent.id);
      if (kind === 'withdraw') {
        const w = await wallet();
        setStep('Withdrawing…');
        await w.send({
          address: staking,
          abi: AgentStakingAbi,
          functionName: 'withdraw',
          args: [id],
        });
        return 'Withdrew the unbonded stake.';
      }
      const wei = parseOpen(amount);
      const w = await wallet();
      if (kind === 'add') {
        setStep('Approving OPEN…');
        await approveOpen(
          w,
          requireContract(status?.contracts.OpenToken, 'OpenToken'),
          staking,
          wei,
        );
        setStep('Adding stake…');
        await w.send({
          address: staking,
          abi: AgentStakingAbi,
          functionName: 'addStake',
          args: [id, wei],
        });
        return `Added ${amount} OPEN to the stake.`;
      }
      setStep('Unbonding…');
      await w.send({
        address: staking,
        abi: AgentStakingAbi,
        functionName: 'requestUnbond',
        args: [id, wei],
      });
      return `Unbonding ${amount} OPEN: withdraw it after the unbonding period.`;
    });
    await load();
    if (result) {
      setDone(result);
      setAmount('');
    }
  };

  const unbonding = agent ? BigInt(agent.unbonding) : 0n;
  const waiting = agent?.releaseAt && now !== null ? agent.releaseAt - now : 0;

  return (
    <div className="page" data-testid="page-agent">
      <Link to="/agents" className="back-link">
        ← Agents
      </Link>
      {!agent ? (
        <Spinner label="Loading the agent…" />
      ) : (
        <>
          <PageHeader
            title={agent.model}
            actions={
              <Link
                to={`/playground?model=${encodeURIComponent(agent.model)}`}
                className="button button-secondary"
                data-testid="agent-try"
              >
                Try in the Playground
              </Link>
            }
          >
            {agent.description ?? 'An agent served by this node.'}
          </PageHeader>
          <Card title="State" testId="agent-summary">
            <dl className="stats">
              <div>
                <dt>State</dt>
                <dd>
                  <AgentState agent={agent} />
                </dd>
              </div>
              <div>
                <dt>Stake</dt>
                <dd data-testid="agent-stake-value" data-value={agent.stake}>
                  {openText(agent.stake)}
                </dd>
              </div>
              <div>
                <dt>Minimum stake</dt>
                <dd>{openText(agent.minStake)}</dd>
              </div>
              <div>
                <dt>Unbonding</dt>
                <dd data-testid="agent-unbonding" data-value={agent.unbonding}>
                  {openText(agent.unbonding)}
                </dd>
              </div>
              <div>
                <dt>Open challenges</dt>
                <dd>{agent.openChallenges}</dd>
              </div>
            </dl>
            <dl className="kv small">
              <dt>Agent ID</dt>
              <dd>{agent.id}</dd>
              <dt>Owner</dt>
              <dd>
                <code className="mono" data-testid="agent-owner">
                  {agent.owner}
                </code>
              </dd>
              <dt>Launched</dt>
              <dd>{formatDate(new Date(agent.launchedAt * 1000).toISOString())} (chain time)</dd>
              <dt>Spec sha256</dt>
              <dd>
                <Hash value={agent.specHash} copy />{' '}
                {!agent.specCurrent && (
                  <span className="fail-text">the chain now names another specification</span>
                )}
              </dd>
              {unbonding > 0n && agent.releaseAt !== null && (
                <>
                  <dt>Withdrawable</dt>
                  <dd data-testid="agent-release">
                    {waiting > 0 ? `in ${formatDuration(waiting)}` : 'now'} (from{' '}
                    {formatDate(new Date(agent.releaseAt * 1000).toISOString())}, chain time)
                  </dd>
                </>
              )}
            </dl>
          </Card>
          <Card title="Specification" testId="agent-spec">
            {agent.spec.system && (
              <p className="small">
                <span className="muted">System prompt:</span> {agent.spec.system}
              </p>
            )}
            <ol data-testid="agent-steps">
              {agent.spec.steps.map((s, i) => (
                <li key={i} data-testid="agent-step" className="small">
                  <span className="mono">{stepText(s)}</span>
                  {s.instruction && <> — &ldquo;{s.instruction}&rdquo;</>}
                  {s.max_tokens !== undefined && (
                    <span className="muted"> · at most {s.max_tokens} tokens</span>
                  )}
                </li>
              ))}
            </ol>
          </Card>
          <Card title="Stake" testId="agent-actions">
            {!session ? (
              <p className="muted small">Sign in to back this agent with OPEN.</p>
            ) : (
              <>
                <div className="toolbar">
                  <input
                    type="text"
                    inputMode="decimal"
                    value={amount}
                    onChange={(e) => setAmount(e.target.value)}
                    placeholder="OPEN"
                    aria-label="OPEN"
                    disabled={busy}
                    data-testid="agent-amount"
                  />
                  <button
                    type="button"
                    className="button button-primary"
                    disabled={busy || !amount.trim() || agent.retired}
                    onClick={() => void act('add')}
                    data-testid="agent-add-stake"
                  >
                    Add stake
                  </button>
                  {owner && (
                    <>
                      <button
                        type="button"
                        className="button button-secondary"
                        disabled={busy || !amount.trim()}
                        onClick={() => void act('unbond')}
                        data-testid="agent-unbond"
                      >
                        Unbond
                      </button>
                      <button
                        type="button"
                        className="button button-secondary"
                        disabled={busy || unbonding === 0n}
                        onClick={() => void act('withdraw')}
                        data-testid="agent-withdraw"
                      >
                        Withdraw
                      </button>
                    </>
                  )}
                  <ActionStep step={step} testId="agent-step-status" />
                </div>
                {done && (
                  <p className="success small" role="status" data-testid="agent-done">
                    {done}
                  </p>
                )}
                <p className="muted small">
                  Anyone may add stake; only the owner takes stake out. What stays staked must be at
                  least the minimum, or nothing: unbonding all of it retires the agent.
                </p>
              </>
            )}
          </Card>
        </>
      )}
    </div>
  );
}
