import { stat } from 'node:fs/promises';
import { readGguf, tokenizerFromGguf } from '../engine/index.ts';
import type { BpeTokenizer, SentencePieceTokenizer } from '../engine/index.ts';
import { OpenLedgerError } from '../errors.ts';

type ModelTokenizer = SentencePieceTokenizer | BpeTokenizer;

const cache = new Map<string, { mtimeMs: number; tokenizer: ModelTokenizer }>();

/**
 * The tokenizer of a GGUF model on the node, from its header only (the tensors are not read);
 * cached per path and modification time.
 */
export async function loadTokenizer(file: string): Promise<ModelTokenizer> {
  if (!file.toLowerCase().endsWith('.gguf'))
    throw new OpenLedgerError('VALIDATION_FAILED', `${file} is not a .gguf file.`);
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile())
    throw new OpenLedgerError('VALIDATION_FAILED', `There is no model file ${file} on the node.`);
  const hit = cache.get(file);
  if (hit && hit.mtimeMs === info.mtimeMs) return hit.tokenizer;
  const tokenizer = tokenizerFromGguf((await readGguf(file)).metadata);
  if (tokenizer === undefined)
    throw new OpenLedgerError('GGUF_UNSUPPORTED', `${file} has no tokenizer.`);
  if (cache.size >= 16) cache.delete(cache.keys().next().value!);
  cache.set(file, { mtimeMs: info.mtimeMs, tokenizer });
  return tokenizer;
}
