/**
 * One entry point for a GGUF base model of any architecture the engine runs: the forward pass is
 * chosen by `general.architecture` (llama — which includes Mistral —, qwen2, gpt2) and the
 * tokenizer by `tokenizer.ggml.model` (SentencePiece or byte-level BPE).
 */
import { OpenLedgerError } from '../../errors.ts';
import { GgufFile, ggufString, readGguf } from '../gguf/index.ts';
import { tokenizerFromGguf } from '../tokenizer/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { loadGpt2Gguf } from './gpt2.ts';
import type { Gpt2Model } from './gpt2.ts';
import { loadLlamaFamilyGguf } from './llama.ts';
import type { LlamaModel } from './llama.ts';

/** A loaded model; `arch` tells which (and narrows `config` and `weights`). */
export type GgufModel = LlamaModel<Tokenizer> | Gpt2Model<Tokenizer>;

export interface LoadModelOptions {
  /** Use this tokenizer instead of the file's own. */
  tokenizer?: Tokenizer;
  /** Cap the KV cache below the model's context length, to save memory. */
  contextLength?: number;
}

const RUNS = ['llama', 'qwen2', 'gpt2'] as const;

/**
 * Loads a GGUF base model: Llama/Mistral (`llama`), Qwen2 (`qwen2`) or GPT-2 (`gpt2`), with F32,
 * F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K tensors, and its tokenizer. Another architecture is
 * GGUF_UNSUPPORTED (422).
 */
export async function loadModelGguf(
  input: string | Uint8Array | GgufFile,
  options: LoadModelOptions = {},
): Promise<GgufModel> {
  const file = input instanceof GgufFile ? input : await readGguf(input);
  const arch = ggufString(file.metadata, 'general.architecture');
  if (!(RUNS as readonly string[]).includes(arch)) {
    throw new OpenLedgerError(
      'GGUF_UNSUPPORTED',
      `${file.source}: architecture '${arch}' is not supported (supported: ${RUNS.join(', ')}; Mistral files are 'llama')`,
      { details: { arch, supported: RUNS } },
    );
  }
  const tokenizer: Tokenizer | undefined = options.tokenizer ?? tokenizerFromGguf(file.metadata);
  const modelOptions = {
    ...(tokenizer === undefined ? {} : { tokenizer }),
    ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
  };
  if (arch === 'gpt2') return loadGpt2Gguf<Tokenizer>(file, modelOptions);
  return loadLlamaFamilyGguf<Tokenizer>(file, modelOptions);
}
