/**
 * The q/k row permutation between Hugging Face llama checkpoints and GGUF.
 *
 * llama.cpp's `llama` architecture applies "normal" RoPE, rotating consecutive pairs
 * (x[2i], x[2i+1]) of each head, as Meta's original checkpoints and llama2.c do. Hugging Face's
 * LlamaForCausalLM rotates halves (x[i], x[i + hd/2]) instead (`rotate_half`), so its q and k
 * projections hold the same rows in another order: transformers' convert_llama_weights_to_hf
 * permutes them one way, and llama.cpp's convert_hf_to_gguf (`LlamaModel.permute`) permutes them
 * back when it writes a GGUF:
 *
 *     w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).reshape(rows, cols)
 *
 * with n_head = the heads of q for q, the kv heads for k. Row by row, within head h of hd rows:
 *
 *     gguf[h·hd + 2i + j] = hf[h·hd + j·hd/2 + i]        i < hd/2, j ∈ {0, 1}
 *
 * So the GGUF rows of any llama (whatever produced it: convert_hf_to_gguf, llama2.c, our trainer)
 * are in the interleaved order, and the Hugging Face equivalent of that model has them in the
 * half-split order. Only the output rows move: a LoRA's A [r][in] is unchanged, its B [out][r]
 * has its rows permuted like W.
 */
import { OpenLedgerError } from '../../errors.ts';

function check(rows: number, cols: number, nHead: number, length: number): number {
  if (nHead <= 0 || rows % nHead !== 0 || (rows / nHead) % 2 !== 0 || length !== rows * cols)
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `cannot permute a [${rows}][${cols}] matrix of ${length} values by ${nHead} heads (each head needs an even number of rows)`,
    );
  return rows / nHead;
}

/**
 * llama.cpp's `permute` (Hugging Face order → GGUF order) of a row-major [rows][cols] matrix,
 * rows = nHead · hd. Answers a new array.
 */
export function hfToGgufRows(
  w: Float32Array,
  rows: number,
  cols: number,
  nHead: number,
): Float32Array {
  const hd = check(rows, cols, nHead, w.length);
  const half = hd / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHead; h++)
    for (let i = 0; i < half; i++)
      for (let j = 0; j < 2; j++) {
        const to = (h * hd + 2 * i + j) * cols;
        const from = (h * hd + j * half + i) * cols;
        out.set(w.subarray(from, from + cols), to);
      }
  return out;
}

/** The exact inverse of `hfToGgufRows` (GGUF order → Hugging Face order). */
export function ggufToHfRows(
  w: Float32Array,
  rows: number,
  cols: number,
  nHead: number,
): Float32Array {
  const hd = check(rows, cols, nHead, w.length);
  const half = hd / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHead; h++)
    for (let i = 0; i < half; i++)
      for (let j = 0; j < 2; j++) {
        const from = (h * hd + 2 * i + j) * cols;
        const to = (h * hd + j * half + i) * cols;
        out.set(w.subarray(from, from + cols), to);
      }
  return out;
}
