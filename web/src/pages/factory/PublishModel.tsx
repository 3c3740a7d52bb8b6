// The "Publish" step of a succeeded training run: the owner prices the adapter per 1,000 input
// and output tokens, splits its revenue, signs the EIP-712 Publish message with the connected
// wallet, and the node registers it in the ModelRegistry (an ERC-721 Model ID) and lists it
// under /models, where the serving layer finds it.
import { useEffect, useState, type FormEvent } from 'react';
import { parseUnits } from 'viem';
import { Card } from '../../components/ui';
import { ApiError, type TrainJob } from '../../lib/api';
import { formatToken } from '../../lib/format';
import { Link } from '../../lib/router';
import { ActionStep, Hash, useAction } from '../datanets/common';
import { useActingWallet } from '../datanets/signing';
import {
  modelsApi,
  modelTypedData,
  publishFieldsFromPlan,
  type PublishedModel,
  type PublishInput,
} from '../models/api';

/** Signatures stay valid for an hour, as with the CLI. */
const DEADLINE_SECONDS = 3600;
/** The node's default split (owner, stakers, contributors), in percent. */
const DEFAULT_SPLIT = { owner: '60', stakers: '10', contributors: '30' };

function invalid(message: string, hint?: string): ApiError {
  return new ApiError({ status: 0, code: 'VALIDATION_FAILED', message, hint });
}

function openToWei(label: string, value: string): string {
  if (!/^\d+(\.\d{1,18})?$/.test(value.trim()))
    throw invalid(`${label}: enter an amount of OPEN per 1,000 tokens, e.g. 0.01.`);
  return parseUnits(value.trim(), 18).toString();
}

function percentToBps(label: string, value: string): number {
  const n = Number(value);
  const bps = Math.round(n * 100);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || Math.abs(bps - n * 100) > 1e-6)
    throw invalid(`${label} share: enter a percentage with at most two decimals.`);
  return bps;
}

function Published({ model }: { model: PublishedModel }) {
  return (
    <div data-testid="publish-done" data-model-id={model.id}>
      <p className="result-sentence">
        Published as <Link to="/models">model #{model.id}</Link>{' '}
        <strong data-testid="publish-model-name">{model.name}</strong>
        {model.created === false ? ' (this run was already published).' : '.'}
      </p>
      <dl className="kv">
        <dt>Model ID</dt>
        <dd data-testid="publish-model-id">{model.id}</dd>
        <dt>Price</dt>
        <dd data-testid="publish-price">
          {formatToken(model.pricePer1kInput)} OPEN per 1k input tokens,{' '}
          {formatToken(model.pricePer1kOutput)} OPEN per 1k output tokens
        </dd>
        <dt>Revenue split</dt>
        <dd>
          owner {model.split.owner / 100}%, stakers {model.split.stakers / 100}%, contributors{' '}
          {model.split.contributors / 100}% (after the platform fee)
        </dd>
        <dt>Adapter</dt>
        <dd>
          <Hash value={model.adapterHash} copy head={14} tail={10} />
        </dd>
        <dt>Transaction</dt>
        <dd>
          <Hash value={model.txHash} testId="publish-tx" copy head={14} tail={10} />
        </dd>
      </dl>
    </div>
  );
}

export function PublishModel({ job }: { job: TrainJob }) {
  const wallet = useActingWallet();
  const { busy, step, run } = useAction();
  const [model, setModel] = useState<PublishedModel | null>(null);
  const [checked, setChecked] = useState(false);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [priceIn, setPriceIn] = useState('0.01');
  const [priceOut, setPriceOut] = useState('0.02');
  const [split, setSplit] = useState(DEFAULT_SPLIT);

  // Whether this run is published already (the owner's models, deactivated ones included).
  useEffect(() => {
    const ctrl = new AbortController();
    modelsApi
      .list({ owner: job.owner, all: true }, ctrl.signal)
      .then(({ models }) => setModel(models.find((m) => m.jobId === job.id) ?? null))
      .catch(() => {
        /* the form stays; publishing answers the existing model anyway */
      })
      .finally(() => {
        if (!ctrl.signal.aborted) setChecked(true);
      });
    return () => ctrl.abort();
  }, [job.id, job.owner]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const published = await run(async (setStep) => {
      const owner = wallet.address!;
      const input: PublishInput = {
        jobId: job.id,
        ...(name.trim() ? { name: name.trim() } : {}),
        ...(description.trim() ? { description: description.trim() } : {}),
        pricePer1kInput: openToWei('Input price', priceIn),
        pricePer1kOutput: openToWei('Output price', priceOut),
        split: {
          owner: percentToBps('Owner', split.owner),
          stakers: percentToBps('Stakers', split.stakers),
          contributors: percentToBps('Contributors', split.contributors),
        },
      };
      const total = input.split!.owner + input.split!.stakers + input.split!.contributors;
      if (total !== 10_000)
        throw invalid(
          `The shares add up to ${total / 100}%, not 100%.`,
          'Owner, stakers and contributors divide what is left after the platform fee.',
        );
      setStep('Preparing the model record…');
      const plan = await modelsApi.plan(input);
      if (plan.existing) return { ...plan.existing, created: false };
      const ctx = {
        chainId: plan.signing.chainId,
        registry: plan.signing.registry,
        nonce: BigInt(plan.signing.nonce),
        deadline: BigInt(Math.floor(Date.now() / 1000) + DEADLINE_SECONDS),
      };
      setStep('Waiting for the signature…');
      const signature = await wallet.sign(
        modelTypedData.publish(ctx, { ...publishFieldsFromPlan(plan.publish), owner }),
      );
      setStep('Registering the model on-chain…');
      return modelsApi.publish(input, { signature, deadline: ctx.deadline.toString() });
    });
    if (published) setModel(published);
  };

  const mine = wallet.address?.toLowerCase() === job.owner.toLowerCase();
  return (
    <Card title="Publish" testId="job-publish">
      {model ? (
        <Published model={model} />
      ) : !checked ? null : !mine ? (
        <p className="muted">Only the wallet that ran this training may publish it.</p>
      ) : (
        <form className="form" onSubmit={submit} noValidate data-testid="publish-form">
          <p className="muted small">
            Register this adapter on-chain as a model: an ERC-721 Model ID recording the base model,
            the adapter&apos;s hash, the datanet versions and the training manifest, with your
            prices and revenue split. It is then listed for serving.
          </p>
          <div className="form-grid">
            <label className="field field-wide">
              <span className="field-label">Name</span>
              <input
                type="text"
                value={name}
                onChange={(e) => setName(e.target.value)}
                maxLength={80}
                placeholder={`${job.params.baseModel} LoRA ${job.id.slice(0, 8)}`}
                data-testid="publish-name"
              />
            </label>
            <label className="field field-wide">
              <span className="field-label">Description</span>
              <textarea
                value={description}
                onChange={(e) => setDescription(e.target.value)}
                rows={3}
                maxLength={5000}
                placeholder="What the model is good at"
                data-testid="publish-description"
              />
            </label>
            <label className="field">
              <span className="field-label">Price per 1k input tokens (OPEN)</span>
              <input
                type="text"
                inputMode="decimal"
                value={priceIn}
                onChange={(e) => setPriceIn(e.target.value)}
                data-testid="publish-price-in"
              />
            </label>
            <label className="field">
              <span className="field-label">Price per 1k output tokens (OPEN)</span>
              <input
                type="text"
                inputMode="decimal"
                value={priceOut}
                onChange={(e) => setPriceOut(e.target.value)}
                data-testid="publish-price-out"
              />
            </label>
            {(['owner', 'stakers', 'contributors'] as const).map((part) => (
              <label className="field" key={part}>
                <span className="field-label">
                  {part === 'owner' ? 'Your' : part === 'stakers' ? 'Stakers’' : 'Contributors’'}{' '}
                  share (%)
                </span>
                <input
                  type="number"
                  min={0}
                  max={100}
                  step="0.01"
                  value={split[part]}
                  onChange={(e) => setSplit((s) => ({ ...s, [part]: e.target.value }))}
                  data-testid={`publish-split-${part}`}
                />
              </label>
            ))}
          </div>
          <p className="field-help">
            The shares divide each call&apos;s revenue after the protocol&apos;s platform fee and
            must add up to 100%. Contributors are paid by Proof of Attribution.
          </p>
          <div className="form-actions">
            <button
              type="submit"
              className="button button-primary"
              disabled={busy}
              data-testid="publish-submit"
            >
              {busy ? 'Publishing…' : 'Sign & publish'}
            </button>
            <ActionStep step={step} testId="publish-step" />
          </div>
        </form>
      )}
    </Card>
  );
}
