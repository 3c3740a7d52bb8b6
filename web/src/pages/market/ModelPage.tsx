// /market/models/{id} — a published model's market page: its statistics, its lineage (datanets →
// versions → contributors → training manifest), its on-chain ModelRegistry record
// (GET /api/market/models/{id}), and staking on it: who is staked (GET /api/staking/models/{id})
// and the signed-in wallet's stake, unstake and withdraw (ModelStaking, sent by the wallet).
import { useCallback, useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { PageHeader } from '../../components/PageHeader';
import { Badge, Card, Spinner } from '../../components/ui';
import { useAuth } from '../../lib/auth';
import {
  approveOpen,
  ModelStakingAbi,
  publicClientFor,
  requireContract,
  useChainWallet,
} from '../../lib/chain';
import { formatDate, formatDuration } from '../../lib/format';
import { useNode } from '../../lib/node';
import { useNotify } from '../../lib/notify';
import { Link } from '../../lib/router';
import { ActionStep, ContributorLink, Hash, useAction } from '../datanets/common';
import { parseOpen } from '../escrow/api';
import { governanceApi, type ProtocolParameters } from '../governance/api';
import {
  evaluationText,
  marketApi,
  openText,
  splitText,
  type MarketModelPage,
  type ModelStakes,
} from './api';

function Stat({
  label,
  children,
  testId,
}: {
  label: string;
  children: ReactNode;
  testId?: string;
}) {
  return (
    <div>
      <dt>{label}</dt>
      <dd data-testid={testId}>{children}</dd>
    </div>
  );
}

const share = (s: number | null) => (s === null ? '—' : `${(s * 100).toFixed(1)}%`);

function Statistics({ model }: { model: MarketModelPage }) {
  const c = model.attribution.channels;
  return (
    <Card title="Statistics" testId="model-stats">
      <dl className="stats">
        <Stat label="Input / 1k tokens" testId="model-price-in">
          {openText(model.price.pricePer1kInput)}
        </Stat>
        <Stat label="Output / 1k tokens" testId="model-price-out">
          {openText(model.price.pricePer1kOutput)}
        </Stat>
        <Stat label="Calls (paid)" testId="model-calls">
          {model.usage.calls} ({model.usage.paidCalls})
        </Stat>
        <Stat label="Fees charged" testId="model-fees">
          {openText(model.revenue.fees)}
        </Stat>
        <Stat label="Held-out evaluation" testId="model-evaluation">
          {evaluationText(model)}
        </Stat>
      </dl>
      <div className="form-grid">
        <table className="table table-compact" data-testid="model-revenue">
          <thead>
            <tr>
              <th>Revenue paid to</th>
              <th className="num">OPEN</th>
            </tr>
          </thead>
          <tbody>
            {(['owner', 'stakers', 'contributors', 'platform'] as const).map((role) => (
              <tr key={role}>
                <td>{role}</td>
                <td className="num">{openText(model.revenue[role])}</td>
              </tr>
            ))}
            <tr>
              <td>collected on-chain</td>
              <td className="num">{openText(model.revenue.collected)}</td>
            </tr>
          </tbody>
        </table>
        <table className="table table-compact" data-testid="model-attribution">
          <thead>
            <tr>
              <th>Attribution channel</th>
              <th className="num">Receipts</th>
              <th className="num">Share</th>
            </tr>
          </thead>
          <tbody>
            {(['span', 'influence', 'rag'] as const).map((ch) => (
              <tr key={ch}>
                <td>{ch}</td>
                <td className="num">{c[ch].receipts}</td>
                <td className="num">{share(c[ch].share)}</td>
              </tr>
            ))}
            <tr>
              <td>
                {model.attribution.receipts} attributed receipts paid{' '}
                {model.attribution.contributors} contributors
              </td>
              <td />
              <td />
            </tr>
          </tbody>
        </table>
      </div>
      <p className="muted small">
        Split of each paid call (owner / stakers / contributors): {splitText(model.split)}. Last
        call {formatDate(model.usage.lastCallAt)}; {model.usage.promptTokens} prompt and{' '}
        {model.usage.completionTokens} completion tokens served.
      </p>
    </Card>
  );
}

function Lineage({ model }: { model: MarketModelPage }) {
  const { datanets, manifest, manifestError, training } = model.lineage;
  return (
    <Card title="Lineage" testId="model-lineage">
      <p className="muted small">
        Datanets → committed versions → contributors → the training manifest whose hash the
        ModelRegistry records.
      </p>
      {datanets.map((d) => (
        <section
          key={`${d.id}@${d.version}`}
          data-testid="lineage-datanet"
          data-datanet={d.id}
          style={{ marginBottom: 16 }}
        >
          <h3>
            <Link to={`/datanets/${d.id}`}>{d.name ?? `Datanet #${d.id}`}</Link> · version{' '}
            {d.version}
          </h3>
          {d.committed ? (
            <dl className="kv small">
              <dt>Root</dt>
              <dd>
                <Hash value={d.committed.root} />
              </dd>
              <dt>Rows</dt>
              <dd>
                {d.committed.rowCount} ({d.committed.addedRows} added by this version)
              </dd>
              <dt>Committed</dt>
              <dd>
                {formatDate(d.committed.committedAt)} by <Hash value={d.committed.committedBy} /> in{' '}
                <Hash value={d.committed.txHash} />
              </dd>
            </dl>
          ) : (
            <p className="muted small">This node has not mirrored this version&apos;s commit.</p>
          )}
          {d.contributors.length > 0 && (
            <table className="table table-compact">
              <thead>
                <tr>
                  <th>Contributor</th>
                  <th className="num">Rows trained on</th>
                  <th className="num">Tokens</th>
                  <th className="num">Held out</th>
                </tr>
              </thead>
              <tbody>
                {d.contributors.map((c) => (
                  <tr key={c.address} data-testid="lineage-contributor">
                    <td>
                      <ContributorLink address={c.address} />
                    </td>
                    <td className="num">{c.rows}</td>
                    <td className="num">{c.tokens}</td>
                    <td className="num">{c.heldOutRows}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      ))}
      <h3>Training manifest</h3>
      {manifest ? (
        <dl className="kv small" data-testid="lineage-manifest">
          <dt>Hash</dt>
          <dd>
            <Hash value={manifest.hash} copy />
          </dd>
          <dt>Training run</dt>
          <dd className="mono">{manifest.jobId}</dd>
          <dt>Base model</dt>
          <dd>
            {manifest.baseModel.name} <Hash value={manifest.baseModel.sha256} />
          </dd>
          <dt>Template</dt>
          <dd>{manifest.template}</dd>
          <dt>Rows</dt>
          <dd>
            {manifest.totals.trainRows} trained, {manifest.totals.evalRows} held out (
            {manifest.split.method}, {manifest.split.evalPercent}%), {manifest.totals.tokens} tokens
          </dd>
          <dt>Hyperparameters</dt>
          <dd>
            <details>
              <summary>{Object.keys(manifest.hyperparameters).length} values</summary>
              <pre className="mono small">{JSON.stringify(manifest.hyperparameters, null, 2)}</pre>
            </details>
          </dd>
        </dl>
      ) : (
        <p className="muted small" data-testid="lineage-manifest-missing">
          {manifestError ?? 'No manifest on this node.'}
        </p>
      )}
      <p className="muted small">
        Training run {training.jobId.slice(0, 8)}: {training.status ?? 'unknown'}
        {training.trainLoss !== null && `, train loss ${training.trainLoss.toFixed(3)}`}
        {training.evalLoss !== null && `, held-out loss ${training.evalLoss.toFixed(3)}`}
        {training.seconds !== null && `, ${training.seconds.toFixed(1)} s`}.
      </p>
    </Card>
  );
}

function Match({ ok }: { ok: boolean }) {
  return <Badge tone={ok ? 'ok' : 'fail'}>{ok ? 'matches' : 'differs'}</Badge>;
}

function OnChain({ model }: { model: MarketModelPage }) {
  const r = model.onChain;
  return (
    <Card title="On-chain record" testId="model-onchain">
      {!r ? (
        <p className="muted small" data-testid="onchain-error">
          The ModelRegistry could not be read: {model.onChainError ?? 'unknown error'}.
        </p>
      ) : (
        <dl className="kv small">
          <dt>Registry</dt>
          <dd>
            <Hash value={r.registry} /> · Model ID {r.modelId}
          </dd>
          <dt>Owner</dt>
          <dd>
            <code className="mono" data-testid="onchain-owner" data-value={r.owner}>
              {r.owner}
            </code>
          </dd>
          <dt>Publisher</dt>
          <dd>
            <Hash value={r.publisher} />
          </dd>
          <dt>Adapter</dt>
          <dd>
            <Hash value={r.adapterHash} /> <Match ok={r.matches.adapterHash} />
          </dd>
          <dt>Manifest</dt>
          <dd>
            <Hash value={r.manifestHash} /> <Match ok={r.matches.manifestHash} />
          </dd>
          <dt>Metadata</dt>
          <dd>
            <Hash value={r.metadataHash} /> <Match ok={r.matches.metadataHash} />
          </dd>
          <dt>Base model</dt>
          <dd>
            <Hash value={r.baseModel} />
          </dd>
          <dt>Datanets</dt>
          <dd>
            {r.datanets.map((d) => `#${d.id} v${d.version}`).join(', ')}{' '}
            <Match ok={r.matches.datanets} />
          </dd>
          <dt>Prices / 1k</dt>
          <dd>
            {openText(r.pricePer1kInput)} in · {openText(r.pricePer1kOutput)} out
          </dd>
          <dt>Split</dt>
          <dd>{splitText(r.split)}</dd>
          <dt>Channels</dt>
          <dd>
            span {r.channelWeights.span / 100}% · influence {r.channelWeights.influence / 100}% ·
            RAG {r.channelWeights.rag / 100}%
          </dd>
          <dt>Status</dt>
          <dd>
            {r.active ? 'active' : 'deactivated'} · published {formatDate(r.publishedAt)}
          </dd>
          <dt>Publish tx</dt>
          <dd>{r.publishTx ? <Hash value={r.publishTx} /> : '—'}</dd>
        </dl>
      )}
    </Card>
  );
}

interface Mine {
  unbonding: bigint;
  releaseAt: number;
  now: number;
}

function Staking({ modelId }: { modelId: number }) {
  const { session } = useAuth();
  const { status } = useNode();
  const { report } = useNotify();
  const wallet = useChainWallet();
  const { busy, step, run } = useAction();
  const [stakes, setStakes] = useState<ModelStakes | null>(null);
  const [params, setParams] = useState<ProtocolParameters['modelStaking'] | null>(null);
  const [mine, setMine] = useState<Mine | null>(null);
  const [amount, setAmount] = useState('');
  const [done, setDone] = useState<string | null>(null);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      try {
        setStakes(await marketApi.stakes(modelId, signal));
        governanceApi
          .overview(signal)
          .then((o) => setParams(o.parameters.modelStaking))
          .catch(() => {});
        if (session && status?.contracts.ModelStaking) {
          const client = publicClientFor(status);
          const [[amount, releaseAt], block] = await Promise.all([
            client.readContract({
              address: status.contracts.ModelStaking,
              abi: ModelStakingAbi,
              functionName: 'unbondingOf',
              args: [BigInt(modelId), session.address],
            }),
            client.getBlock({ blockTag: 'latest' }),
          ]);
          setMine({
            unbonding: amount,
            releaseAt: Number(releaseAt),
            now: Number(block.timestamp),
          });
        }
      } catch (err) {
        if (!signal?.aborted) report(err);
      }
    },
    [modelId, session, status, report],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load]);

  const myStake =
    stakes && session
      ? (stakes.stakers.find((s) => s.address.toLowerCase() === session.address.toLowerCase())
          ?.stake ?? '0')
      : '0';

  const act = async (kind: 'stake' | 'unstake' | 'withdraw', e?: FormEvent) => {
    e?.preventDefault();
    setDone(null);
    const result = await run(async (setStep) => {
      const staking = requireContract(status?.contracts.ModelStaking, 'ModelStaking');
      if (kind === 'withdraw') {
        setStep('Withdrawing…');
        const w = await wallet();
        await w.send({
          address: staking,
          abi: ModelStakingAbi,
          functionName: 'withdraw',
          args: [BigInt(modelId)],
        });
        return 'Withdrew your unstaked OPEN.';
      }
      const wei = parseOpen(amount);
      const w = await wallet();
      if (kind === 'stake') {
        setStep('Approving OPEN…');
        await approveOpen(
          w,
          requireContract(status?.contracts.OpenToken, 'OpenToken'),
          staking,
          wei,
        );
        setStep('Staking…');
        await w.send({
          address: staking,
          abi: ModelStakingAbi,
          functionName: 'stake',
          args: [BigInt(modelId), wei],
        });
        return `Staked ${amount} OPEN on model ${modelId}.`;
      }
      setStep('Unstaking…');
      await w.send({
        address: staking,
        abi: ModelStakingAbi,
        functionName: 'requestUnstake',
        args: [BigInt(modelId), wei],
      });
      return `Unstaking ${amount} OPEN: withdraw it after the unbonding period.`;
    });
    await load();
    if (result) {
      setDone(result);
      setAmount('');
    }
  };

  const waiting = mine && mine.unbonding > 0n ? mine.releaseAt - mine.now : 0;

  return (
    <Card title="Staking" testId="model-staking">
      <p className="muted small">
        Stakers share the stakers&apos; part of every paid call to this model, in proportion to
        their stake.{' '}
        {params &&
          `Minimum stake ${openText(params.minStake)}; unstaked OPEN unbonds for ${formatDuration(params.unbondingSeconds)}; at most ${params.maxStakers} stakers.`}
      </p>
      {stakes === null ? (
        <Spinner label="Reading the stakes…" />
      ) : (
        <>
          <p data-testid="staking-total" data-value={stakes.total}>
            <strong>{openText(stakes.total)}</strong> staked by {stakes.stakers.length}{' '}
            {stakes.stakers.length === 1 ? 'account' : 'accounts'}
          </p>
          {stakes.stakers.length > 0 && (
            <table className="table table-compact" data-testid="stakers-table">
              <thead>
                <tr>
                  <th>Staker</th>
                  <th className="num">Stake</th>
                </tr>
              </thead>
              <tbody>
                {stakes.stakers.map((s) => (
                  <tr key={s.address} data-testid="staker-row" data-address={s.address}>
                    <td className="mono small">{s.address}</td>
                    <td className="num" data-value={s.stake}>
                      {openText(s.stake)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
      {session ? (
        <>
          <p className="small" data-testid="staking-mine" data-value={myStake}>
            You stake {openText(myStake)}
            {mine && mine.unbonding > 0n && (
              <>
                ; {openText(mine.unbonding.toString())} unbonding,{' '}
                {waiting > 0
                  ? `withdrawable in ${formatDuration(waiting)} (chain time)`
                  : 'withdrawable now'}
              </>
            )}
            .
          </p>
          <form className="toolbar" onSubmit={(e) => void act('stake', e)} noValidate>
            <input
              type="text"
              inputMode="decimal"
              value={amount}
              onChange={(e) => setAmount(e.target.value)}
              placeholder="OPEN"
              aria-label="OPEN to stake or unstake"
              disabled={busy}
              data-testid="stake-amount"
            />
            <button
              type="submit"
              className="button button-primary"
              disabled={busy || !amount.trim()}
              data-testid="stake-submit"
            >
              Stake
            </button>
            <button
              type="button"
              className="button button-secondary"
              disabled={busy || !amount.trim()}
              onClick={() => void act('unstake')}
              data-testid="unstake-submit"
            >
              Unstake
            </button>
            <button
              type="button"
              className="button button-secondary"
              disabled={busy || !mine || mine.unbonding === 0n}
              onClick={() => void act('withdraw')}
              data-testid="stake-withdraw"
            >
              Withdraw
            </button>
            <ActionStep step={step} testId="staking-step" />
          </form>
          {done && (
            <p className="success small" role="status" data-testid="staking-done">
              {done}
            </p>
          )}
        </>
      ) : (
        <p className="muted small">Sign in to stake on this model.</p>
      )}
    </Card>
  );
}

export function ModelMarketPage({ id }: { id: number }) {
  const { report } = useNotify();
  const [model, setModel] = useState<MarketModelPage | null>(null);
  const [missing, setMissing] = useState(false);

  useEffect(() => {
    const ctrl = new AbortController();
    marketApi
      .model(id, ctrl.signal)
      .then(setModel)
      .catch((err: unknown) => {
        if (ctrl.signal.aborted) return;
        if ((err as { status?: number }).status === 404) setMissing(true);
        report(err);
      });
    return () => ctrl.abort();
  }, [id, report]);

  return (
    <div className="page" data-testid="page-market-model">
      <Link to="/market" className="back-link">
        ← Model market
      </Link>
      {model ? (
        <>
          <PageHeader
            title={model.name}
            actions={
              <Link
                to={`/playground?base=model:${model.id}`}
                className="button button-secondary"
                data-testid="model-try"
              >
                Try in the Playground
              </Link>
            }
          >
            model:{model.id} on {model.baseModel.name}
            {model.description ? ` — ${model.description}` : ''}
            {!model.active && ' (deactivated)'}
          </PageHeader>
          <Statistics model={model} />
          <Staking modelId={model.id} />
          <Lineage model={model} />
          <OnChain model={model} />
        </>
      ) : missing ? (
        <PageHeader title={`Model ${id}`}>No published model has this id.</PageHeader>
      ) : (
        <Spinner label="Loading the model…" />
      )}
    </div>
  );
}
