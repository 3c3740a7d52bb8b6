import type {
  ChatWrapper,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaEmbeddingContext,
  LlamaModel,
  Token,
} from 'node-llama-cpp';
import { resolveChatWrapper, type ChatHistoryItem } from 'node-llama-cpp';
import { OpenLedgerError } from '../errors.ts';
import type { AdapterRecord, BaseShape } from './adapters.ts';

/** One adapter of a request, with its scale. */
export interface AdapterUse {
  adapter: AdapterRecord;
  weight: number;
}

export interface BaseModelInfo {
  /** The catalogue name. */
  name: string;
  path: string;
  bytes: number;
  sha256: string;
  /** What the file says it was trained for; requests are also capped by the serving context. */
  trainedContextLength: number | undefined;
  shape: BaseShape;
}

export interface RuntimeOptions {
  threads: number;
  /** Bytes of adapters one model instance may hold before it is recycled. */
  adapterBudgetBytes: number;
  /** Tokens per sequence (prompt and completion together). */
  contextSize: number;
  sequencesPerContext: number;
  /** Pooled contexts kept per base model (idle ones beyond this are closed, least recent first). */
  maxContexts: number;
}

interface PooledContext {
  context: LlamaContext;
  key: string;
  inUse: number;
  lastUsedAt: number;
}

/** A loaded copy of the base model and everything llama.cpp attached to it. */
interface Instance {
  generation: number;
  model: LlamaModel;
  chatWrapper: ChatWrapper;
  /** Adapters whose tensors llama.cpp holds in this instance (it frees none before the model). */
  attached: Map<string, number>;
  attachedBytes: number;
  contexts: PooledContext[];
  embedding: Promise<LlamaEmbeddingContext> | undefined;
  /** Sequences and embedding calls running on it. */
  active: number;
  draining: boolean;
  drained: (() => void) | undefined;
}

/** What a running request holds: a sequence on a context with its adapter set attached. */
export interface Lease {
  model: LlamaModel;
  chatWrapper: ChatWrapper;
  sequence: LlamaContextSequence;
  /** Whether this lease attached adapters not yet in memory (a cold start). */
  cold: boolean;
  /** The model instance's generation (1 for the first load; +1 per recycle). */
  generation: number;
  release(): Promise<void>;
}

export interface RuntimeStats {
  name: string;
  loaded: boolean;
  generation: number;
  recycles: number;
  attachedAdapters: number;
  attachedBytes: number;
  adapterBudgetBytes: number;
  contexts: number;
  activeSequences: number;
  adapterLoads: number;
  /** Adapters attached ahead of their request's turn (prefetched from the queue). */
  prefetches: number;
}

/**
 * One base model in memory, serving any set of its adapters.
 *
 * llama.cpp attaches a LoRA to the model (llama_adapter_lora_init) and node-llama-cpp frees it
 * only with the model, so every distinct adapter ever used would stay resident. The runtime
 * therefore counts the adapter bytes attached to the current model instance, and when an
 * adapter set would take it over the budget it *recycles* the instance: new work waits, the
 * running sequences finish, the model (and with it every adapter) is disposed, and the base is
 * loaded again — cheap, since the GGUF is memory-mapped and its pages are still in the page
 * cache. Pinned and recently used adapters (up to half the budget) are attached again at once;
 * others come back on their next use. The
 * resident memory is thus bounded by base + budget + contexts, whatever the number of adapters.
 */
export class BaseRuntime {
  private instance: Instance | undefined;
  /** The vocabulary alone (no weights): tokenizes prompts while instances come and go. */
  private vocab: Promise<{ model: LlamaModel; chatWrapper: ChatWrapper }> | undefined;
  private generation = 0;
  private recycles = 0;
  private adapterLoads = 0;
  private prefetches = 0;
  /** Serialises instance changes and context creation (not generation). */
  private lock: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly llama: Llama,
    readonly info: BaseModelInfo,
    private readonly options: RuntimeOptions,
    /**
     * The adapters worth keeping through a recycle, most wanted first (pinned, then most
     * recently used): as many as fit in half the budget are attached again at once.
     */
    private readonly keep: () => AdapterRecord[],
  ) {}

  get contextSize(): number {
    return this.options.contextSize;
  }

  stats(): RuntimeStats {
    const i = this.instance;
    return {
      name: this.info.name,
      loaded: i !== undefined,
      generation: i?.generation ?? 0,
      recycles: this.recycles,
      attachedAdapters: i?.attached.size ?? 0,
      attachedBytes: i?.attachedBytes ?? 0,
      adapterBudgetBytes: this.options.adapterBudgetBytes,
      contexts: i?.contexts.length ?? 0,
      activeSequences: i?.active ?? 0,
      adapterLoads: this.adapterLoads,
      prefetches: this.prefetches,
    };
  }

  /** The adapter ids currently in memory. */
  attachedIds(): string[] {
    return [...(this.instance?.attached.keys() ?? [])];
  }

  async load(): Promise<void> {
    await this.exclusive(async () => {
      await this.ensureInstance();
    });
  }

  /** A completion prompt as tokens (with BOS where the model wants one). */
  async tokenize(text: string): Promise<Token[]> {
    const { model } = await this.vocabulary();
    const tokens = model.tokenize(text);
    const bos = model.tokens.bos;
    return model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...tokens] : tokens;
  }

  /** Tokens of text that continues a prompt (no BOS). */
  async tokenizeContinuation(text: string): Promise<Token[]> {
    const { model } = await this.vocabulary();
    return model.tokenize(text);
  }

  /**
   * A conversation as the model's chat template renders it (node-llama-cpp picks the template
   * from the GGUF), with the template's own stop strings.
   */
  async renderChat(history: ChatHistoryItem[]): Promise<{ tokens: Token[]; stops: string[] }> {
    const { model, chatWrapper } = await this.vocabulary();
    const state = chatWrapper.generateContextState({
      chatHistory: [...history, { type: 'model', response: [] }],
    });
    const stops: string[] = [];
    for (const trigger of state.stopGenerationTriggers) {
      // Special-token triggers (EOS, end-of-turn) are end-of-generation tokens, caught as such.
      if (trigger.values.every((part) => typeof part === 'string'))
        stops.push(trigger.values.join(''));
    }
    return { tokens: state.contextText.tokenize(model.tokenizer), stops };
  }

  private vocabulary(): Promise<{ model: LlamaModel; chatWrapper: ChatWrapper }> {
    this.vocab ??= this.llama
      .loadModel({ modelPath: this.info.path, vocabOnly: true })
      .then((model) => ({ model, chatWrapper: resolveChatWrapper(model) }));
    return this.vocab;
  }

  /** A sequence on a context with exactly these adapters at these scales. */
  async lease(set: readonly AdapterUse[]): Promise<Lease> {
    const bytes = uniqueBytes(set);
    if (bytes > this.options.adapterBudgetBytes) {
      throw new OpenLedgerError(
        'ADAPTER_BUDGET_EXCEEDED',
        `These adapters take ${bytes} bytes together; this node holds at most ${this.options.adapterBudgetBytes} bytes of adapters.`,
        { hint: 'Use fewer or smaller adapters, or raise --adapter-budget on the node.' },
      );
    }
    const key = setKey(set);
    return this.exclusive(async () => {
      let instance = await this.ensureInstance();
      const missing = set.filter((u) => !instance.attached.has(u.adapter.id));
      if (instance.attachedBytes + uniqueBytes(missing) > this.options.adapterBudgetBytes) {
        instance = await this.recycle(instance, set);
      }
      const cold = set.some((u) => !instance.attached.has(u.adapter.id));
      let pooled = instance.contexts.find((c) => c.key === key && c.context.sequencesLeft > 0);
      if (!pooled) {
        await this.trimContexts(instance, this.options.maxContexts - 1);
        const context = await this.createContext(instance, set);
        pooled = { context, key, inUse: 0, lastUsedAt: 0 };
        instance.contexts.push(pooled);
      }
      const sequence = pooled.context.getSequence();
      pooled.inUse++;
      pooled.lastUsedAt = Date.now();
      instance.active++;
      const held = pooled;
      let released = false;
      return {
        model: instance.model,
        chatWrapper: instance.chatWrapper,
        sequence,
        cold,
        generation: instance.generation,
        release: async () => {
          if (released) return;
          released = true;
          await sequence.dispose();
          held.inUse--;
          held.lastUsedAt = Date.now();
          this.leave(instance);
        },
      };
    });
  }

  /**
   * Attaches the adapters of a request that has to wait for a slot, so that its turn starts
   * warm. Only when they fit beside what is attached: a recycle would stall the running
   * requests for a request that is not yet due, so that one waits for its turn. Failures are
   * left for the request itself to meet (and report) when it runs.
   */
  prefetch(set: readonly AdapterUse[]): void {
    const missing = set.filter((u) => !this.instance?.attached.has(u.adapter.id));
    if (missing.length === 0 || uniqueBytes(set) > this.options.adapterBudgetBytes) return;
    void this.exclusive(async () => {
      const instance = this.instance;
      if (!instance || instance.draining || this.closed) return;
      const fresh = missing.filter((u) => !instance.attached.has(u.adapter.id));
      if (fresh.length === 0) return;
      if (instance.attachedBytes + uniqueBytes(fresh) > this.options.adapterBudgetBytes) return;
      await (await this.createContext(instance, fresh)).dispose();
      this.prefetches += fresh.length;
    }).catch(() => undefined);
  }

  /** The embedding of a text by the base model (no adapters). */
  async embed(text: string): Promise<{ vector: readonly number[]; tokens: number }> {
    const { instance, embedding } = await this.exclusive(async () => {
      const current = await this.ensureInstance();
      current.embedding ??= current.model.createEmbeddingContext({
        threads: this.options.threads,
        contextSize: this.options.contextSize,
      });
      current.active++;
      return { instance: current, embedding: current.embedding };
    });
    try {
      const context = await embedding;
      const tokens = instance.model.tokenize(text);
      if (tokens.length >= this.options.contextSize) {
        throw new OpenLedgerError(
          'CONTEXT_LENGTH_EXCEEDED',
          `The input has ${tokens.length} tokens; this model serves at most ${this.options.contextSize - 1}.`,
        );
      }
      const result = await context.getEmbeddingFor(tokens);
      return { vector: result.vector, tokens: tokens.length };
    } finally {
      this.leave(instance);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.exclusive(async () => {
      const instance = this.instance;
      this.instance = undefined;
      if (instance) await instance.model.dispose();
      await (await this.vocab)?.model.dispose();
      this.vocab = undefined;
    });
  }

  // ----- internals ------------------------------------------------------------------------------

  private async exclusive<T>(run: () => Promise<T>): Promise<T> {
    const previous = this.lock;
    let done!: () => void;
    this.lock = new Promise((resolve) => (done = resolve));
    await previous;
    try {
      return await run();
    } finally {
      done();
    }
  }

  private async ensureInstance(incoming: readonly AdapterUse[] = []): Promise<Instance> {
    if (this.closed) throw new OpenLedgerError('ENGINE_UNAVAILABLE', 'The node is shutting down.');
    if (this.instance) return this.instance;
    const model = await this.llama.loadModel({ modelPath: this.info.path });
    const instance: Instance = {
      generation: ++this.generation,
      model,
      chatWrapper: resolveChatWrapper(model),
      attached: new Map(),
      attachedBytes: 0,
      contexts: [],
      embedding: undefined,
      active: 0,
      draining: false,
      drained: undefined,
    };
    this.instance = instance;
    // Hot adapters come back at once (the rest on their next use), leaving room for the
    // incoming set. Attaching through a throwaway context is the only public way to make
    // llama.cpp load an adapter; it then stays with the model.
    const incomingIds = new Set(incoming.map((u) => u.adapter.id));
    let room = Math.min(
      this.options.adapterBudgetBytes / 2,
      this.options.adapterBudgetBytes - uniqueBytes(incoming),
    );
    const back: AdapterUse[] = [];
    for (const adapter of this.keep()) {
      if (adapter.baseModel !== this.info.name || incomingIds.has(adapter.id)) continue;
      if (adapter.bytes > room) {
        if (adapter.pinned) continue;
        break;
      }
      room -= adapter.bytes;
      back.push({ adapter, weight: 1 });
    }
    if (back.length > 0) await (await this.createContext(instance, back)).dispose();
    return instance;
  }

  /** Waits for the running sequences, disposes the model and every adapter, loads it again. */
  private async recycle(instance: Instance, next: readonly AdapterUse[]): Promise<Instance> {
    instance.draining = true;
    if (instance.active > 0) {
      await new Promise<void>((resolve) => (instance.drained = resolve));
    }
    this.instance = undefined;
    await instance.model.dispose();
    this.recycles++;
    return this.ensureInstance(next);
  }

  private leave(instance: Instance): void {
    instance.active--;
    if (instance.active === 0 && instance.drained) {
      const resolve = instance.drained;
      instance.drained = undefined;
      resolve();
    }
  }

  private async createContext(
    instance: Instance,
    set: readonly AdapterUse[],
  ): Promise<LlamaContext> {
    const fresh = set.filter((u) => !instance.attached.has(u.adapter.id));
    let context: LlamaContext;
    try {
      context = await instance.model.createContext({
        threads: this.options.threads,
        contextSize: this.options.contextSize,
        sequences: this.options.sequencesPerContext,
        ...(set.length > 0
          ? {
              lora: {
                adapters: set.map((u) => ({ filePath: u.adapter.path, scale: u.weight })),
              },
            }
          : {}),
      });
    } catch (error) {
      throw new OpenLedgerError(
        set.length > 0 ? 'ADAPTER_INVALID' : 'ENGINE_UNAVAILABLE',
        `llama.cpp could not create a context${set.length > 0 ? ' with these adapters' : ''}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    for (const use of fresh) {
      if (instance.attached.has(use.adapter.id)) continue;
      instance.attached.set(use.adapter.id, use.adapter.bytes);
      instance.attachedBytes += use.adapter.bytes;
      this.adapterLoads++;
    }
    return context;
  }

  /** Closes idle contexts, least recently used first, until at most `keep` remain. */
  private async trimContexts(instance: Instance, keep: number): Promise<void> {
    const idle = instance.contexts
      .filter((c) => c.inUse === 0)
      .sort((a, b) => a.lastUsedAt - b.lastUsedAt);
    while (instance.contexts.length > Math.max(0, keep) && idle.length > 0) {
      const victim = idle.shift()!;
      instance.contexts.splice(instance.contexts.indexOf(victim), 1);
      await victim.context.dispose();
    }
  }
}

/** The identity of an adapter set: ids with scales, in order (llama.cpp sums them). */
export function setKey(set: readonly AdapterUse[]): string {
  return set.map((u) => `${u.adapter.id}*${u.weight}`).join('+') || 'base';
}

function uniqueBytes(set: readonly AdapterUse[]): number {
  const seen = new Map<string, number>();
  for (const u of set) seen.set(u.adapter.id, u.adapter.bytes);
  let total = 0;
  for (const bytes of seen.values()) total += bytes;
  return total;
}
