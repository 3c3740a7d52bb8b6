// /playground — chat with a base model, a published model (model:<id>) or a mix of adapters,
// streamed from the node's OpenAI-compatible API (/v1/chat/completions, signed in with the
// session cookie). Under each answer: its tokens, tokens/s and the adapters that served it.
// `?adapter=<sha256>&base=<baseModel>` (the training run page's link) preselects an adapter;
// `?model=<id>` a model (an agent's page links `?model=agent:<name>`).
// With datanets picked under "Datanets (RAG)", the request carries `rag` and the answer comes
// with numbered sources and `[n]` citations linking to the rows (RagAnswer.tsx, docs/web.md).
import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { PageHeader } from '../../components/PageHeader';
import { Card, ErrorBanner, Spinner } from '../../components/ui';
import {
  ApiError,
  datanetsApi,
  factoryApi,
  request,
  toApiError,
  type DatanetSummary,
  type TrainJob,
} from '../../lib/api';
import { useAuth } from '../../lib/auth';
import { SignInNotice } from '../datanets/common';
import { EscrowCard } from '../escrow/EscrowCard';
import { modelName } from '../factory/common';
import { modelsApi, type PublishedModel } from '../models/api';
import { AttributionBreakdown, paidReceiptId } from './AttributionBreakdown';
import { RagAnswer, type RagCitation, type RagInfo } from './RagAnswer';
import {
  describeAdapters,
  readChatStream,
  StreamError,
  type ChatUsage,
  type OpenLedgerInfo,
} from '../../../../src/util/openai-stream.ts';

interface V1Model {
  id: string;
  parent: string | null;
  openledger: {
    kind: 'base' | 'adapter' | 'published' | 'agent';
    adapter: string | null;
    loaded: boolean;
  };
}

interface V1Adapter {
  id: string;
  names: string[];
  base_model: string;
}

interface AdapterRow {
  id: string;
  weight: string;
}

interface Turn {
  role: 'user' | 'assistant';
  content: string;
  /** For answers: still streaming, and what the node reported at the end. */
  streaming?: boolean;
  usage?: ChatUsage;
  openledger?: OpenLedgerInfo;
  error?: string;
  /** Asked with `rag` (answered from datanets). */
  ragAsked?: boolean;
  /** A RAG answer's sources and checked citations. */
  rag?: RagInfo;
  citations?: RagCitation[];
}

/** GET /api/rag: the vector index in use and the embedder (null until first loaded). */
interface RagStatus {
  vectors: string;
  reason: string;
  embedder: { name: string; sha256: string; dimensions: number } | null;
  error?: string;
}

/** The node's most datanets per RAG request (src/api/routes/openai.ts). */
const RAG_MAX_DATANETS = 16;

type ReadableDatanet = DatanetSummary & { canRead?: boolean };

interface RagChoices {
  /** Null when the node has no RAG (the reason is in `error`). */
  status: RagStatus | null;
  /** Datanets the signed-in wallet may read. */
  datanets: ReadableDatanet[];
  error: ApiError | null;
}

async function loadRagChoices(signal: AbortSignal): Promise<RagChoices> {
  const [status, list] = await Promise.allSettled([
    request<RagStatus>('/api/rag', { signal }),
    datanetsApi.list({}, signal),
  ]);
  const datanets =
    list.status === 'fulfilled'
      ? (list.value.datanets as ReadableDatanet[]).filter((d) => d.canRead !== false)
      : [];
  const failed = status.status === 'rejected' ? status : list.status === 'rejected' ? list : null;
  return {
    status: status.status === 'fulfilled' ? status.value : null,
    datanets,
    error: failed ? toApiError(failed.reason) : null,
  };
}

interface Options {
  bases: string[];
  /** Active agents, served as `agent:<name>`. */
  agents: string[];
  published: PublishedModel[];
  named: V1Adapter[];
  jobs: TrainJob[];
}

/** The /v1 API answers errors in OpenAI's shape: `{ error: { message, type, code } }`. */
async function v1Error(res: Response): Promise<ApiError> {
  let error: { message?: string; code?: string | null; type?: string } | undefined;
  try {
    error = ((await res.json()) as { error?: typeof error }).error;
  } catch {
    // not JSON
  }
  return new ApiError({
    status: res.status,
    code: error?.code ?? error?.type ?? `HTTP_${res.status}`,
    message: error?.message ?? `The node answered ${res.status}.`,
  });
}

async function v1Get<T>(path: string, signal: AbortSignal): Promise<T> {
  const res = await fetch(path, { credentials: 'same-origin', signal });
  if (!res.ok) throw await v1Error(res);
  return (await res.json()) as T;
}

async function loadOptions(signal: AbortSignal): Promise<Options> {
  const [models, adapters, published, jobs] = await Promise.all([
    v1Get<{ data: V1Model[] }>('/v1/models', signal),
    v1Get<{ data: V1Adapter[] }>('/v1/lora_adapters', signal),
    modelsApi.list({}, signal),
    factoryApi.trainJobs(signal),
  ]);
  return {
    bases: models.data.filter((m) => m.openledger.kind === 'base').map((m) => m.id),
    agents: models.data.filter((m) => m.openledger.kind === 'agent').map((m) => m.id),
    published: published.models.filter((m) => m.active),
    named: adapters.data.filter((a) => a.names.length > 0),
    jobs: jobs.jobs.filter((j) => j.status === 'succeeded' && j.result),
  };
}

function query(): { adapter: string | null; base: string | null; model: string | null } {
  const q = new URLSearchParams(window.location.search);
  const adapter = q.get('adapter');
  return {
    adapter: adapter && /^[0-9a-f]{64}$/i.test(adapter) ? adapter.toLowerCase() : null,
    base: q.get('base'),
    model: q.get('model'),
  };
}

function AnswerStats({ turn }: { turn: Turn }) {
  const info = turn.openledger;
  if (turn.streaming)
    return (
      <p className="muted small playground-stats">
        {turn.ragAsked ? 'answering from the sources…' : 'streaming…'}
      </p>
    );
  if (!info) return null;
  return (
    <p
      className="muted small playground-stats"
      data-testid="playground-answer-stats"
      data-tokens-per-second={info.timings.tokens_per_second}
    >
      {turn.usage && (
        <span data-testid="playground-answer-tokens">{turn.usage.completion_tokens} tokens</span>
      )}
      {' · '}
      <span data-testid="playground-answer-tps">
        {info.timings.tokens_per_second.toFixed(1)} tokens/s
      </span>
      {' · '}
      <span data-testid="playground-answer-adapters">
        {info.base_model} + {describeAdapters(info.adapters)}
      </span>
      {info.receipt.hash && (
        <>
          {' · '}
          <span className="mono" title={info.receipt.hash} data-testid="playground-answer-receipt">
            receipt {info.receipt.hash.slice(0, 10)}…
          </span>
        </>
      )}
    </p>
  );
}

function PlaygroundChat() {
  const initial = useMemo(query, []);
  const [options, setOptions] = useState<Options | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [model, setModel] = useState(
    initial.model ?? (initial.base ? modelName(initial.base) : ''),
  );
  const [adapters, setAdapters] = useState<AdapterRow[]>(
    initial.adapter ? [{ id: `adapter:${initial.adapter}`, weight: '1' }] : [],
  );
  const [system, setSystem] = useState('');
  const [maxTokens, setMaxTokens] = useState('');
  const [temperature, setTemperature] = useState('');
  const [turns, setTurns] = useState<Turn[]>([]);
  const [input, setInput] = useState('');
  const [running, setRunning] = useState<AbortController | null>(null);
  const [adding, setAdding] = useState('');
  const [ragChoices, setRagChoices] = useState<RagChoices | null>(null);
  const [ragDatanets, setRagDatanets] = useState<number[]>([]);
  const [strict, setStrict] = useState(true);
  const endRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const ctrl = new AbortController();
    loadOptions(ctrl.signal)
      .then((o) => {
        setOptions(o);
        setModel((m) => m || o.bases[0] || '');
      })
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) setError(toApiError(err));
      });
    return () => ctrl.abort();
  }, []);

  useEffect(() => {
    const ctrl = new AbortController();
    loadRagChoices(ctrl.signal)
      .then(setRagChoices)
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted)
          setRagChoices({ status: null, datanets: [], error: toApiError(err) });
      });
    return () => ctrl.abort();
  }, []);

  const datanetNames = useMemo(
    () => new Map((ragChoices?.datanets ?? []).map((d) => [d.id, d.name])),
    [ragChoices],
  );

  useEffect(() => {
    endRef.current?.scrollIntoView?.({ block: 'nearest' });
  }, [turns]);

  const adapterChoices = useMemo(() => {
    if (!options) return [];
    const choices: { id: string; label: string }[] = [];
    for (const a of options.named)
      choices.push({ id: a.names[0]!, label: `${a.names.join(', ')} (on ${a.base_model})` });
    for (const m of options.published)
      choices.push({
        id: `model:${m.id}`,
        label: `model:${m.id} ${m.name} (on ${m.baseModelName})`,
      });
    for (const j of options.jobs)
      choices.push({
        id: `adapter:${j.result!.adapterBlobId}`,
        label: `training run ${j.id.slice(0, 8)} (on ${modelName(j.params.baseModel)})`,
      });
    return choices;
  }, [options]);

  const send = useCallback(
    async (e: FormEvent) => {
      e.preventDefault();
      const text = input.trim();
      if (!text || running || !model) return;
      setError(null);
      const weights = adapters.map((a) => ({ id: a.id, weight: Number(a.weight) }));
      const bad = weights.find((w) => validWeight(w.weight) === undefined);
      if (bad) {
        setError(
          new ApiError({
            status: 0,
            code: 'VALIDATION_FAILED',
            message: `The weight of ${bad.id} must be a number from -10 to 10.`,
          }),
        );
        return;
      }
      const history = turns
        .filter((t) => !t.error)
        .map((t) => ({ role: t.role, content: t.content }));
      const messages = [
        ...(system.trim() ? [{ role: 'system', content: system.trim() }] : []),
        ...history,
        { role: 'user', content: text },
      ];
      const ctrl = new AbortController();
      const rag = ragDatanets.length > 0 ? { datanets: ragDatanets, strict } : undefined;
      setRunning(ctrl);
      setInput('');
      setTurns((prev) => [
        ...prev,
        { role: 'user', content: text },
        { role: 'assistant', content: '', streaming: true, ragAsked: rag !== undefined },
      ]);
      const update = (patch: (t: Turn) => Turn) =>
        setTurns((prev) => [...prev.slice(0, -1), patch(prev[prev.length - 1]!)]);
      try {
        const tokens = Number(maxTokens);
        const heat = temperature.trim() === '' ? Number.NaN : Number(temperature);
        const res = await fetch('/v1/chat/completions', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
          body: JSON.stringify({
            model,
            messages,
            ...(weights.length ? { adapters: weights } : {}),
            ...(Number.isSafeInteger(tokens) && tokens > 0 ? { max_tokens: tokens } : {}),
            ...(Number.isFinite(heat) ? { temperature: heat } : {}),
            ...(rag ? { rag } : {}),
            stream: true,
            stream_options: { include_usage: true },
          }),
          signal: ctrl.signal,
        });
        if (!res.ok || !res.body) throw await v1Error(res);
        const answer = await readChatStream(res.body, (delta) =>
          update((t) => ({ ...t, content: t.content + delta })),
        );
        update((t) => ({
          ...t,
          streaming: false,
          ...(answer.usage ? { usage: answer.usage } : {}),
          ...(answer.openledger ? { openledger: answer.openledger } : {}),
          ...(answer.openledger?.rag
            ? { rag: answer.openledger.rag, citations: answer.citations ?? [] }
            : {}),
        }));
      } catch (err) {
        if (ctrl.signal.aborted) {
          update((t) => ({ ...t, streaming: false, content: `${t.content} [stopped]` }));
        } else {
          const apiError =
            err instanceof StreamError
              ? new ApiError({
                  status: 500,
                  code: err.error.code ?? 'server_error',
                  message: err.error.message,
                })
              : toApiError(err);
          // The failed question and its empty answer leave the conversation.
          setTurns((prev) => prev.slice(0, -2));
          setInput(text);
          setError(apiError);
        }
      } finally {
        setRunning(null);
      }
    },
    [input, running, model, adapters, turns, system, maxTokens, temperature, ragDatanets, strict],
  );

  if (!options && !error) return <Spinner label="Loading models…" />;

  return (
    <div className="playground" data-testid="playground">
      <ErrorBanner error={error} onClose={() => setError(null)} />
      <Card title="Model" testId="playground-setup">
        <div className="form-grid">
          <label className="field">
            <span className="field-label">Model</span>
            <select
              value={model}
              onChange={(e) => setModel(e.target.value)}
              data-testid="playground-model"
            >
              {model &&
                !options?.bases.includes(model) &&
                !options?.agents.includes(model) &&
                !model.startsWith('model:') && <option value={model}>{model}</option>}
              <optgroup label="Base models">
                {options?.bases.map((b) => (
                  <option key={b} value={b}>
                    {b}
                  </option>
                ))}
              </optgroup>
              {options && options.published.length > 0 && (
                <optgroup label="Published models">
                  {options.published.map((m) => (
                    <option key={m.id} value={`model:${m.id}`}>
                      model:{m.id} — {m.name}
                    </option>
                  ))}
                </optgroup>
              )}
              {options && options.agents.length > 0 && (
                <optgroup label="Agents">
                  {options.agents.map((a) => (
                    <option key={a} value={a}>
                      {a}
                    </option>
                  ))}
                </optgroup>
              )}
              {options && options.named.length > 0 && (
                <optgroup label="Adapters on this node">
                  {options.named.map((a) => (
                    <option key={a.id} value={a.names[0]}>
                      {a.names[0]} (on {a.base_model})
                    </option>
                  ))}
                </optgroup>
              )}
            </select>
            <span className="field-help">
              A base model, a published model (its adapter over its base), an agent or a named
              adapter.
            </span>
          </label>
          <label className="field">
            <span className="field-label">Max tokens per answer</span>
            <input
              type="text"
              inputMode="numeric"
              value={maxTokens}
              onChange={(e) => setMaxTokens(e.target.value)}
              placeholder="the node's default"
              data-testid="playground-max-tokens"
            />
          </label>
          <label className="field">
            <span className="field-label">Temperature</span>
            <input
              type="text"
              inputMode="decimal"
              value={temperature}
              onChange={(e) => setTemperature(e.target.value)}
              placeholder="the node's default (1)"
              data-testid="playground-temperature"
            />
            <span className="field-help">0 answers greedily: the same answer every time.</span>
          </label>
          <div className="field field-wide">
            <span className="field-label">Adapters composed with the model</span>
            {adapters.length === 0 && <span className="muted small">None.</span>}
            {adapters.map((a, i) => (
              <div
                className="toolbar"
                key={a.id}
                data-testid="playground-adapter"
                data-adapter={a.id}
              >
                <span className="mono small" title={a.id}>
                  {a.id.length > 30 ? `${a.id.slice(0, 22)}…${a.id.slice(-6)}` : a.id}
                </span>
                <label className="small">
                  weight{' '}
                  <input
                    type="text"
                    inputMode="decimal"
                    value={a.weight}
                    size={5}
                    onChange={(e) =>
                      setAdapters((prev) =>
                        prev.map((x, j) => (j === i ? { ...x, weight: e.target.value } : x)),
                      )
                    }
                    data-testid="playground-adapter-weight"
                  />
                </label>
                <button
                  type="button"
                  className="button button-ghost button-small"
                  onClick={() => setAdapters((prev) => prev.filter((_, j) => j !== i))}
                  data-testid="playground-adapter-remove"
                >
                  Remove
                </button>
              </div>
            ))}
            {adapters.length < 8 && (
              <div className="toolbar">
                <select
                  value={adding}
                  onChange={(e) => setAdding(e.target.value)}
                  data-testid="playground-adapter-choice"
                >
                  <option value="">Choose an adapter…</option>
                  {adapterChoices
                    .filter((c) => !adapters.some((a) => a.id === c.id))
                    .map((c) => (
                      <option key={c.id} value={c.id}>
                        {c.label}
                      </option>
                    ))}
                </select>
                <button
                  type="button"
                  className="button button-secondary button-small"
                  disabled={!adding}
                  onClick={() => {
                    setAdapters((prev) => [...prev, { id: adding, weight: '1' }]);
                    setAdding('');
                  }}
                  data-testid="playground-adapter-add"
                >
                  Add
                </button>
              </div>
            )}
            <span className="field-help">
              Each adapter is applied at its weight (LoRA scale); they must fit the model&apos;s
              base.
            </span>
          </div>
          <RagPicker
            choices={ragChoices}
            selected={ragDatanets}
            onSelected={setRagDatanets}
            strict={strict}
            onStrict={setStrict}
          />
          <label className="field field-wide">
            <span className="field-label">System prompt</span>
            <textarea
              rows={2}
              value={system}
              onChange={(e) => setSystem(e.target.value)}
              placeholder="Optional instructions for the model"
              data-testid="playground-system"
            />
          </label>
        </div>
      </Card>

      <Card
        title="Chat"
        testId="playground-chat"
        actions={
          turns.length > 0 && (
            <button
              type="button"
              className="button button-ghost button-small"
              disabled={running !== null}
              onClick={() => setTurns([])}
              data-testid="playground-clear"
            >
              Clear
            </button>
          )
        }
      >
        <div className="playground-turns" data-testid="playground-turns">
          {turns.length === 0 && (
            <p className="muted small">Each call is metered and returns a receipt.</p>
          )}
          {turns.map((t, i) => (
            <div
              key={i}
              className={`playground-turn playground-${t.role}`}
              data-testid={t.role === 'user' ? 'playground-question' : 'playground-answer'}
              data-streaming={t.streaming ? 'true' : 'false'}
            >
              <p className="small strong">{t.role === 'user' ? 'You' : 'Model'}</p>
              {t.role === 'assistant' && !t.streaming && t.rag ? (
                <>
                  <RagAnswer
                    text={t.content}
                    rag={t.rag}
                    citations={t.citations ?? []}
                    stats={<AnswerStats turn={t} />}
                    datanetNames={datanetNames}
                  />
                  {paidReceiptId(t.openledger, options?.published) && (
                    <AttributionBreakdown
                      receiptId={paidReceiptId(t.openledger, options?.published)!}
                      text={t.content}
                      stats={null}
                      showAnswer={false}
                    />
                  )}
                </>
              ) : t.role === 'assistant' &&
                !t.streaming &&
                paidReceiptId(t.openledger, options?.published) ? (
                <AttributionBreakdown
                  receiptId={paidReceiptId(t.openledger, options?.published)!}
                  text={t.content}
                  stats={<AnswerStats turn={t} />}
                />
              ) : (
                <>
                  <p className="playground-text" data-testid="playground-text">
                    {t.content}
                  </p>
                  {t.role === 'assistant' && <AnswerStats turn={t} />}
                </>
              )}
            </div>
          ))}
          <div ref={endRef} />
        </div>
        <form className="form" onSubmit={(e) => void send(e)}>
          <textarea
            rows={3}
            value={input}
            onChange={(e) => setInput(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && !e.shiftKey) {
                e.preventDefault();
                e.currentTarget.form?.requestSubmit();
              }
            }}
            placeholder="Send a message (Enter to send, Shift+Enter for a new line)"
            data-testid="playground-input"
          />
          <div className="form-actions">
            <button
              type="submit"
              className="button button-primary"
              disabled={!input.trim() || running !== null || !model}
              data-testid="playground-send"
            >
              Send
            </button>
            {running && (
              <button
                type="button"
                className="button button-secondary"
                onClick={() => running.abort()}
                data-testid="playground-stop"
              >
                Stop
              </button>
            )}
          </div>
        </form>
      </Card>
    </div>
  );
}

/** The "Datanets (RAG)" picker: readable datanets to answer from, and "Only from sources". */
function RagPicker({
  choices,
  selected,
  onSelected,
  strict,
  onStrict,
}: {
  choices: RagChoices | null;
  selected: number[];
  onSelected: (ids: number[]) => void;
  strict: boolean;
  onStrict: (strict: boolean) => void;
}) {
  const toggle = (id: number, on: boolean) =>
    onSelected(on ? [...selected, id].sort((a, b) => a - b) : selected.filter((x) => x !== id));
  const status = choices?.status ?? null;
  return (
    <fieldset
      className="field field-wide"
      data-testid="rag-datanets"
      data-selected={selected.join(',')}
    >
      <legend className="field-label">Datanets (RAG)</legend>
      {!choices ? (
        <Spinner label="Loading datanets…" />
      ) : !status ? (
        <span className="muted small" data-testid="rag-unavailable">
          Answers from datanets are not available on this node
          {choices.error ? `: ${choices.error.message}` : '.'}
        </span>
      ) : choices.datanets.length === 0 ? (
        <span className="muted small" data-testid="rag-datanets-empty">
          {choices.error
            ? `The datanets could not be loaded: ${choices.error.message}`
            : 'There is no datanet you may read on this node.'}
        </span>
      ) : (
        <div className="choice-list choice-list-row">
          {choices.datanets.map((d) => {
            const on = selected.includes(d.id);
            const noVersion = d.stats.latestVersion === 0;
            const full = !on && selected.length >= RAG_MAX_DATANETS;
            return (
              <label
                key={d.id}
                className={`choice${on ? ' choice-selected' : ''}`}
                title={
                  noVersion
                    ? 'No version committed yet: answers use committed rows only'
                    : full
                      ? `At most ${RAG_MAX_DATANETS} datanets per question`
                      : undefined
                }
              >
                <input
                  type="checkbox"
                  value={d.id}
                  checked={on}
                  disabled={(noVersion && !on) || full}
                  onChange={(e) => toggle(d.id, e.target.checked)}
                  data-testid={`rag-datanet-${d.id}`}
                />
                <span className="choice-main">
                  <span className="strong">{d.name}</span>
                  <span className="choice-meta">
                    <span>#{d.id}</span>
                    <span>{noVersion ? 'no version yet' : `v${d.stats.latestVersion}`}</span>
                    <span>{d.stats.approvedRows} rows</span>
                  </span>
                </span>
              </label>
            );
          })}
        </div>
      )}
      <label className="checkbox">
        <input
          type="checkbox"
          checked={strict}
          onChange={(e) => onStrict(e.target.checked)}
          data-testid="rag-strict"
        />
        <span>Only from sources</span>
      </label>
      <span className="field-help">
        With datanets picked, the node finds the rows that best match your question, numbers them as
        sources and the answer cites them as [n]. Only from sources: citations a source does not
        support are removed, an answer with none supported is replaced by the best matching source
        sentence (or says the sources do not contain the answer), and it arrives in one piece.
        {status &&
          ` Retrieval: ${status.vectors} vectors${status.embedder ? `, ${status.embedder.name} embeddings` : ''}.`}
      </span>
      {status?.error && (
        <span className="field-help" data-testid="rag-embedder-error">
          The embedder is not available: {status.error}
        </span>
      )}
    </fieldset>
  );
}

/** A finite weight within the node's ±10, or undefined. */
function validWeight(weight: number): number | undefined {
  return Number.isFinite(weight) && Math.abs(weight) <= 10 ? weight : undefined;
}

export function PlaygroundPage() {
  const { session, checking } = useAuth();
  return (
    <div className="page" data-testid="page-playground">
      <PageHeader title="Playground">
        Chat with a base model, a published model or a mix of LoRA adapters, served by this
        node&apos;s OpenAI-compatible API. Each answer shows its speed and the adapters that served
        it; each call is metered and gets a receipt.
      </PageHeader>
      {checking ? (
        <Spinner label="Checking session…" />
      ) : !session ? (
        <SignInNotice title="Sign in to use the Playground">
          Every call is made by a wallet and metered. Connect your wallet and sign in to chat.
        </SignInNotice>
      ) : (
        <>
          <EscrowCard key={`escrow-${session.address}`} compact />
          <PlaygroundChat key={session.address} />
        </>
      )}
    </div>
  );
}
