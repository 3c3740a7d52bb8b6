import { createHash, randomUUID } from 'node:crypto';
import { copyFile, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import OpenAI, { APIConnectionError, APIError } from 'openai';
import type { RemoteConfig } from '../config.ts';
import { readGguf } from '../engine/gguf/index.ts';
import { loadLoraGguf } from '../engine/index.ts';
import { OpenLedgerError } from '../errors.ts';
import { peftBaseOf, peftFiles } from '../factory/exports.ts';
import { chooseBackend } from './affinity.ts';
import type { GenerationJob, GenerationOutcome, Generator } from './generate.ts';
import { mergeLoraFiles } from './merge.ts';
import { setKey, type AdapterUse, type BaseRuntime } from './runtime.ts';

/** How long a server that failed a request is passed over (unless every server is down). */
export const REMOTE_COOLDOWN_MS = 5_000;

export interface RemoteStats {
  url: string;
  healthy: boolean;
  inFlight: number;
  /** Adapters loaded on it through load_lora_adapter by this node. */
  adapters: number;
  served: number;
  failures: number;
  lastError: string | undefined;
}

interface Server {
  url: string;
  client: OpenAI;
  inFlight: number;
  downUntil: number;
  served: number;
  failures: number;
  lastError: string | undefined;
  /** Adapter ids this node had the server load (load_lora_adapter), by the sha256 name. */
  loaded: Map<string, Promise<void>>;
}

/** The one adapter the servers apply to a request: its sha256 and where they read it. */
interface ServedAdapter {
  id: string;
  remotePath: string;
}

/** A failure of one server: `retry` when another server might do better. */
class ServerFailure extends Error {
  constructor(
    readonly error: OpenLedgerError,
    readonly retry: boolean,
  ) {
    super(error.message);
  }
}

/**
 * Generation forwarded to OpenAI-compatible LoRA servers (vLLM with `--enable-lora`, SGLang,
 * another OpenLedger node): the engine keeps everything else — the prompt is rendered and
 * tokenized here from the base GGUF's vocabulary and sent as token ids (`/v1/completions`
 * takes them), so limits, payment and the receipt's prompt hash are exactly as for local
 * generation. An adapter is written to the shared adapter folder (GGUF or PEFT, named by its
 * sha256) and loaded with vLLM's `POST /v1/load_lora_adapter` on first use per server; the
 * request names it by that sha256. vLLM applies one LoRA per request, so a mix of adapters is
 * served as their exact linear merge (merge.ts: the ranks concatenated, so ΔW = Σ wᵢ ΔWᵢ as
 * llama.cpp computes it), made once per mix. Among several servers, an adapter set keeps going to the
 * same one (rendezvous hashing with bounded load), where it is loaded already.
 *
 * The official `openai` client does the HTTP, SSE parsing and error decoding: it is the
 * reference implementation of exactly this protocol.
 */
export class RemoteBackend implements Generator {
  private readonly servers: Server[];
  /** Adapter files written to the adapter folder: remote path by adapter id. */
  private readonly written = new Map<string, Promise<string>>();
  /** Linear merges made for mixes, by the mix. */
  private readonly merges = new Map<string, Promise<ServedAdapter>>();

  constructor(
    private readonly config: RemoteConfig,
    private readonly cooldownMs = REMOTE_COOLDOWN_MS,
  ) {
    this.servers = config.backends.map((url) => ({
      url,
      client: new OpenAI({
        baseURL: url,
        // vLLM without --api-key ignores the header; the client insists on some value.
        apiKey: config.apiKey ?? 'none',
        maxRetries: 0,
        // The engine's own deadline (--max-request-seconds) bounds every call.
        timeout: 24 * 3600 * 1000,
      }),
      inFlight: 0,
      downUntil: 0,
      served: 0,
      failures: 0,
      lastError: undefined,
      loaded: new Map(),
    }));
  }

  stats(): RemoteStats[] {
    const now = Date.now();
    return this.servers.map((s) => ({
      url: s.url,
      healthy: s.downUntil <= now,
      inFlight: s.inFlight,
      adapters: s.loaded.size,
      served: s.served,
      failures: s.failures,
      lastError: s.lastError,
    }));
  }

  check(adapters: readonly AdapterUse[]): void {
    // vLLM applies a LoRA at its trained scale; a mix becomes a merge, but one adapter at
    // another weight would be a merge of one, which merge.ts does not make.
    if (adapters.length === 1 && adapters[0]!.weight !== 1) {
      throw new OpenLedgerError(
        'ADAPTER_MIX_UNSUPPORTED',
        `This node forwards generation to remote LoRA servers, which apply an adapter at weight 1; this one is asked at ${adapters[0]!.weight}.`,
        {
          hint: 'Call the adapter at weight 1, or mix it with another adapter.',
          details: { field: 'adapters' },
        },
      );
    }
    if (adapters.length > 0 && this.config.adapterDir === undefined) {
      throw new OpenLedgerError(
        'ENGINE_UNAVAILABLE',
        'This node forwards generation to remote servers and has no folder to hand them adapters.',
        { hint: 'Start it with --remote-adapter-dir to serve adapters.' },
      );
    }
  }

  async run(job: GenerationJob): Promise<GenerationOutcome> {
    this.check(job.adapters);
    const adapter = await this.prepare(job.adapters, job.base);
    const key = setKey(job.adapters);
    const tried = new Set<Server>();
    let failure: ServerFailure | undefined;
    // One retry on another server, while nothing has been sent to the client.
    for (let attempt = 0; attempt < 2; attempt++) {
      const candidates = this.servers.filter((s) => !tried.has(s));
      const now = Date.now();
      const chosen = chooseBackend(
        key,
        candidates.map((s) => ({ id: s.url, inFlight: s.inFlight, healthy: s.downUntil <= now })),
      );
      const server = candidates.find((s) => s.url === chosen?.id);
      if (!server) break;
      tried.add(server);
      server.inFlight++;
      try {
        const outcome = await this.runOn(server, job, adapter);
        server.served++;
        return outcome;
      } catch (error) {
        if (!(error instanceof ServerFailure)) throw error;
        failure = error;
        if (error.retry) {
          server.failures++;
          server.lastError = error.message;
          server.downUntil = Date.now() + this.cooldownMs;
        }
        if (!error.retry || job.options.signal.aborted) break;
      } finally {
        server.inFlight--;
      }
    }
    throw failure?.error ?? new OpenLedgerError('REMOTE_BACKEND_FAILED', 'No remote backend.');
  }

  /** The adapter file the servers load for this set (undefined: the base alone). */
  private async prepare(
    adapters: readonly AdapterUse[],
    base: BaseRuntime,
  ): Promise<ServedAdapter | undefined> {
    if (adapters.length === 0) return undefined;
    if (adapters.length === 1) {
      const { id, path: file } = adapters[0]!.adapter;
      return { id, remotePath: await this.write(id, file, base) };
    }
    const key = adapters.map((u) => `${u.adapter.id}*${u.weight}`).join('+');
    let merging = this.merges.get(key);
    if (!merging) {
      merging = (async () => {
        const merged = await mergeLoraFiles({
          method: 'linear',
          params: {},
          sources: adapters.map((u) => ({ path: u.adapter.path, weight: u.weight })),
          baseModel: base.info.name,
        });
        const id = createHash('sha256').update(merged.bytes).digest('hex');
        return { id, remotePath: await this.write(id, merged.bytes, base) };
      })();
      this.merges.set(key, merging);
      merging.catch(() => this.merges.delete(key));
    }
    return merging;
  }

  private async runOn(
    server: Server,
    job: GenerationJob,
    adapter: ServedAdapter | undefined,
  ): Promise<GenerationOutcome> {
    let cold = false;
    if (adapter) cold = await this.ensureLoaded(server, adapter, job.options.deadline);
    const model = adapter ? adapter.id : (this.config.model ?? job.base.info.name);

    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(
      () => {
        timedOut = true;
        controller.abort();
      },
      Math.max(0, job.options.deadline - Date.now()),
    );
    const cancel = () => controller.abort();
    job.options.signal.addEventListener('abort', cancel, { once: true });
    if (job.options.signal.aborted) controller.abort();
    const started = performance.now();
    let begun = false;
    let text = '';
    let firstTokenMs: number | undefined;
    let finish: string | null = null;
    let completionTokens: number | undefined;
    try {
      const o = job.options;
      const stream = await server.client.completions.create(
        {
          model,
          prompt: job.prompt,
          max_tokens: o.maxTokens,
          temperature: o.temperature,
          ...(o.topP === undefined ? {} : { top_p: o.topP }),
          ...(o.seed === undefined ? {} : { seed: o.seed }),
          ...(o.presencePenalty === undefined ? {} : { presence_penalty: o.presencePenalty }),
          ...(o.frequencyPenalty === undefined ? {} : { frequency_penalty: o.frequencyPenalty }),
          ...(o.stop.length > 0 ? { stop: [...o.stop] } : {}),
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: controller.signal },
      );
      begun = true;
      job.onStart();
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        if (choice?.text) {
          firstTokenMs ??= performance.now() - started;
          text += choice.text;
          job.onText(choice.text);
        }
        if (choice?.finish_reason) finish = choice.finish_reason;
        if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
      }
    } catch (error) {
      if (!controller.signal.aborted || (!begun && timedOut)) {
        throw serverFailure(server, error, begun, timedOut);
      }
    } finally {
      clearTimeout(timer);
      job.options.signal.removeEventListener('abort', cancel);
    }
    // The openai client ends a stream quietly when it is aborted, so look at why it ended.
    if (controller.signal.aborted && finish === null) {
      if (!begun) job.onStart();
      // Cut short, the remote's usage never came: count what arrived in the same vocabulary.
      return {
        text,
        completionTokens: await countTokens(job.base, text),
        finishReason: 'length',
        ended: job.options.signal.aborted ? 'cancelled' : 'time_limit',
        firstTokenMs,
        coldAdapters: cold,
        backend: server.url,
      };
    }
    return {
      text,
      completionTokens: completionTokens ?? (await countTokens(job.base, text)),
      finishReason: finish === 'length' ? 'length' : 'stop',
      ended: finish === 'length' ? 'max_tokens' : 'stop',
      firstTokenMs,
      coldAdapters: cold,
      backend: server.url,
    };
  }

  /** Has the server load the adapter (once); answers whether it had to. */
  private async ensureLoaded(
    server: Server,
    adapter: ServedAdapter,
    deadline: number,
  ): Promise<boolean> {
    const known = server.loaded.get(adapter.id);
    if (known) {
      await known;
      return false;
    }
    const loading = (async () => {
      try {
        await server.client.post('/load_lora_adapter', {
          body: { lora_name: adapter.id, lora_path: adapter.remotePath },
          // Not the caller's signal: other requests may be waiting for the same load.
          timeout: Math.max(1000, deadline - Date.now()),
        });
      } catch (error) {
        // vLLM answers 400 ("has already been loaded"), an OpenLedger node 409: both mean done.
        const status = error instanceof APIError ? error.status : undefined;
        if ((status === 400 || status === 409) && /already/i.test((error as Error).message)) {
          return;
        }
        throw serverFailure(server, error, false, false, 'loading an adapter');
      }
    })();
    server.loaded.set(adapter.id, loading);
    try {
      await loading;
    } catch (error) {
      server.loaded.delete(adapter.id);
      throw error;
    }
    return true;
  }

  /**
   * The adapter in the shared folder, in the servers' format, named by its sha256 and written
   * under a temporary name then renamed, so a server never reads half a file. Answers the path
   * as the servers see it. `source`: the GGUF file, or its bytes.
   */
  private write(id: string, source: string | Uint8Array, base: BaseRuntime): Promise<string> {
    let written = this.written.get(id);
    if (written) return written;
    written = (async () => {
      const dir = this.config.adapterDir!;
      const gguf = this.config.adapterFormat === 'gguf';
      const name = gguf ? `${id}.gguf` : id;
      const target = path.join(dir.local, name);
      if (!(await exists(target))) {
        await mkdir(dir.local, { recursive: true });
        const temporary = path.join(dir.local, `.${name}.${randomUUID()}.tmp`);
        try {
          if (gguf) {
            if (typeof source === 'string') await copyFile(source, temporary);
            else await writeFile(temporary, source);
          } else {
            const files = peftFiles(
              await loadLoraGguf(source),
              peftBaseOf(await readGguf(base.info.path), base.info.name),
            );
            await mkdir(temporary);
            for (const file of files) await writeFile(path.join(temporary, file.name), file.bytes);
          }
          await rename(temporary, target).catch(async (error: unknown) => {
            // Another node sharing the folder got there first (a folder cannot be renamed
            // onto a non-empty one): same name, same bytes.
            if (!(await exists(target))) throw error;
          });
        } finally {
          await rm(temporary, { recursive: true, force: true });
        }
      }
      return path.posix.join(dir.remote, name);
    })();
    this.written.set(id, written);
    written.catch(() => this.written.delete(id));
    return written;
  }
}

/** What went wrong on a server, as the caller should see it, and whether to try another. */
function serverFailure(
  server: Server,
  error: unknown,
  begun: boolean,
  timedOut: boolean,
  doing = 'generating',
): ServerFailure {
  if (error instanceof ServerFailure) return error;
  if (error instanceof OpenLedgerError) return new ServerFailure(error, false);
  if (timedOut) {
    return new ServerFailure(
      new OpenLedgerError(
        'REMOTE_BACKEND_TIMEOUT',
        `The remote backend ${server.url} did not answer within the request's time limit.`,
        { hint: 'Check the server, or raise --max-request-seconds.' },
      ),
      false,
    );
  }
  let message: string;
  let retry = !begun;
  if (error instanceof APIError && error.status !== undefined) {
    message = `answered ${error.status} while ${doing}: ${remoteMessage(error)}`;
    // A 4xx other than 429 would be the same on every server.
    retry &&= error.status >= 500 || error.status === 429;
  } else if (error instanceof APIConnectionError) {
    message = `could not be reached: ${causeOf(error)}`;
  } else {
    message = `failed while ${doing}: ${(error as Error).message}`;
  }
  return new ServerFailure(
    new OpenLedgerError('REMOTE_BACKEND_FAILED', `The remote backend ${server.url} ${message}`, {
      cause: error,
    }),
    retry,
  );
}

function remoteMessage(error: APIError): string {
  const body = error.error as { message?: unknown } | undefined;
  return typeof body?.message === 'string' ? body.message : error.message;
}

function causeOf(error: Error): string {
  let cause: unknown = error;
  while (cause instanceof Error && cause.cause !== undefined) cause = cause.cause;
  return cause instanceof Error ? cause.message : String(cause);
}

/** Tokens of a completion text, in the base's vocabulary, without the BOS a prompt gets. */
async function countTokens(base: BaseRuntime, text: string): Promise<number> {
  if (text === '') return 0;
  return (await base.tokenize(text)).length - (await base.tokenize('')).length;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
