import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { and, asc, eq, inArray } from 'drizzle-orm';
import {
  getLlama,
  type ChatHistoryItem,
  type ControlledEvaluateInputItem,
  type Llama,
  type Token,
} from 'node-llama-cpp';
import type { Principal } from '../auth/index.ts';
import { isBlobId, type BlobStore } from '../blobs/index.ts';
import type { ServingConfig } from '../config.ts';
import { schema, type Db } from '../db/index.ts';
import { ggufString, readGguf } from '../engine/gguf/index.ts';
import { OpenLedgerError } from '../errors.ts';
import type { ModelCatalog } from '../factory/index.ts';
import { BUILTIN_MODEL_NAME } from '../factory/builtin/recipe.ts';
import {
  checkAdapterFile,
  checkAdapterName,
  readBaseShape,
  sha256File,
  storeAdapterSource,
  type AdapterRecord,
} from './adapters.ts';
import {
  localGenerator,
  type FinishReason,
  type Generator,
  type SamplingOptions,
} from './generate.ts';
import { RemoteBackend, type RemoteStats } from './remote.ts';
import { BaseRuntime, setKey, type AdapterUse, type RuntimeStats } from './runtime.ts';
import { FairScheduler, type SchedulerStats } from './scheduler.ts';
import { recordUsage, type InferenceEndpoint, type InferenceReceipt } from './usage.ts';

/** Adapters composed in one request, at most. */
export const MAX_ADAPTERS_PER_REQUEST = 8;
/** Adapter weights (llama.cpp scales) are kept within ±this. */
export const MAX_ADAPTER_WEIGHT = 10;

export interface ChatMessage {
  role: string;
  content: string | { type: string; text?: string }[] | null;
}

export interface AdapterRequest {
  id: string;
  weight?: number;
}

/** What a request runs on, resolved from `model` and `adapters`. */
export interface Target {
  model: string;
  base: BaseRuntime;
  adapters: AdapterUse[];
  publishedModelId: number | undefined;
}

export interface GenerateRequest {
  endpoint: 'chat.completions' | 'completions';
  model: string;
  adapters?: AdapterRequest[];
  messages?: ChatMessage[];
  /** A completion prompt: text, or token ids of the base model's vocabulary (used as they are). */
  prompt?: string | number[];
  sampling: Partial<SamplingOptions>;
  caller: Principal;
  signal: AbortSignal;
  /** Called once the request holds a slot and its prompt fits, before the first token. */
  onStart?: (info: StartInfo) => void;
  onText: (delta: string) => void;
}

export interface StartInfo {
  id: string;
  created: number;
  model: string;
  promptTokens: number;
}

export interface ServedAdapter {
  id: string;
  name: string | undefined;
  weight: number;
}

export interface GenerateResult extends StartInfo {
  text: string;
  finishReason: FinishReason;
  completionTokens: number;
  baseModel: string;
  adapters: ServedAdapter[];
  /** The remote server that generated (`up --remote-backend`); undefined: this node. */
  backend: string | undefined;
  receipt: InferenceReceipt;
  receiptHash: string;
  timings: {
    queueMs: number;
    /** Time to first token, after the slot was granted. */
    firstTokenMs: number | undefined;
    totalMs: number;
    tokensPerSecond: number;
    /** Whether an adapter had to be attached (from disk) for this request. */
    coldAdapters: boolean;
    ended: string;
  };
}

export interface ModelEntry {
  id: string;
  kind: 'base' | 'adapter' | 'published';
  /** For adapters and published models: the base model. */
  parent: string | undefined;
  /** The adapter's sha256. */
  adapter: string | undefined;
  loaded: boolean;
  created: number;
}

export interface EngineDeps {
  options: ServingConfig;
  catalog: ModelCatalog;
  blobs: BlobStore;
  db: Db;
  chainId: number;
  /** Wallets allowed to load and unload adapters. */
  operators: readonly string[];
  /** Prices and admits paid calls (src/payments); without it every call is free. */
  payments?: Payments | undefined;
}

/** What the engine needs of payments: see `EscrowService.authorize`. */
export interface Payments {
  authorize(input: {
    caller: string;
    publishedModelId: number | undefined;
    promptTokens: number;
    maxTokens: number;
  }): Promise<
    { fee(promptTokens: number, completionTokens: number): bigint; release(): void } | undefined
  >;
}

/**
 * OpenLoRA: the node's inference engine. It resolves what a caller names (a base model, an
 * adapter, a published Model ID) to a base model runtime and an adapter set, admits the
 * request through the fair scheduler, runs it on a pooled llama.cpp sequence and writes the
 * usage row and receipt before handing the result back.
 */
export class ServingEngine {
  private llama: Promise<Llama> | undefined;
  private readonly bases = new Map<string, Promise<BaseRuntime>>();
  /** The runtimes created so far, by catalogue name. */
  private readonly runtimes = new Map<string, BaseRuntime>();
  private readonly adapters = new Map<string, AdapterRecord>();
  private readonly names = new Map<string, string>();
  /** Adapter ids known to fit each base (checked once). */
  private readonly compatible = new Set<string>();
  readonly scheduler: FairScheduler;
  private readonly threads: number;
  private startError: string | undefined;
  private readonly startedAt = Date.now();
  /** Where tokens are generated: here, or the remote backends. */
  private readonly generator: Generator;
  private readonly remote: RemoteBackend | undefined;

  constructor(private readonly deps: EngineDeps) {
    this.scheduler = new FairScheduler(deps.options.maxConcurrent, deps.options.maxQueue);
    this.threads = deps.options.threads ?? availableParallelism();
    if (deps.options.remote) this.remote = new RemoteBackend(deps.options.remote);
    this.generator = this.remote ?? localGenerator;
  }

  get options(): ServingConfig {
    return this.deps.options;
  }

  isOperator(principal: Principal | undefined): boolean {
    return principal !== undefined && this.deps.operators.includes(principal.address.toLowerCase());
  }

  /** Loads the configured base models; a failure is reported by `state()`, not thrown. */
  async start(): Promise<void> {
    for (const name of this.deps.options.baseModels) {
      try {
        const base = await this.base(name);
        // With remote backends only the vocabulary is needed here (prompts are tokenized
        // locally); the weights stay on disk unless an embeddings call asks for them.
        if (this.remote) await base.tokenize('');
        else await base.load();
      } catch (error) {
        this.startError = `base model "${name}": ${(error as Error).message}`;
        throw error;
      }
    }
  }

  async close(): Promise<void> {
    this.scheduler.close(new OpenLedgerError('ENGINE_UNAVAILABLE', 'The node is shutting down.'));
    for (const base of this.bases.values()) {
      await (await base.catch(() => undefined))?.close();
    }
    await (await this.llama?.catch(() => undefined))?.dispose();
  }

  state(): {
    ok: boolean;
    detail: string;
    bases: RuntimeStats[];
    scheduler: SchedulerStats;
    adapters: number;
    remotes: RemoteStats[] | undefined;
  } {
    const bases: RuntimeStats[] = [];
    for (const runtime of this.loadedBases()) bases.push(runtime.stats());
    const scheduler = this.scheduler.stats();
    const loaded = bases.filter((b) => b.loaded);
    const remotes = this.remote?.stats();
    const up = remotes?.filter((r) => r.healthy).length;
    const detail = this.startError
      ? `failed: ${this.startError}`
      : remotes
        ? `forwarding to ${up} of ${remotes.length} remote backends healthy (${remotes
            .map((r) => `${r.url}: ${r.healthy ? 'ok' : `down, ${r.lastError}`}`)
            .join('; ')}); ${scheduler.running} running, ${scheduler.queued} queued`
        : loaded.length === 0
          ? 'idle: no model loaded'
          : `serving ${loaded
              .map(
                (b) =>
                  `${b.name} (${b.attachedAdapters} adapters, ${mib(b.attachedBytes)} of ${mib(b.adapterBudgetBytes)} MiB)`,
              )
              .join(', ')}; ${scheduler.running} running, ${scheduler.queued} queued`;
    return {
      ok: this.startError === undefined && (up === undefined || up > 0),
      detail,
      bases,
      scheduler,
      adapters: this.adapters.size,
      remotes,
    };
  }

  // ----- models and adapters --------------------------------------------------------------------

  async listModels(): Promise<ModelEntry[]> {
    const created = Math.floor(this.startedAt / 1000);
    const loaded = new Set(
      this.loadedBases()
        .filter((b) => b.stats().loaded)
        .map((b) => b.info.name),
    );
    const entries: ModelEntry[] = (await this.deps.catalog.list()).map((m) => ({
      id: m.name,
      kind: 'base' as const,
      parent: undefined,
      adapter: undefined,
      loaded: loaded.has(m.name),
      created,
    }));
    const resident = new Set(this.loadedBases().flatMap((b) => b.attachedIds()));
    for (const [name, id] of [...this.names].sort(([a], [b]) => a.localeCompare(b))) {
      const record = this.adapters.get(id)!;
      entries.push({
        id: name,
        kind: 'adapter',
        parent: record.baseModel,
        adapter: id,
        loaded: resident.has(id),
        created,
      });
    }
    const published = await this.deps.db
      .select()
      .from(schema.models)
      .where(eq(schema.models.active, true));
    for (const row of published.sort((a, b) => a.id - b.id)) {
      entries.push({
        id: `model:${row.id}`,
        kind: 'published',
        parent: row.baseModelName,
        adapter: row.adapterBlobId,
        loaded: resident.has(row.adapterBlobId),
        created: Math.floor(row.createdAt.getTime() / 1000),
      });
    }
    return entries;
  }

  /** The registered adapters, with whether each is in memory now. */
  listAdapters(): (Omit<AdapterRecord, 'names'> & { names: string[]; resident: boolean })[] {
    const resident = new Set(this.loadedBases().flatMap((b) => b.attachedIds()));
    return [...this.adapters.values()].map((a) => ({
      ...a,
      names: [...a.names],
      resident: resident.has(a.id),
    }));
  }

  /**
   * vLLM's load_lora_adapter: names an adapter from a file or folder on the node (copied into
   * the blob store, so its identity cannot change under the name) or from the blob store by
   * hash. It is checked against its base now; llama.cpp attaches it on first use.
   */
  async loadAdapter(input: {
    name: string;
    path: string;
    baseModel?: string;
    pinned?: boolean;
  }): Promise<AdapterRecord> {
    checkAdapterName(input.name);
    if (this.names.has(input.name)) {
      throw new OpenLedgerError('CONFLICT', `An adapter named "${input.name}" is already loaded.`, {
        hint: 'Unload it first (POST /v1/unload_lora_adapter) or choose another name.',
      });
    }
    const hash = blobReference(input.path);
    let id: string;
    if (hash !== undefined) {
      id = hash;
    } else {
      // A GGUF as it is; a PEFT folder (local or hf:) imported for its base first.
      id = await storeAdapterSource(input.path, {
        blobs: this.deps.blobs,
        catalog: this.deps.catalog,
        baseModel: input.baseModel,
        defaultBase: () => this.defaultBase(),
      });
    }
    const record = await this.adapterFromBlob(id, input.baseModel);
    if (input.pinned) await this.pin(record);
    record.names.add(input.name);
    this.names.set(input.name, record.id);
    return record;
  }

  /** Forgets the name. The adapter's memory is released at the base model's next recycle. */
  unloadAdapter(name: string): AdapterRecord {
    const id = this.names.get(name);
    if (id === undefined) {
      throw new OpenLedgerError('ADAPTER_NOT_FOUND', `There is no adapter named "${name}".`);
    }
    this.names.delete(name);
    const record = this.adapters.get(id)!;
    record.names.delete(name);
    if (record.names.size === 0) record.pinned = false;
    return record;
  }

  private async pin(record: AdapterRecord): Promise<void> {
    const pinnedBytes = [...this.adapters.values()]
      .filter((a) => a.pinned && a.baseModel === record.baseModel && a.id !== record.id)
      .reduce((sum, a) => sum + a.bytes, 0);
    // Pinned adapters never leave; half the budget stays for the others.
    if (pinnedBytes + record.bytes > this.deps.options.adapterBudgetBytes / 2) {
      throw new OpenLedgerError(
        'ADAPTER_BUDGET_EXCEEDED',
        `Pinning this adapter would hold ${pinnedBytes + record.bytes} bytes of pinned adapters; at most half of the ${this.deps.options.adapterBudgetBytes}-byte budget may be pinned.`,
      );
    }
    record.pinned = true;
  }

  /** What `model` and `adapters` name. */
  async resolve(model: string, extra: readonly AdapterRequest[] = []): Promise<Target> {
    if (extra.length > MAX_ADAPTERS_PER_REQUEST) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `At most ${MAX_ADAPTERS_PER_REQUEST} adapters may be composed in one request.`,
        { details: { field: 'adapters' } },
      );
    }
    let baseName: string;
    let adapters: AdapterUse[] = [];
    let publishedModelId: number | undefined;
    const named = await this.namedAdapter(model, undefined);
    if (named) {
      baseName = named.adapter.baseModel;
      adapters.push({ adapter: named.adapter, weight: 1 });
      publishedModelId = named.publishedModelId;
    } else {
      baseName = await this.baseName(model);
    }
    for (const [i, request] of extra.entries()) {
      const weight = request.weight ?? 1;
      if (!Number.isFinite(weight) || Math.abs(weight) > MAX_ADAPTER_WEIGHT) {
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          `adapters[${i}].weight must be a number from -${MAX_ADAPTER_WEIGHT} to ${MAX_ADAPTER_WEIGHT}.`,
          { details: { field: `adapters[${i}].weight` } },
        );
      }
      const found = await this.namedAdapter(request.id, baseName);
      if (!found) {
        throw new OpenLedgerError(
          'ADAPTER_NOT_FOUND',
          `There is no adapter "${request.id}" (adapters[${i}]).`,
          {
            hint: 'Name a loaded adapter, an adapter blob hash or a published model (model:<id>).',
          },
        );
      }
      await this.ensureCompatible(found.adapter, baseName);
      adapters.push({ adapter: found.adapter, weight });
      publishedModelId ??= found.publishedModelId;
    }
    // The same adapter twice is one adapter at the summed weight.
    const merged = new Map<string, AdapterUse>();
    for (const use of adapters) {
      const seen = merged.get(use.adapter.id);
      merged.set(use.adapter.id, {
        adapter: use.adapter,
        weight: (seen?.weight ?? 0) + use.weight,
      });
    }
    adapters = [...merged.values()];
    // A published model's adapter is priced however it is named: its hash is public on-chain,
    // and an operator may have loaded the same file under a name.
    publishedModelId ??= await this.publishedModelOf(adapters);
    return { model, base: await this.base(baseName), adapters, publishedModelId };
  }

  /** The active published model whose adapter is one of these, if any. */
  private async publishedModelOf(adapters: readonly AdapterUse[]): Promise<number | undefined> {
    if (adapters.length === 0) return undefined;
    const [row] = await this.deps.db
      .select({ id: schema.models.id })
      .from(schema.models)
      .where(
        and(
          inArray(
            schema.models.adapterBlobId,
            adapters.map((u) => u.adapter.id),
          ),
          eq(schema.models.active, true),
        ),
      )
      .orderBy(asc(schema.models.id))
      .limit(1);
    return row?.id;
  }

  /** An adapter by name, `model:<id>`, `adapter:<sha256>` or bare sha256; undefined if none. */
  private async namedAdapter(
    reference: string,
    baseHint: string | undefined,
  ): Promise<{ adapter: AdapterRecord; publishedModelId: number | undefined } | undefined> {
    const byName = this.names.get(reference);
    if (byName) return { adapter: this.adapters.get(byName)!, publishedModelId: undefined };
    const published = /^model:(\d{1,9})$/.exec(reference);
    if (published) {
      const id = Number(published[1]);
      const [row] = await this.deps.db.select().from(schema.models).where(eq(schema.models.id, id));
      if (!row || !row.active) {
        throw new OpenLedgerError(
          'MODEL_NOT_FOUND',
          row
            ? `The published model ${id} is deactivated.`
            : `There is no published model ${id} on this node.`,
        );
      }
      return {
        adapter: await this.adapterFromBlob(row.adapterBlobId, row.baseModelName),
        publishedModelId: id,
      };
    }
    const hash = blobReference(reference);
    if (hash !== undefined) {
      return { adapter: await this.adapterFromBlob(hash, baseHint), publishedModelId: undefined };
    }
    return undefined;
  }

  /** An adapter from the blob store by content hash, checked against its base once. */
  private async adapterFromBlob(id: string, baseHint: string | undefined): Promise<AdapterRecord> {
    const known = this.adapters.get(id);
    if (known) {
      if (baseHint !== undefined) await this.ensureCompatible(known, baseHint);
      return known;
    }
    if (!(await this.deps.blobs.has(id))) {
      throw new OpenLedgerError('ADAPTER_NOT_FOUND', `There is no adapter ${id} on this node.`);
    }
    const file = this.deps.blobs.pathOf(id);
    // The blob store names files by their hash; check the bytes once before trusting it.
    if ((await sha256File(file)) !== id) {
      throw new OpenLedgerError('BLOB_CORRUPT', `Blob ${id} no longer matches its hash.`);
    }
    const baseName = baseHint ?? (await this.adapterBaseName(file));
    const base = await this.base(baseName);
    const { header } = await checkAdapterFile(file, { name: baseName, shape: base.info.shape });
    void header;
    const record: AdapterRecord = {
      id,
      path: file,
      bytes: (await this.deps.blobs.stat(id)).size,
      baseModel: baseName,
      names: new Set(),
      source: 'blob',
      pinned: false,
      lastUsedAt: 0,
      uses: 0,
    };
    this.adapters.set(id, record);
    this.compatible.add(`${id}@${baseName}`);
    return record;
  }

  private async ensureCompatible(adapter: AdapterRecord, baseName: string): Promise<void> {
    const key = `${adapter.id}@${baseName}`;
    if (this.compatible.has(key)) return;
    const base = await this.base(baseName);
    await checkAdapterFile(adapter.path, { name: baseName, shape: base.info.shape });
    this.compatible.add(key);
  }

  /** The base an adapter file names (general.base_model.0.name) when the node has it, else the default. */
  private async adapterBaseName(file: string): Promise<string> {
    const header = await readGguf(file).catch(() => undefined);
    const named = header ? ggufString(header.metadata, 'general.base_model.0.name', '') : '';
    if (named) {
      const models = await this.deps.catalog.list();
      if (models.some((m) => m.name === named)) return named;
    }
    return this.defaultBase();
  }

  private async defaultBase(): Promise<string> {
    if (this.deps.options.baseModels.length > 0) {
      return (await this.deps.catalog.resolve(this.deps.options.baseModels[0]!)).name;
    }
    const models = await this.deps.catalog.list();
    const builtin = models.find((m) => m.name === BUILTIN_MODEL_NAME);
    const chosen = builtin ?? models[0];
    if (!chosen) {
      throw new OpenLedgerError('ENGINE_UNAVAILABLE', 'This node has no base model to serve.', {
        hint: 'Run `npm run build:model`, or put a GGUF in <data-dir>/models.',
      });
    }
    return chosen.name;
  }

  /** A catalogue name, or 404 in OpenAI's words. */
  private async baseName(model: string): Promise<string> {
    try {
      return (await this.deps.catalog.resolve(model)).name;
    } catch {
      throw new OpenLedgerError('MODEL_NOT_FOUND', `The model \`${model}\` does not exist.`, {
        hint: 'GET /v1/models lists the base models, adapters and published models (model:<id>) of this node.',
      });
    }
  }

  private base(reference: string): Promise<BaseRuntime> {
    const cached = this.bases.get(reference);
    if (cached) return cached;
    const loading = (async () => {
      const entry = await this.deps.catalog.resolve(reference);
      const existing = entry.name !== reference ? this.bases.get(entry.name) : undefined;
      if (existing) return existing;
      const llama = await this.getLlama();
      const trained = entry.contextLength;
      return new BaseRuntime(
        llama,
        {
          name: entry.name,
          path: entry.path,
          bytes: entry.bytes,
          sha256: await sha256File(entry.path),
          trainedContextLength: trained,
          shape: await readBaseShape(entry.path),
        },
        {
          threads: this.threads,
          adapterBudgetBytes: this.deps.options.adapterBudgetBytes,
          contextSize: Math.min(this.deps.options.contextSize, trained ?? Infinity),
          sequencesPerContext: Math.min(4, this.deps.options.maxConcurrent),
          maxContexts: this.deps.options.maxContexts,
        },
        () =>
          [...this.adapters.values()]
            .filter((a) => a.pinned || a.lastUsedAt > 0)
            .sort((a, b) => Number(b.pinned) - Number(a.pinned) || b.lastUsedAt - a.lastUsedAt),
      );
    })();
    this.bases.set(reference, loading);
    loading.then(
      (runtime) => {
        this.runtimes.set(runtime.info.name, runtime);
        if (reference !== runtime.info.name) this.bases.set(runtime.info.name, loading);
      },
      () => this.bases.delete(reference),
    );
    return loading;
  }

  private loadedBases(): BaseRuntime[] {
    return [...this.runtimes.values()];
  }

  /** The llama.cpp binding this engine runs on (shared with the RAG embedder). */
  getLlama(): Promise<Llama> {
    this.llama ??= getLlama({
      gpu: false,
      build: 'never',
      maxThreads: this.threads,
      logLevel: 'error' as never,
    });
    return this.llama;
  }

  // ----- inference ------------------------------------------------------------------------------

  async generate(request: GenerateRequest): Promise<GenerateResult> {
    const received = performance.now();
    const target = await this.resolve(request.model, request.adapters);
    const base = target.base;
    let prompt: Token[];
    let stops: string[] = [...(request.sampling.stop ?? [])];
    if (request.endpoint === 'chat.completions') {
      const rendered = await base.renderChat(chatHistory(request.messages ?? []));
      prompt = rendered.tokens;
      stops = [...stops, ...rendered.stops];
    } else if (Array.isArray(request.prompt)) {
      prompt = checkTokens(request.prompt, base) as Token[];
    } else {
      prompt = await base.tokenize(request.prompt ?? '');
    }
    this.generator.check?.(target.adapters);
    const room = base.contextSize - prompt.length;
    if (room < 1) {
      throw new OpenLedgerError(
        'CONTEXT_LENGTH_EXCEEDED',
        `This model's maximum context length is ${base.contextSize} tokens; the prompt has ${prompt.length}.`,
        {
          hint: 'Shorten the prompt.',
          details: { field: request.messages ? 'messages' : 'prompt' },
        },
      );
    }
    const cap = this.deps.options.maxTokens;
    const asked = request.sampling.maxTokens;
    if (asked !== undefined && asked > cap) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `max_tokens is ${asked}; this node allows at most ${cap}.`,
        { details: { field: 'max_tokens' } },
      );
    }
    const maxTokens = Math.min(asked ?? cap, room);

    // Before queueing: a caller short of the largest possible fee gets 402 at once.
    const paid = await this.deps.payments?.authorize({
      caller: request.caller.address,
      publishedModelId: target.publishedModelId,
      promptTokens: prompt.length,
      maxTokens,
    });
    try {
      return await this.run(request, target, prompt, stops, maxTokens, received, paid);
    } finally {
      // After the usage row (with its fee) is written, it counts as unsettled instead.
      paid?.release();
    }
  }

  private async run(
    request: GenerateRequest,
    target: Target,
    prompt: Token[],
    stops: string[],
    maxTokens: number,
    received: number,
    paid: { fee(promptTokens: number, completionTokens: number): bigint } | undefined,
  ): Promise<GenerateResult> {
    const base = target.base;
    if (this.scheduler.saturated && target.adapters.length > 0) {
      this.generator.prefetch?.(base, target.adapters);
    }
    const release = await this.scheduler.acquire(setKey(target.adapters), request.signal);
    const granted = performance.now();
    const id = randomUUID();
    const created = Math.floor(Date.now() / 1000);
    let result;
    try {
      result = await this.generator.run({
        base,
        adapters: target.adapters,
        prompt,
        options: {
          maxTokens,
          temperature: request.sampling.temperature ?? 1,
          topP: request.sampling.topP,
          seed: request.sampling.seed,
          presencePenalty: request.sampling.presencePenalty,
          frequencyPenalty: request.sampling.frequencyPenalty,
          stop: stops,
          signal: request.signal,
          deadline: Date.now() + this.deps.options.maxRequestSeconds * 1000,
        },
        onStart: () => {
          for (const use of target.adapters) {
            use.adapter.lastUsedAt = Date.now();
            use.adapter.uses++;
          }
          request.onStart?.({ id, created, model: request.model, promptTokens: prompt.length });
        },
        onText: request.onText,
      });
    } finally {
      release();
    }
    const finished = performance.now();
    const { receipt, hash } = await recordUsage(this.deps.db, {
      id,
      chainId: this.deps.chainId,
      caller: request.caller,
      endpoint: request.endpoint,
      model: request.model,
      baseModel: { name: base.info.name, sha256: base.info.sha256 },
      adapters: target.adapters.map((u) => ({ id: u.adapter.id, weight: u.weight })),
      publishedModelId: target.publishedModelId,
      promptTokens: prompt,
      completionTokens: result.completionTokens,
      output: result.text,
      status: result.ended === 'cancelled' ? 'cancelled' : 'completed',
      latencyMs: finished - received,
      feeWei: paid?.fee(prompt.length, result.completionTokens),
    });
    const generating = (finished - granted - (result.firstTokenMs ?? 0)) / 1000;
    return {
      id,
      created,
      model: request.model,
      promptTokens: prompt.length,
      text: result.text,
      finishReason: result.finishReason,
      completionTokens: result.completionTokens,
      baseModel: base.info.name,
      adapters: target.adapters.map((u) => ({
        id: u.adapter.id,
        name: [...u.adapter.names][0],
        weight: u.weight,
      })),
      backend: result.backend,
      receipt,
      receiptHash: hash,
      timings: {
        queueMs: round(granted - received),
        firstTokenMs: result.firstTokenMs === undefined ? undefined : round(result.firstTokenMs),
        totalMs: round(finished - received),
        tokensPerSecond:
          result.completionTokens > 1 && generating > 0
            ? round((result.completionTokens - 1) / generating)
            : 0,
        coldAdapters: result.coldAdapters,
        ended: result.ended,
      },
    };
  }

  /** A chat prompt's length in tokens as this model renders it, and the model's context. */
  async measureChat(input: {
    model: string;
    adapters?: AdapterRequest[];
    messages: readonly ChatMessage[];
  }): Promise<{ tokens: number; contextSize: number }> {
    const target = await this.resolve(input.model, input.adapters);
    const rendered = await target.base.renderChat(chatHistory(input.messages));
    return { tokens: rendered.tokens.length, contextSize: target.base.contextSize };
  }

  /**
   * log p(continuation | chat prompt) under the model with these adapters: the sum of the log
   * probabilities of the continuation's tokens, each after the prompt and the tokens before it
   * (teacher forcing; what ContextCite ablations score). Runs outside the request scheduler, for
   * background attribution.
   */
  async scoreChat(input: {
    model: string;
    adapters?: AdapterRequest[];
    messages: readonly ChatMessage[];
    continuation: string;
  }): Promise<{ logprob: number; tokens: number }> {
    const target = await this.resolve(input.model, input.adapters);
    const prompt = (await target.base.renderChat(chatHistory(input.messages))).tokens;
    const continuation = await target.base.tokenizeContinuation(input.continuation);
    if (continuation.length === 0) return { logprob: 0, tokens: 0 };
    if (prompt.length + continuation.length > target.base.contextSize)
      throw new OpenLedgerError(
        'CONTEXT_LENGTH_EXCEEDED',
        `Scoring needs ${prompt.length + continuation.length} tokens; the model's context is ${target.base.contextSize}.`,
      );
    const lease = await target.base.lease(target.adapters);
    try {
      // The raw logits of the whole vocabulary: llama.cpp's probabilities (and filtered logits)
      // come after its default sampling filters, which drop tokens and renormalise.
      const ask = (token: Token): ControlledEvaluateInputItem => [
        token,
        { generateNext: { logits: true } },
      ];
      const all = [...prompt, ...continuation];
      const items: ControlledEvaluateInputItem[] = all
        .slice(0, -1)
        .map((token, i) => (i < prompt.length - 1 ? token : ask(token)));
      const out = await lease.sequence.controlledEvaluate(items);
      let logprob = 0;
      for (let i = prompt.length - 1; i < all.length - 1; i++) {
        const logits = out[i]?.next?.logits;
        if (!logits) throw new Error(`llama.cpp gave no logits at position ${i}`);
        let max = -Infinity;
        for (const value of logits.values()) if (value > max) max = value;
        let sum = 0;
        for (const value of logits.values()) sum += Math.exp(value - max);
        // log softmax of the forced token
        logprob += (logits.get(all[i + 1]!) ?? -Infinity) - max - Math.log(sum);
      }
      return { logprob, tokens: continuation.length };
    } finally {
      await lease.release();
    }
  }

  async embed(input: {
    model: string;
    texts: string[];
    caller: Principal;
    signal: AbortSignal;
  }): Promise<{
    vectors: (readonly number[])[];
    promptTokens: number;
    baseModel: string;
    receipt: InferenceReceipt;
    receiptHash: string;
  }> {
    const received = performance.now();
    const target = await this.resolve(input.model);
    if (target.adapters.length > 0) {
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        'Embeddings come from a base model; name one, not an adapter.',
        { details: { field: 'model' } },
      );
    }
    const release = await this.scheduler.acquire('embeddings', input.signal);
    const vectors: (readonly number[])[] = [];
    const tokens: number[] = [];
    try {
      for (const text of input.texts) {
        const result = await target.base.embed(text);
        vectors.push(result.vector);
        tokens.push(...(await target.base.tokenize(text)));
      }
    } finally {
      release();
    }
    const { receipt, hash } = await recordUsage(this.deps.db, {
      chainId: this.deps.chainId,
      caller: input.caller,
      endpoint: 'embeddings' satisfies InferenceEndpoint,
      model: input.model,
      baseModel: { name: target.base.info.name, sha256: target.base.info.sha256 },
      adapters: [],
      publishedModelId: undefined,
      promptTokens: tokens,
      completionTokens: 0,
      output: JSON.stringify(vectors.map((v) => v.length)),
      status: 'completed',
      latencyMs: performance.now() - received,
    });
    return {
      vectors,
      promptTokens: tokens.length,
      baseModel: target.base.info.name,
      receipt,
      receiptHash: hash,
    };
  }
}

/** `sha256:<hex>`, `adapter:<hex>` or a bare blob id: the hash; anything else: undefined. */
function blobReference(reference: string): string | undefined {
  const hash = reference.replace(/^(sha256|adapter):/, '');
  return isBlobId(hash) ? hash : undefined;
}

/** A prompt given as token ids: each must be in the base model's vocabulary. */
function checkTokens(tokens: readonly number[], base: BaseRuntime): readonly number[] {
  const vocabulary = base.info.shape.tensors.get('token_embd.weight')?.[1];
  const bad = tokens.findIndex(
    (t) => !Number.isInteger(t) || t < 0 || (vocabulary !== undefined && t >= vocabulary),
  );
  if (bad >= 0) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `prompt[${bad}] is ${tokens[bad]}, not a token id of ${base.info.name} (0 to ${(vocabulary ?? 1) - 1}).`,
      { details: { field: 'prompt' } },
    );
  }
  return tokens;
}

/** OpenAI messages as node-llama-cpp's chat history. */
function chatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  return messages.map((message, i) => {
    const text =
      typeof message.content === 'string'
        ? message.content
        : (message.content ?? [])
            .map((part) => {
              if (part.type !== 'text' || typeof part.text !== 'string') {
                throw new OpenLedgerError(
                  'VALIDATION_FAILED',
                  `messages[${i}].content has a "${part.type}" part; only text is supported.`,
                  { details: { field: `messages[${i}].content` } },
                );
              }
              return part.text;
            })
            .join('');
    switch (message.role) {
      case 'system':
      case 'developer':
        return { type: 'system', text };
      case 'user':
        return { type: 'user', text };
      case 'assistant':
        return { type: 'model', response: [text] };
      default:
        throw new OpenLedgerError(
          'VALIDATION_FAILED',
          `messages[${i}].role "${message.role}" is not supported (system, developer, user, assistant).`,
          { details: { field: `messages[${i}].role` } },
        );
    }
  });
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
