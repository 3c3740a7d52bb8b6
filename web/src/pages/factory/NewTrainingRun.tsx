// /factory/new: a no-code wizard to fine-tune a LoRA adapter — base model, datanets, chat
// template (with a live, token-level preview of the loss mask), hyperparameters, review & launch.
import { useCallback, useEffect, useMemo, useState, type ReactNode } from 'react';
import { PageHeader } from '../../components/PageHeader';
import { Card, Spinner } from '../../components/ui';
import {
  LORA_TARGETS,
  TEMPLATES,
  datanetsApi,
  factoryApi,
  firstExportedRow,
  type BaseModel,
  type Hyperparameters,
  type LoraTarget,
  type TemplateName,
  type TemplatePreview,
  type TemplateRow,
} from '../../lib/api';
import { useAuth } from '../../lib/auth';
import { useNotify } from '../../lib/notify';
import { Link, useRouter } from '../../lib/router';
import { ActionStep, formatBytes, SignInNotice, useAction } from '../datanets/common';
import { DatanetPicker, unavailableReason, type DatanetOption } from './DatanetPicker';
import { formatInt, TEMPLATE_INFO } from './common';
import { TemplatePreviewView } from './TemplatePreview';
import { TrainingEstimate } from './TrainingEstimate';

type StepId = 'model' | 'datanets' | 'template' | 'hyperparameters' | 'review';

const STEPS: { id: StepId; label: string }[] = [
  { id: 'model', label: 'Base model' },
  { id: 'datanets', label: 'Datanets' },
  { id: 'template', label: 'Template' },
  { id: 'hyperparameters', label: 'Hyperparameters' },
  { id: 'review', label: 'Review & launch' },
];

/** Shown when no datanet row can be read for the preview. */
const SAMPLE_ROW: TemplateRow = {
  messages: [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'What color is the sky on a clear day?' },
    { role: 'assistant', content: 'The sky is blue on a clear day.' },
  ],
};

type HyperField =
  'rank' | 'alpha' | 'dropout' | 'learningRate' | 'steps' | 'batchSize' | 'maxTokens' | 'seed';

const DEFAULTS: Record<HyperField, string> = {
  rank: '8',
  alpha: '16',
  dropout: '0.05',
  learningRate: '1e-3',
  steps: '100',
  batchSize: '8',
  maxTokens: '256',
  seed: '0',
};

interface FieldSpec {
  label: string;
  testId: string;
  help: string;
  integer: boolean;
  check: (v: number) => boolean;
  range: string;
}

const FIELDS: Record<HyperField, FieldSpec> = {
  rank: {
    label: 'LoRA rank',
    testId: 'hp-rank',
    help: 'Size of the low-rank update; higher adapts more and weighs more.',
    integer: true,
    check: (v) => v >= 1 && v <= 256,
    range: 'an integer from 1 to 256',
  },
  alpha: {
    label: 'LoRA alpha',
    testId: 'hp-alpha',
    help: 'Scale of the update (alpha / rank); usually 2 × rank.',
    integer: false,
    check: (v) => v > 0,
    range: 'a positive number',
  },
  dropout: {
    label: 'Dropout',
    testId: 'hp-dropout',
    help: 'Share of the adapter input dropped while training.',
    integer: false,
    check: (v) => v >= 0 && v < 1,
    range: 'at least 0 and below 1',
  },
  learningRate: {
    label: 'Learning rate',
    testId: 'hp-learning-rate',
    help: 'AdamW, with a warm-up over the first steps.',
    integer: false,
    check: (v) => v > 0 && v <= 1,
    range: 'above 0, at most 1',
  },
  steps: {
    label: 'Steps',
    testId: 'hp-steps',
    help: 'Optimizer steps; rows are reshuffled on each pass.',
    integer: true,
    check: (v) => v >= 1 && v <= 100_000,
    range: 'an integer from 1 to 100,000',
  },
  batchSize: {
    label: 'Batch size',
    testId: 'hp-batch-size',
    help: 'Rows per step.',
    integer: true,
    check: (v) => v >= 1 && v <= 512,
    range: 'an integer from 1 to 512',
  },
  maxTokens: {
    label: 'Max tokens per row',
    testId: 'hp-max-tokens',
    help: 'Longer renderings are cut at the end.',
    integer: true,
    check: (v) => v >= 2 && v <= 32_768,
    range: 'an integer from 2 to 32,768',
  },
  seed: {
    label: 'Seed',
    testId: 'hp-seed',
    help: 'Fixes initialisation, dropout and the row order.',
    integer: true,
    check: (v) => v >= 0 && v <= 2 ** 31 - 1,
    range: 'an integer from 0 to 2,147,483,647',
  },
};

function parseField(field: HyperField, text: string): { value?: number; error?: string } {
  const spec = FIELDS[field];
  const v = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(v)) return { error: 'Enter a number.' };
  if (spec.integer && !Number.isInteger(v)) return { error: `Must be ${spec.range}.` };
  if (!spec.check(v)) return { error: `Must be ${spec.range}.` };
  return { value: v };
}

function StepNav({
  current,
  reachable,
  onGo,
}: {
  current: StepId;
  reachable: (id: StepId) => boolean;
  onGo: (id: StepId) => void;
}) {
  return (
    <ol className="wizard-steps" data-testid="wizard-steps">
      {STEPS.map((s, i) => (
        <li key={s.id}>
          <button
            type="button"
            className={`wizard-step${s.id === current ? ' active' : ''}`}
            aria-current={s.id === current ? 'step' : undefined}
            disabled={!reachable(s.id)}
            onClick={() => onGo(s.id)}
            data-testid={`wizard-step-${s.id}`}
          >
            <span className="wizard-step-index">{i + 1}</span>
            {s.label}
          </button>
        </li>
      ))}
    </ol>
  );
}

function ReviewRow({ label, children }: { label: string; children: ReactNode }) {
  return (
    <>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </>
  );
}

function Wizard() {
  const { navigate } = useRouter();
  const { report } = useNotify();
  const { busy, step: launchStep, run } = useAction();
  const [step, setStep] = useState<StepId>('model');

  // (a) base model
  const [models, setModels] = useState<BaseModel[] | null>(null);
  const [baseModel, setBaseModel] = useState<string>('');
  // (b) datanets
  const [options, setOptions] = useState<DatanetOption[] | null>(null);
  const [selected, setSelected] = useState<Map<number, number>>(new Map());
  // (c) template
  const [template, setTemplate] = useState<TemplateName>('llama2');
  const [sample, setSample] = useState<{ key: string; row: TemplateRow; source: string } | null>(
    null,
  );
  const [preview, setPreview] = useState<{ key: string; preview: TemplatePreview } | null>(null);
  // (d) hyperparameters
  const [fields, setFields] = useState<Record<HyperField, string>>(DEFAULTS);
  const [targets, setTargets] = useState<LoraTarget[]>(['attn_q', 'attn_v']);
  const [quantizeBase, setQuantizeBase] = useState<Hyperparameters['quantizeBase']>('none');

  useEffect(() => {
    const ctrl = new AbortController();
    factoryApi
      .models(ctrl.signal)
      .then(({ models }) => {
        setModels(models);
        // the built-in model is the default; a lone model is the only choice anyway
        const preset = models.find((m) => m.builtin) ?? (models.length === 1 ? models[0] : null);
        if (preset) setBaseModel((m) => m || preset.name);
      })
      .catch((err) => {
        if (!ctrl.signal.aborted) {
          setModels([]);
          report(err);
        }
      });
    return () => ctrl.abort();
  }, [report]);

  const loadDetail = useCallback(async (summaryId: number, signal?: AbortSignal) => {
    const detail = await datanetsApi.get(summaryId, signal);
    setOptions(
      (prev) =>
        prev?.map((o) => (o.summary.id === summaryId ? { summary: detail, detail } : o)) ?? prev,
    );
    return detail;
  }, []);

  useEffect(() => {
    const ctrl = new AbortController();
    (async () => {
      try {
        const { datanets } = await datanetsApi.list({}, ctrl.signal);
        setOptions(datanets.map((summary) => ({ summary, detail: null })));
        // canRead and the versions come with each datanet's detail; only those that could be
        // trained on need it.
        await Promise.all(
          datanets
            .filter((d) => d.modality === 'text' && d.stats.latestVersion > 0)
            .map((d) => loadDetail(d.id, ctrl.signal)),
        );
      } catch (err) {
        if (!ctrl.signal.aborted) {
          setOptions((prev) => prev ?? []);
          report(err);
        }
      }
    })();
    return () => ctrl.abort();
  }, [loadDetail, report]);

  const reloadDatanet = useCallback(
    async (id: number) => {
      try {
        await loadDetail(id);
      } catch (err) {
        report(err);
      }
    },
    [loadDetail, report],
  );

  const model = models?.find((m) => m.name === baseModel);
  const selectedOptions = useMemo(
    () =>
      (options ?? []).filter((o) => selected.has(o.summary.id) && unavailableReason(o) === null),
    [options, selected],
  );
  const parsed = useMemo(() => {
    const values = {} as Record<HyperField, number>;
    const errors: Partial<Record<HyperField, string>> = {};
    for (const field of Object.keys(FIELDS) as HyperField[]) {
      const r = parseField(field, fields[field]);
      if (r.error) errors[field] = r.error;
      else values[field] = r.value!;
    }
    return { values, errors };
  }, [fields]);
  const hyperValid = Object.keys(parsed.errors).length === 0 && targets.length > 0;
  const effectiveMaxTokens =
    parsed.values.maxTokens === undefined
      ? undefined
      : Math.min(parsed.values.maxTokens, model?.contextLength ?? Infinity);

  const valid: Record<StepId, boolean> = {
    model: model !== undefined,
    datanets: selectedOptions.length > 0,
    template: true,
    hyperparameters: hyperValid,
    review: true,
  };
  const index = STEPS.findIndex((s) => s.id === step);
  const reachable = (id: StepId) => {
    const target = STEPS.findIndex((s) => s.id === id);
    return STEPS.slice(0, target).every((s) => valid[s.id]);
  };

  // The preview row: the first exported row of the first selected datanet, else a sample.
  const first = selectedOptions[0];
  const firstVersion = first ? selected.get(first.summary.id) : undefined;
  const sampleKey = first ? `${first.summary.id}:${firstVersion}` : 'sample';
  useEffect(() => {
    if (step !== 'template') return;
    if (sample?.key === sampleKey) return;
    if (!first || firstVersion === undefined) {
      setSample({ key: sampleKey, row: SAMPLE_ROW, source: 'a sample conversation' });
      return;
    }
    const ctrl = new AbortController();
    firstExportedRow(first.summary.id, firstVersion, ctrl.signal)
      .then((row) =>
        setSample(
          row
            ? {
                key: sampleKey,
                row,
                source: `the first row of ${first.summary.name} v${firstVersion}`,
              }
            : { key: sampleKey, row: SAMPLE_ROW, source: 'a sample conversation' },
        ),
      )
      .catch((err) => {
        if (ctrl.signal.aborted) return;
        setSample({
          key: sampleKey,
          row: SAMPLE_ROW,
          source: 'a sample conversation (the datanet row could not be read)',
        });
        report(err);
      });
    return () => ctrl.abort();
  }, [step, sampleKey, sample?.key, first, firstVersion, report]);

  const previewKey =
    sample && model ? `${template}|${model.name}|${sample.key}|${effectiveMaxTokens ?? ''}` : null;
  useEffect(() => {
    if (step !== 'template' || !previewKey || !sample || !model) return;
    if (preview?.key === previewKey) return;
    const ctrl = new AbortController();
    factoryApi
      .previewTemplate(
        {
          template,
          baseModel: model.name,
          row: sample.row,
          ...(effectiveMaxTokens ? { maxTokens: effectiveMaxTokens } : {}),
        },
        ctrl.signal,
      )
      .then((p) => setPreview({ key: previewKey, preview: p }))
      .catch((err) => {
        if (!ctrl.signal.aborted) report(err);
      });
    return () => ctrl.abort();
  }, [step, previewKey, preview?.key, sample, model, template, effectiveMaxTokens, report]);

  const go = (id: StepId) => {
    if (reachable(id)) setStep(id);
  };

  const rowsAvailable = selectedOptions.reduce((n, o) => {
    const v = o.detail?.versions.find((x) => x.version === selected.get(o.summary.id));
    return n + (v?.rowCount ?? 0);
  }, 0);

  const hyperparameters = (): Partial<Hyperparameters> => ({
    rank: parsed.values.rank,
    alpha: parsed.values.alpha,
    dropout: parsed.values.dropout,
    targets: LORA_TARGETS.filter((t) => targets.includes(t)),
    learningRate: parsed.values.learningRate,
    steps: parsed.values.steps,
    batchSize: parsed.values.batchSize,
    maxTokens: parsed.values.maxTokens,
    seed: parsed.values.seed,
    quantizeBase,
  });

  const launch = async () => {
    const job = await run(async (setActionStep) => {
      setActionStep('Checking access and queueing the run…');
      return factoryApi.train({
        baseModel,
        datanets: selectedOptions.map((o) => ({
          id: o.summary.id,
          version: selected.get(o.summary.id)!,
        })),
        template,
        hyperparameters: hyperparameters(),
      });
    });
    if (job) navigate(`/factory/jobs/${job.id}`);
  };

  const tokensEstimate =
    parsed.values.steps !== undefined &&
    parsed.values.batchSize !== undefined &&
    effectiveMaxTokens !== undefined
      ? parsed.values.steps * parsed.values.batchSize * effectiveMaxTokens
      : undefined;

  return (
    <div className="wizard" data-testid="factory-wizard" data-step={step}>
      <StepNav current={step} reachable={reachable} onGo={go} />

      {step === 'model' && (
        <Card title="1. Choose a base model" testId="wizard-panel-model">
          {models === null ? (
            <Spinner label="Loading base models…" />
          ) : models.length === 0 ? (
            <p className="muted" data-testid="factory-models-empty">
              This node offers no base model. Put a GGUF file (llama architecture) in{' '}
              <code>&lt;data-dir&gt;/models</code> or a folder named by{' '}
              <code>OPENLEDGER_MODELS_DIR</code>, then reload.
            </p>
          ) : (
            <div className="choice-list" role="radiogroup" aria-label="Base model">
              {models.map((m) => (
                <label
                  key={m.name}
                  className={`choice${m.name === baseModel ? ' choice-selected' : ''}`}
                  data-testid="model-option"
                  data-name={m.name}
                >
                  <input
                    type="radio"
                    name="base-model"
                    value={m.name}
                    checked={m.name === baseModel}
                    onChange={() => setBaseModel(m.name)}
                  />
                  <span className="choice-main">
                    <span className="strong">{m.name}</span>
                    {m.title && m.title !== m.name && <span className="muted"> · {m.title}</span>}
                    {m.builtin && <span className="badge">built-in</span>}
                    <span className="choice-meta">
                      <span>{m.architecture}</span>
                      <span>
                        context {m.contextLength ? `${formatInt(m.contextLength)} tokens` : '—'}
                      </span>
                      <span>{formatBytes(m.bytes)}</span>
                    </span>
                  </span>
                </label>
              ))}
            </div>
          )}
        </Card>
      )}

      {step === 'datanets' && (
        <Card
          title="2. Choose the datanets to train on"
          testId="wizard-panel-datanets"
          actions={
            <span className="muted small" data-testid="datanets-selected-count">
              {selectedOptions.length} selected · {formatInt(rowsAvailable)} rows
            </span>
          }
        >
          {options === null ? (
            <Spinner label="Loading datanets…" />
          ) : (
            <DatanetPicker
              options={options}
              selected={selected}
              onToggle={(o, on) =>
                setSelected((prev) => {
                  const next = new Map(prev);
                  if (on) {
                    const latest = Math.max(0, ...(o.detail?.versions.map((v) => v.version) ?? []));
                    if (latest > 0) next.set(o.summary.id, latest);
                  } else next.delete(o.summary.id);
                  return next;
                })
              }
              onVersion={(id, version) =>
                setSelected((prev) => {
                  if (!prev.has(id)) return prev;
                  const next = new Map(prev);
                  next.set(id, version);
                  return next;
                })
              }
              onReload={reloadDatanet}
            />
          )}
          <p className="muted small wizard-note">
            Training reads the approved rows of each version you pick; every row it uses is recorded
            with its contributor in the run&apos;s training manifest. A permissioned datanet needs
            the owner&apos;s grant first.
          </p>
        </Card>
      )}

      {step === 'template' && (
        <Card title="3. Choose a chat template" testId="wizard-panel-template">
          <div className="choice-list choice-list-row" role="radiogroup" aria-label="Template">
            {TEMPLATES.map((t) => (
              <label
                key={t}
                className={`choice${t === template ? ' choice-selected' : ''}`}
                data-testid={`template-${t}`}
              >
                <input
                  type="radio"
                  name="template"
                  value={t}
                  checked={t === template}
                  onChange={() => setTemplate(t)}
                />
                <span className="choice-main">
                  <span className="strong">{TEMPLATE_INFO[t].label}</span>
                  <code className="choice-code">{TEMPLATE_INFO[t].description}</code>
                </span>
              </label>
            ))}
          </div>
          <h3 className="wizard-subtitle">
            Preview{' '}
            <span className="muted small" data-testid="preview-source">
              {sample ? `— ${sample.source}, rendered by ${baseModel}'s tokenizer` : ''}
            </span>
          </h3>
          {preview && preview.key === previewKey ? (
            <TemplatePreviewView preview={preview.preview} />
          ) : (
            <Spinner label="Rendering the preview…" />
          )}
          <p className="muted small wizard-note">
            Only the assistant&apos;s answers (and the end-of-sequence token after them) are
            trained; the system and user turns and the template&apos;s markup are context.
          </p>
        </Card>
      )}

      {step === 'hyperparameters' && (
        <Card title="4. Set the hyperparameters" testId="wizard-panel-hyperparameters">
          <div className="form-grid hp-grid">
            {(Object.keys(FIELDS) as HyperField[]).map((field) => {
              const spec = FIELDS[field];
              const error = parsed.errors[field];
              return (
                <label className="field" key={field}>
                  <span className="field-label">{spec.label}</span>
                  <input
                    type="text"
                    inputMode={spec.integer ? 'numeric' : 'decimal'}
                    value={fields[field]}
                    onChange={(e) => setFields((prev) => ({ ...prev, [field]: e.target.value }))}
                    aria-invalid={error ? 'true' : undefined}
                    data-testid={spec.testId}
                  />
                  {error ? (
                    <span className="field-error" data-testid={`${spec.testId}-error`}>
                      {error}
                    </span>
                  ) : (
                    <span className="field-help">
                      {field === 'maxTokens' &&
                      model?.contextLength &&
                      parsed.values.maxTokens !== undefined &&
                      parsed.values.maxTokens > model.contextLength
                        ? `Capped at ${model.name}'s context: ${model.contextLength} tokens.`
                        : spec.help}
                    </span>
                  )}
                </label>
              );
            })}
            <fieldset className="field field-wide">
              <legend className="field-label">Adapted weights</legend>
              <div className="target-list">
                {LORA_TARGETS.map((t) => (
                  <label className="checkbox" key={t}>
                    <input
                      type="checkbox"
                      checked={targets.includes(t)}
                      onChange={(e) =>
                        setTargets((prev) =>
                          e.target.checked ? [...prev, t] : prev.filter((x) => x !== t),
                        )
                      }
                      data-testid={`hp-target-${t}`}
                    />
                    <code>{t}</code>
                  </label>
                ))}
              </div>
              {targets.length === 0 ? (
                <span className="field-error">Choose at least one weight to adapt.</span>
              ) : (
                <span className="field-help">
                  The attention query and value projections by default.
                </span>
              )}
            </fieldset>
            <label className="field">
              <span className="field-label">Base weights while training</span>
              <select
                value={quantizeBase}
                onChange={(e) => setQuantizeBase(e.target.value as Hyperparameters['quantizeBase'])}
                data-testid="hp-quantize-base"
              >
                <option value="none">float32 (LoRA)</option>
                <option value="q8_0">8-bit blocks (QLoRA)</option>
                <option value="q4_0">4-bit blocks (QLoRA)</option>
              </select>
              <span className="field-help">
                QLoRA keeps the frozen projections quantized; dims must be multiples of 32.
              </span>
            </label>
          </div>
          <p className="estimate" data-testid="hp-estimate">
            {tokensEstimate === undefined ? (
              'Estimate: fix the fields above.'
            ) : (
              <>
                Estimate: {formatInt(parsed.values.steps)} steps ×{' '}
                {formatInt(parsed.values.batchSize)} rows × {formatInt(effectiveMaxTokens)} tokens ≤{' '}
                <strong data-testid="hp-estimate-tokens">{formatInt(tokensEstimate)}</strong> tokens
                processed
                {rowsAvailable > 0 && (
                  <span className="muted">
                    {' '}
                    · about{' '}
                    {((parsed.values.steps! * parsed.values.batchSize!) / rowsAvailable).toFixed(
                      1,
                    )}{' '}
                    passes over {formatInt(rowsAvailable)} rows (about 10% held out)
                  </span>
                )}
              </>
            )}
          </p>
          <TrainingEstimate
            baseModel={baseModel}
            hyperparameters={hyperValid ? hyperparameters() : undefined}
          />
        </Card>
      )}

      {step === 'review' && (
        <Card title="5. Review and launch" testId="wizard-panel-review">
          <dl className="kv review-kv" data-testid="wizard-review">
            <ReviewRow label="Base model">
              <span data-testid="review-model">{baseModel}</span>
              {model && (
                <span className="muted">
                  {' '}
                  · {model.architecture}, context {model.contextLength ?? '—'},{' '}
                  {formatBytes(model.bytes)}
                </span>
              )}
            </ReviewRow>
            <ReviewRow label="Datanets">
              <ul className="plain-list" data-testid="review-datanets">
                {selectedOptions.map((o) => (
                  <li key={o.summary.id}>
                    {o.summary.name} <span className="muted">v{selected.get(o.summary.id)}</span>
                  </li>
                ))}
              </ul>
            </ReviewRow>
            <ReviewRow label="Template">
              <span data-testid="review-template">{template}</span>
              <span className="muted"> · {TEMPLATE_INFO[template].label}</span>
            </ReviewRow>
            <ReviewRow label="LoRA">
              rank {parsed.values.rank}, alpha {parsed.values.alpha}, dropout{' '}
              {parsed.values.dropout} on {targets.join(', ')}
            </ReviewRow>
            <ReviewRow label="Training">
              <span data-testid="review-training">
                {parsed.values.steps} steps × batch {parsed.values.batchSize}, learning rate{' '}
                {parsed.values.learningRate}, max {effectiveMaxTokens} tokens per row, seed{' '}
                {parsed.values.seed}
              </span>
            </ReviewRow>
            <ReviewRow label="Estimate">≤ {formatInt(tokensEstimate)} tokens processed</ReviewRow>
          </dl>
          <div className="form-actions wizard-launch">
            <button
              type="button"
              className="button button-primary"
              onClick={() => void launch()}
              disabled={busy || !STEPS.every((s) => valid[s.id])}
              data-testid="wizard-launch"
            >
              {busy ? 'Launching…' : 'Launch training'}
            </button>
            <ActionStep step={launchStep} testId="wizard-launch-step" />
          </div>
          <p className="muted small">
            The node trains the adapter in the background; you can leave the page and follow the run
            from the Model Factory.
          </p>
        </Card>
      )}

      <div className="wizard-actions">
        {index > 0 && (
          <button
            type="button"
            className="button button-secondary"
            onClick={() => setStep(STEPS[index - 1]!.id)}
            disabled={busy}
            data-testid="wizard-back"
          >
            ← Back
          </button>
        )}
        {index < STEPS.length - 1 && (
          <button
            type="button"
            className="button button-primary"
            onClick={() => go(STEPS[index + 1]!.id)}
            disabled={!valid[step]}
            data-testid="wizard-next"
          >
            Next: {STEPS[index + 1]!.label} →
          </button>
        )}
        <Link to="/factory" className="button button-ghost">
          Cancel
        </Link>
      </div>
    </div>
  );
}

export function NewTrainingRunPage() {
  const { session, checking } = useAuth();
  return (
    <div className="page" data-testid="page-factory-new">
      <Link to="/factory" className="back-link" data-testid="back-to-factory">
        ← Model Factory
      </Link>
      <PageHeader title="New training run">
        Fine-tune a LoRA adapter on a base model with the data of one or more datanets.
      </PageHeader>
      {checking ? (
        <Spinner label="Checking session…" />
      ) : !session ? (
        <SignInNotice title="Sign in to train a model">
          A training run belongs to the wallet that starts it, and reads datanets with that
          wallet&apos;s access. Connect your wallet and sign in first.
        </SignInNotice>
      ) : (
        <Wizard key={session.address} />
      )}
    </div>
  );
}
