import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { BlobStore } from '../blobs/index.ts';
import { ggufString, readGguf, type GgufFile } from '../engine/gguf/index.ts';
import { OpenLedgerError } from '../errors.ts';
import { downloadFile } from '../factory/download.ts';
import type { ModelCatalog } from '../factory/models.ts';
import {
  PEFT_CONFIG_FILE,
  PEFT_WEIGHTS_FILE,
  importPeftAdapter,
  isPeftFolder,
  peftBaseModelName,
} from './adapter-import.ts';

/** An adapter the node can attach: a llama.cpp LoRA GGUF file, named by the sha256 of its bytes. */
export interface AdapterRecord {
  /** sha256 of the file (64 hex digits): the adapter's identity everywhere (blobs, receipts). */
  id: string;
  /** Where llama.cpp reads it: the blob store's file, or the operator's file. */
  path: string;
  bytes: number;
  /** The catalogue name of the base model it was checked against. */
  baseModel: string;
  /** Operator-given names (`load_lora_adapter`); empty for adapters called by hash or Model ID. */
  names: Set<string>;
  source: 'blob' | 'file';
  /** Pinned adapters are attached again at once after a model recycle and never dropped. */
  pinned: boolean;
  lastUsedAt: number;
  uses: number;
}

/** A base model's tensor shapes, read once from its GGUF header. */
export interface BaseShape {
  architecture: string;
  tensors: Map<string, number[]>;
}

export async function readBaseShape(file: string): Promise<BaseShape> {
  const header = await readGguf(file);
  return {
    architecture: ggufString(header.metadata, 'general.architecture', 'unknown'),
    tensors: new Map(header.tensors.map((t) => [t.name, t.dims])),
  };
}

const LORA_TENSOR = /^(.+)\.lora_([ab])$/;

/**
 * Checks that a file is a LoRA adapter llama.cpp can attach to this base, before llama.cpp
 * sees it: llama.cpp aborts the whole process on some malformed adapters (a non-float alpha)
 * and only says "failed to initialize" on others, so the node judges the file itself and
 * gives the caller a precise reason.
 */
export async function checkAdapterFile(
  file: string,
  base: { name: string; shape: BaseShape },
): Promise<{ header: GgufFile; rank: number }> {
  let header: GgufFile;
  try {
    header = await readGguf(file);
  } catch (error) {
    throw new OpenLedgerError(
      'ADAPTER_INVALID',
      `The adapter is not a readable GGUF file: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const invalid = (message: string, hint?: string) =>
    new OpenLedgerError('ADAPTER_INVALID', `The adapter is malformed: ${message}.`, {
      ...(hint === undefined ? {} : { hint }),
    });
  const meta = header.metadata;
  if (meta.get('general.type')?.value !== 'adapter' || meta.get('adapter.type')?.value !== 'lora') {
    throw invalid(
      'general.type must be "adapter" and adapter.type "lora"',
      'Pass a llama.cpp LoRA GGUF (what the Model Factory produces), not a base model.',
    );
  }
  const alpha = meta.get('adapter.lora.alpha');
  if (alpha !== undefined && alpha.type !== 'float32') {
    throw invalid(`adapter.lora.alpha is ${alpha.type}, llama.cpp needs float32`);
  }
  const architecture = ggufString(meta, 'general.architecture', '');
  if (architecture !== base.shape.architecture) {
    throw new OpenLedgerError(
      'ADAPTER_BASE_MISMATCH',
      `The adapter is for architecture "${architecture}", base model "${base.name}" is "${base.shape.architecture}".`,
    );
  }
  const pairs = new Map<string, { a?: number[]; b?: number[] }>();
  for (const tensor of header.tensors) {
    const match = LORA_TENSOR.exec(tensor.name);
    if (!match) throw invalid(`tensor "${tensor.name}" is not a lora_a or lora_b tensor`);
    if (tensor.dims.length !== 2) throw invalid(`tensor "${tensor.name}" is not 2-D`);
    const pair = pairs.get(match[1]!) ?? {};
    pair[match[2] as 'a' | 'b'] = tensor.dims;
    pairs.set(match[1]!, pair);
  }
  if (pairs.size === 0) throw invalid('it has no tensors');
  let rank = 0;
  for (const [target, { a, b }] of pairs) {
    if (!a || !b) throw invalid(`"${target}" lacks its lora_${a ? 'b' : 'a'} tensor`);
    const weight = base.shape.tensors.get(target);
    // A: ne = [in, r]; B: ne = [r, out]; the base weight: ne = [in, out].
    if (!weight || weight.length !== 2 || a[0] !== weight[0] || b[1] !== weight[1]) {
      throw new OpenLedgerError(
        'ADAPTER_BASE_MISMATCH',
        weight
          ? `The adapter's "${target}" is [${a[0]}, ${b[1]}]; base model "${base.name}" has [${weight.join(', ')}].`
          : `The adapter changes "${target}", which base model "${base.name}" does not have.`,
        { hint: 'Use the base model the adapter was trained on.' },
      );
    }
    if (a[1] !== b[0]) throw invalid(`"${target}" has ranks ${a[1]} and ${b[0]}`);
    rank = Math.max(rank, a[1]!);
  }
  return { header, rank };
}

/** sha256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** What a `lora_path` names on disk: a llama.cpp LoRA GGUF, or a PEFT folder to import. */
export type AdapterSource = { kind: 'gguf'; path: string } | { kind: 'peft'; dir: string };

/** `hf:owner/name[@revision][/subfolder-or-file.gguf]`, parsed. */
export interface HubAdapterRef {
  repo: string;
  revision: string;
  /** A folder inside the repo ('' for its root), or a `.gguf` file. */
  path: string;
}

const HUB_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;

/**
 * `hf:owner/name[@revision][/path]`, or undefined when `text` does not start with `hf:` (only
 * the explicit scheme goes to the hub: a mistyped local path must not turn into a download).
 * A revision is a branch, tag or commit without `/`; a path segment may not be `..`.
 */
export function parseHubAdapterRef(text: string): HubAdapterRef | undefined {
  if (!text.startsWith('hf:')) return undefined;
  const match = /^hf:([^/@\s]+)\/([^/@\s]+)(?:@([^/\s]+))?(?:\/(\S*))?$/.exec(text);
  const segments = (match?.[4] ?? '').split('/').filter(Boolean);
  if (
    !match ||
    !HUB_PART.test(match[1]!) ||
    !HUB_PART.test(match[2]!) ||
    segments.some((s) => s === '..' || s === '.')
  ) {
    throw new OpenLedgerError('VALIDATION_FAILED', `"${text}" is not a Hugging Face reference.`, {
      hint: 'Write hf:owner/name, hf:owner/name@revision, hf:owner/name/subfolder or hf:owner/name/file.gguf.',
      details: { field: 'lora_path' },
    });
  }
  return {
    repo: `${match[1]}/${match[2]}`,
    revision: match[3] ?? 'main',
    path: segments.join('/'),
  };
}

export interface AdapterSourceOptions {
  /** Where hub downloads are kept: `<models-dir>/hf`, beside the base models' downloads. */
  hubCacheDir?: string | undefined;
  /** Default: OPENLEDGER_HF_ENDPOINT, HF_ENDPOINT, then https://huggingface.co. */
  endpoint?: string;
  /** Default: HF_TOKEN. */
  token?: string;
}

/**
 * The files of a hub adapter in the cache (`<hubCacheDir>/<owner>--<name>/<revision>/<path>`, as
 * download.ts keeps base models: resumable, sha256-checked, fetched once). Offline:
 * MODEL_DOWNLOAD_FAILED, download.ts's error.
 */
async function downloadHubAdapter(
  ref: HubAdapterRef,
  options: AdapterSourceOptions,
): Promise<AdapterSource> {
  if (options.hubCacheDir === undefined)
    throw new OpenLedgerError('MODEL_DOWNLOAD_FAILED', 'This node has no folder for downloads.', {
      hint: 'Give the node a models folder (<data-dir>/models).',
    });
  const [owner, name] = ref.repo.split('/') as [string, string];
  const cache = path.join(
    options.hubCacheDir,
    `${owner}--${name}`,
    ref.revision.replace(/[^A-Za-z0-9._-]/g, '_'),
  );
  const hub = { repo: ref.repo, revision: ref.revision, file: undefined };
  const sourceOptions = {
    modelsDir: options.hubCacheDir,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.token === undefined ? {} : { token: options.token }),
  };
  if (ref.path.toLowerCase().endsWith('.gguf')) {
    const got = await downloadFile(hub, ref.path, cache, sourceOptions, true);
    return { kind: 'gguf', path: got!.path };
  }
  const inRepo = (file: string) => (ref.path ? `${ref.path}/${file}` : file);
  const config = await downloadFile(hub, inRepo(PEFT_CONFIG_FILE), cache, sourceOptions, false);
  if (!config)
    throw new OpenLedgerError(
      'ADAPTER_NOT_FOUND',
      `${ref.repo}${ref.path ? `/${ref.path}` : ''} at ${ref.revision} has no ${PEFT_CONFIG_FILE}.`,
      {
        hint: 'Name the folder of a PEFT adapter (hf:owner/name/subfolder) or a GGUF file (hf:owner/name/file.gguf).',
      },
    );
  // Absent: the import says so (and what to do about an adapter_model.bin).
  await downloadFile(hub, inRepo(PEFT_WEIGHTS_FILE), cache, sourceOptions, false);
  return { kind: 'peft', dir: path.dirname(config.path) };
}

/**
 * A `lora_path`: a GGUF file; a folder holding exactly one `.gguf` (vLLM's paths are folders);
 * else a PEFT folder (adapter_config.json + adapter_model.safetensors); or, when the node is
 * online, `hf:owner/name[@revision][/subfolder-or-file.gguf]`, downloaded first. Operators only:
 * it reads the node's own disk.
 */
export async function resolveAdapterPath(
  lora: string,
  options: AdapterSourceOptions = {},
): Promise<AdapterSource> {
  const hub = parseHubAdapterRef(lora);
  if (hub) return downloadHubAdapter(hub, options);
  const full = path.resolve(lora);
  const info = await stat(full).catch(() => undefined);
  if (!info) {
    throw new OpenLedgerError('ADAPTER_NOT_FOUND', `There is no file or folder "${lora}".`, {
      ...(/^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/.test(lora)
        ? { hint: `For the Hugging Face repository, write hf:${lora}.` }
        : {}),
    });
  }
  if (info.isFile()) return { kind: 'gguf', path: full };
  const names = await readdir(full);
  const ggufs = names.filter((n) => n.toLowerCase().endsWith('.gguf'));
  // convert_lora_to_gguf.py writes its GGUF into the PEFT folder: that file is what to load.
  if (ggufs.length === 1) return { kind: 'gguf', path: path.join(full, ggufs[0]!) };
  if (ggufs.length === 0 && (await isPeftFolder(full))) return { kind: 'peft', dir: full };
  if (ggufs.length === 0 && names.some((n) => /^adapter_model\.(safetensors|bin)$/.test(n))) {
    throw new OpenLedgerError(
      'ADAPTER_INVALID',
      `The folder "${lora}" has adapter weights but no ${PEFT_CONFIG_FILE}.`,
      { hint: 'A PEFT adapter folder needs the adapter_config.json that save_pretrained writes.' },
    );
  }
  throw new OpenLedgerError(
    'ADAPTER_INVALID',
    ggufs.length === 0
      ? `The folder "${lora}" holds neither a .gguf file nor a PEFT adapter (${PEFT_CONFIG_FILE}).`
      : `The folder "${lora}" holds ${ggufs.length} .gguf files; it must hold exactly one.`,
    { hint: 'Pass the adapter file itself, or a PEFT adapter folder.' },
  );
}

export interface AdapterStoreDeps extends AdapterSourceOptions {
  blobs: BlobStore;
  catalog: ModelCatalog;
  /** The base the caller named; else a PEFT adapter's own base_model_name_or_path, else this. */
  baseModel: string | undefined;
  defaultBase: () => Promise<string>;
}

/**
 * The catalogue model a PEFT adapter's `base_model_name_or_path` names: by name (`owner--name`
 * as `models add` names hub downloads, or the last path segment), or by the Hugging Face
 * repository its GGUF records.
 */
async function catalogModelFor(
  catalog: ModelCatalog,
  nameOrPath: string,
): Promise<string | undefined> {
  const models = await catalog.list();
  const names = new Set([nameOrPath, nameOrPath.replaceAll('/', '--'), path.basename(nameOrPath)]);
  const byName = models.find((m) => names.has(m.name));
  if (byName) return byName.name;
  for (const model of models) {
    const header = await readGguf(model.path).catch(() => undefined);
    const repo = header
      ? ggufString(header.metadata, 'general.source.huggingface.repository', '')
      : '';
    if (repo === nameOrPath) return model.name;
  }
  return undefined;
}

/**
 * Puts what `lora` names into the blob store and answers its id (the sha256 of the GGUF): a
 * GGUF as it is, a PEFT folder imported for its base first (src/serving/adapter-import.ts).
 */
export async function storeAdapterSource(lora: string, deps: AdapterStoreDeps): Promise<string> {
  const hubCacheDir =
    deps.hubCacheDir ??
    (deps.catalog.folders[0] === undefined ? undefined : path.join(deps.catalog.folders[0], 'hf'));
  const source = await resolveAdapterPath(lora, { ...deps, hubCacheDir });
  if (source.kind === 'gguf') return (await deps.blobs.putStream(createReadStream(source.path))).id;
  let baseName = deps.baseModel;
  if (baseName === undefined) {
    const named = await peftBaseModelName(source.dir);
    baseName =
      (named === undefined ? undefined : await catalogModelFor(deps.catalog, named)) ??
      (await deps.defaultBase());
  }
  const base = await deps.catalog.resolve(baseName);
  const imported = await importPeftAdapter(source.dir, {
    name: base.name,
    file: await readGguf(base.path),
  });
  return (await deps.blobs.put(imported.bytes)).id;
}

/** Names operators may give adapters: not ones that look like the other schemes. */
export function checkAdapterName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._\-/]{0,127}$/.test(name) || /^(model|adapter):/.test(name)) {
    throw new OpenLedgerError('VALIDATION_FAILED', `"${name}" is not a valid adapter name.`, {
      hint: 'Use 1-128 letters, digits, ".", "_", "-" or "/", starting with a letter or digit.',
      details: { field: 'lora_name' },
    });
  }
}
