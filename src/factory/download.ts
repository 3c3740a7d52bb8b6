/**
 * Where base models come from: a local GGUF file, a local Hugging Face folder (converted to
 * GGUF), or a Hugging Face repository downloaded when the machine is online. Every model ends up
 * as `<models-dir>/<name>.gguf`, which the ModelCatalog offers by name.
 *
 * Hub downloads fetch `<endpoint>/<repo>/resolve/<revision>/<file>` (endpoint https://huggingface.co,
 * or OPENLEDGER_HF_ENDPOINT / HF_ENDPOINT; HF_TOKEN as a bearer token for gated or private
 * repos) into `<models-dir>/hf/<owner>--<name>/<revision>/<file>`: each file goes to `<file>.part`
 * first, resumed with a Range request when a part is there, then renamed into place; its sha256
 * is checked against the hub's `X-Linked-Etag`/`ETag` when that is a sha256 (LFS files), and
 * recorded in `download.json` beside the files. Offline, the first request fails at once and the
 * error is MODEL_DOWNLOAD_FAILED; a stalled transfer is abandoned after `idleTimeoutMs`.
 *
 * Written with fetch rather than @huggingface/hub: that library's cache follows huggingface_hub's
 * layout and gives no resumable part files, and this is a few requests.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { OpenLedgerError } from '../errors.ts';
import type { ModelCatalog } from './models.ts';
import { readGguf } from '../engine/index.ts';
import { convertHfFolder, isHfFolder } from '../engine/hf/index.ts';
import { temporaryPath, writeFileAtomic } from '../util/fs.ts';

export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';

export interface HubRef {
  /** `owner/name` */
  repo: string;
  /** A branch, tag or commit (default `main`). */
  revision: string;
  /** A `.gguf` file of the repo; absent: the repo is a safetensors model folder. */
  file: string | undefined;
}

const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;

/**
 * `owner/name[@revision][:file.gguf]` (or `…:file.gguf@revision`), or undefined when `text` is
 * not of that form.
 */
export function parseHubRef(text: string): HubRef | undefined {
  const match = /^([^/@:\s]+)\/([^/@:\s]+)(?:@([^:\s]+))?(?::([^@\s]+))?(?:@([^:\s]+))?$/.exec(
    text.trim(),
  );
  if (!match) return undefined;
  const [, owner, name, rev1, file, rev2] = match;
  if (!REPO_PART.test(owner!) || !REPO_PART.test(name!) || (rev1 && rev2)) return undefined;
  if (
    file !== undefined &&
    (!file.toLowerCase().endsWith('.gguf') || file.split('/').includes('..'))
  )
    return undefined;
  return { repo: `${owner}/${name}`, revision: rev1 ?? rev2 ?? 'main', file };
}

export interface ModelSourceOptions {
  /** Where models are put: `<data-dir>/models`. */
  modelsDir: string;
  /** The name to give the model (default: from the file, folder or repo). */
  name?: string;
  /** Default: OPENLEDGER_HF_ENDPOINT, HF_ENDPOINT, then https://huggingface.co. */
  endpoint?: string;
  /** Default: HF_TOKEN. */
  token?: string;
  /** A transfer that receives nothing for this long is abandoned (default 60 s). */
  idleTimeoutMs?: number;
  /** Called as bytes arrive. */
  onProgress?: (file: string, received: number, total: number | undefined) => void;
}

export interface ResolvedModel {
  /** The catalogue name: the file name without `.gguf`. */
  name: string;
  path: string;
  source: 'gguf' | 'hf-folder' | 'hub-gguf' | 'hub-folder';
  /** sha256 of the GGUF file. */
  sha256: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function checkName(name: string): string {
  const clean = name.replace(/\.gguf$/i, '');
  if (!NAME.test(clean))
    throw new OpenLedgerError('VALIDATION_FAILED', `"${name}" is not a usable model name.`, {
      hint: 'use letters, digits, dots, dashes and underscores (at most 128)',
      details: { field: 'name' },
    });
  return clean;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Places `file` at `target` without copying when the file system allows (a hard link). */
async function place(file: string, target: string): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true });
  const tmp = temporaryPath(target);
  try {
    await link(file, tmp).catch(() => copyFile(file, tmp));
    await rename(tmp, target);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

async function refuseExisting(target: string, name: string): Promise<void> {
  if (
    await stat(target).then(
      () => true,
      () => false,
    )
  )
    throw new OpenLedgerError('CONFLICT', `There is already a model named "${name}".`, {
      hint: 'choose another name with --name',
      details: { field: 'name', name },
    });
}

/**
 * Makes `ref` a model of the catalogue in `modelsDir` and answers it: a GGUF path is checked and
 * linked (or copied) in, a Hugging Face folder converted, a hub reference downloaded (then
 * converted when it is a safetensors folder). Refuses a name already taken (CONFLICT).
 */
export async function resolveModelSource(
  ref: string,
  options: ModelSourceOptions,
): Promise<ResolvedModel> {
  const local = await stat(ref).catch(() => undefined);
  if (local?.isFile()) {
    await readGguf(ref); // a readable GGUF, or GGUF_INVALID now
    const name = checkName(options.name ?? path.basename(ref));
    const target = path.join(options.modelsDir, `${name}.gguf`);
    if (path.resolve(ref) === path.resolve(target))
      return { name, path: target, source: 'gguf', sha256: await sha256File(target) };
    await refuseExisting(target, name);
    await place(ref, target);
    return { name, path: target, source: 'gguf', sha256: await sha256File(target) };
  }
  if (local?.isDirectory()) {
    if (!(await isHfFolder(ref)))
      throw new OpenLedgerError('VALIDATION_FAILED', `${ref} is a folder without config.json.`, {
        hint: 'give a GGUF file or a Hugging Face model folder',
      });
    const name = checkName(options.name ?? path.basename(path.resolve(ref)));
    const target = path.join(options.modelsDir, `${name}.gguf`);
    await refuseExisting(target, name);
    await convertHfFolder(ref, target, { name });
    return { name, path: target, source: 'hf-folder', sha256: await sha256File(target) };
  }
  const hub = parseHubRef(ref);
  if (!hub)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `"${ref}" is neither a file, a folder nor a Hugging Face repo id.`,
      {
        hint: 'give a GGUF path, a Hugging Face folder, or owner/name[@revision][:file.gguf]',
      },
    );
  return downloadHubModel(hub, options);
}

/** Downloads a hub model into the cache and places (or converts) it into the catalogue. */
export async function downloadHubModel(
  hub: HubRef,
  options: ModelSourceOptions,
): Promise<ResolvedModel> {
  const [owner, repoName] = hub.repo.split('/') as [string, string];
  const defaultName = hub.file
    ? `${owner}--${path.basename(hub.file).replace(/\.gguf$/i, '')}`
    : `${owner}--${repoName}`;
  const name = checkName(options.name ?? defaultName);
  const target = path.join(options.modelsDir, `${name}.gguf`);
  await refuseExisting(target, name);
  const cache = path.join(
    options.modelsDir,
    'hf',
    `${owner}--${repoName}`,
    hub.revision.replace(/[^A-Za-z0-9._-]/g, '_'),
  );
  const fetchFile = (file: string, required = true) =>
    downloadFile(hub, file, cache, options, required);
  if (hub.file) {
    const got = (await fetchFile(hub.file))!;
    await readGguf(got.path);
    await place(got.path, target);
    return { name, path: target, source: 'hub-gguf', sha256: got.sha256 };
  }
  await fetchFile('config.json');
  await fetchFile('tokenizer.json');
  await fetchFile('tokenizer_config.json', false);
  const index = await fetchFile('model.safetensors.index.json', false);
  if (index) {
    const { weight_map: map } = JSON.parse(await readFile(index.path, 'utf8')) as {
      weight_map?: Record<string, string>;
    };
    for (const shard of [...new Set(Object.values(map ?? {}))].sort()) await fetchFile(shard);
  } else {
    await fetchFile('model.safetensors');
  }
  await convertHfFolder(cache, target, { name, repository: hub.repo });
  return { name, path: target, source: 'hub-folder', sha256: await sha256File(target) };
}

function failed(message: string, hint: string, cause?: unknown): OpenLedgerError {
  return new OpenLedgerError('MODEL_DOWNLOAD_FAILED', message, { hint, cause });
}

/**
 * One file of a repo into `cache/<file>`: resumed from `<file>.part`, checked against the hub's
 * sha256, renamed into place, recorded in download.json. Answers undefined for a 404 of a file
 * that is not required; a file already complete is not fetched again. (Also serving's adapter
 * downloads, src/serving/adapters.ts.)
 */
export async function downloadFile(
  hub: HubRef,
  file: string,
  cache: string,
  options: ModelSourceOptions,
  required: boolean,
): Promise<{ path: string; sha256: string } | undefined> {
  const dest = path.join(cache, file);
  const record = path.join(cache, 'download.json');
  const records = JSON.parse(await readFile(record, 'utf8').catch(() => '{}')) as Record<
    string,
    { sha256: string; bytes: number }
  >;
  if (
    records[file] &&
    (await stat(dest).then(
      (s) => s.size === records[file]!.bytes,
      () => false,
    ))
  )
    return { path: dest, sha256: records[file]!.sha256 };

  const endpoint = (
    options.endpoint ??
    process.env.OPENLEDGER_HF_ENDPOINT ??
    process.env.HF_ENDPOINT ??
    DEFAULT_HF_ENDPOINT
  ).replace(/\/+$/, '');
  const token = options.token ?? process.env.HF_TOKEN;
  const url = `${endpoint}/${hub.repo}/resolve/${encodeURIComponent(hub.revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
  const part = `${dest}.part`;
  await mkdir(path.dirname(dest), { recursive: true });
  const have = await stat(part).then(
    (s) => s.size,
    () => 0,
  );
  const idle = options.idleTimeoutMs ?? 60_000;
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(), idle);
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(), idle);
  };
  let response: Response;
  try {
    response = await fetch(url, {
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(have > 0 ? { range: `bytes=${have}-` } : {}),
        'user-agent': 'openledger-ts',
      },
      redirect: 'follow',
      signal: controller.signal,
    });
  } catch (cause) {
    clearTimeout(timer);
    throw failed(
      `Cannot reach ${endpoint} to download ${hub.repo}/${file}.`,
      'this machine looks offline; give a local GGUF file or Hugging Face folder instead',
      cause,
    );
  }
  try {
    if (response.status === 404 && !required) {
      await response.body?.cancel();
      return undefined;
    }
    if (response.status === 416 && have > 0) {
      // The part is already whole (or longer than the file): start again.
      await response.body?.cancel();
      await rm(part, { force: true });
      clearTimeout(timer);
      return downloadFile(hub, file, cache, options, required);
    }
    if (response.status !== 200 && response.status !== 206) {
      await response.body?.cancel();
      const hint =
        response.status === 401 || response.status === 403
          ? 'the repo is gated or private: accept its terms on the hub and set HF_TOKEN'
          : response.status === 404
            ? 'check the repo id, the revision and the file name'
            : 'try again later';
      throw failed(`${hub.repo}/${file}: the hub answered HTTP ${response.status}.`, hint);
    }
    const append = response.status === 206 && have > 0;
    const totalHeader = response.headers.get('content-length');
    const total = totalHeader === null ? undefined : Number(totalHeader) + (append ? have : 0);
    const etag = (response.headers.get('x-linked-etag') ?? response.headers.get('etag') ?? '')
      .replace(/^W\//, '')
      .replaceAll('"', '');
    const handle = await open(part, append ? 'a' : 'w');
    let received = append ? have : 0;
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        touch();
        await handle.write(chunk);
        received += chunk.byteLength;
        options.onProgress?.(file, received, total);
      }
      await handle.sync();
    } catch (cause) {
      throw failed(
        `The download of ${hub.repo}/${file} stopped after ${received} bytes.`,
        'run the same command again: it resumes from the part already downloaded',
        cause,
      );
    } finally {
      await handle.close();
    }
    if (total !== undefined && received !== total)
      throw failed(
        `The download of ${hub.repo}/${file} ended at ${received} of ${total} bytes.`,
        'run the same command again: it resumes from the part already downloaded',
      );
    const sha256 = await sha256File(part);
    if (/^[0-9a-f]{64}$/.test(etag) && etag !== sha256) {
      await rm(part, { force: true });
      throw failed(
        `${hub.repo}/${file} arrived with sha256 ${sha256}; the hub says ${etag}.`,
        'the part file was corrupt and is removed; run the same command again',
      );
    }
    await rename(part, dest);
    records[file] = { sha256, bytes: received };
    await writeFileAtomic(record, `${JSON.stringify(records, null, 2)}\n`);
    return { path: dest, sha256 };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The catalogue name of a base model that `up --base-model` names: a model the catalogue offers
 * (by name, or by a path inside its folders), else one added as `openledger models add` does (a
 * GGUF path, a Hugging Face folder, or a hub repo id, downloaded once when online). A later
 * start finds what an earlier one added under the same name.
 */
export async function ensureBaseModel(
  ref: string,
  catalog: ModelCatalog,
  modelsDir: string,
): Promise<string> {
  const known = await catalog.resolve(ref).catch(() => undefined);
  if (known) return known.name;
  try {
    return (await resolveModelSource(ref, { modelsDir })).name;
  } catch (error) {
    const existing = (error as OpenLedgerError).details as { name?: unknown } | undefined;
    if (
      error instanceof OpenLedgerError &&
      error.code === 'CONFLICT' &&
      typeof existing?.name === 'string'
    ) {
      return existing.name;
    }
    throw error;
  }
}
