/**
 * Where the trainer's matrix products run. Two backends with one surface:
 *
 * - `onnxruntime`: Gemm sessions on onnxruntime-node's CPU provider (MLAS, multi-threaded SIMD).
 * - `typescript`: the plain loops of matmul.ts, always available, and the only one that keeps
 *   float64 storage (gradient checks).
 *
 * The onnxruntime backend still sends products that are too small to pay for a native call
 * (LoRA's rank-r products on small models) and float64 buffers to the TypeScript loops.
 * Quantized weights are dequantized into a scratch right before the product (QLoRA).
 */
import os from 'node:os';
// types only: the module itself is imported lazily, when a backend asks for it
import type * as OnnxRuntime from 'onnxruntime-node';
import { OpenLedgerError } from '../../errors.ts';
import { matmulBackward, matmulForward } from './matmul.ts';
import type { Floats } from './matmul.ts';
import { Float32Scratch, isQuantized, matrixValues } from './matrix.ts';
import type { Matrix } from './matrix.ts';
import { batchedMatmulModel, gemmModel } from './onnx-gemm.ts';

export type MatmulBackendName = 'onnxruntime' | 'typescript';

export interface MatmulBackend {
  readonly name: MatmulBackendName;
  /** Threads a product may use. */
  readonly threads: number;
  /** out [BT][OC] = inp [BT][C] · W [OC][C]ᵀ (overwrites the first BT·OC values of out). */
  forward(
    out: Floats,
    inp: Floats,
    weight: Matrix,
    BT: number,
    C: number,
    OC: number,
  ): Promise<void>;
  /**
   * dinp [BT][C] += dout [BT][OC] · W and dweight [OC][C] += dout ᵀ · inp; either output may be
   * null. A quantized W is frozen: it has no dweight.
   */
  backward(
    dinp: Floats | null,
    dweight: Floats | null,
    dout: Floats,
    inp: Floats,
    weight: Matrix,
    BT: number,
    C: number,
    OC: number,
  ): Promise<void>;
  /**
   * A batch of independent products (attention's per-head scores and sums):
   * out[n] [M][N] = A′[n] · B′[n] for n < count, where A′ is a[n] [M][K] or, with transA, the
   * transpose of a[n] [K][M]; B′ is b[n] [K][N] or, with transB, the transpose of b[n] [N][K].
   */
  batchedMatmul(
    out: Floats,
    a: Floats,
    b: Floats,
    count: number,
    M: number,
    N: number,
    K: number,
    transA: boolean,
    transB: boolean,
  ): Promise<void>;
  /** True when products run natively (worth regrouping work into few large calls). */
  readonly native: boolean;
  /** Frees native resources; the backend is unusable afterwards. */
  close(): Promise<void>;
}

export interface MatmulBackendOptions {
  /** 'auto' (default): onnxruntime when it loads, else TypeScript. */
  backend?: 'auto' | MatmulBackendName;
  /** Threads for onnxruntime (default: the machine's available parallelism). */
  threads?: number;
}

/** The backend the options ask for; 'auto' falls back to TypeScript when onnxruntime cannot load. */
export async function createMatmulBackend(
  options: MatmulBackendOptions = {},
): Promise<MatmulBackend> {
  const wanted = options.backend ?? 'auto';
  const threads = options.threads ?? os.availableParallelism();
  if (!Number.isSafeInteger(threads) || threads < 1) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      `threads must be a positive integer, not ${threads}`,
    );
  }
  if (wanted === 'typescript') return new TypeScriptBackend();
  try {
    return await OnnxBackend.create(threads);
  } catch (error) {
    if (wanted === 'onnxruntime') {
      throw new OpenLedgerError(
        'ENGINE_UNAVAILABLE',
        `onnxruntime-node could not start: ${(error as Error).message}`,
        { hint: "use the 'typescript' matmul backend, which needs nothing native" },
      );
    }
    return new TypeScriptBackend(`onnxruntime-node could not start: ${(error as Error).message}`);
  }
}

function frozen(weight: Matrix, dweight: Floats | null): void {
  if (dweight !== null && isQuantized(weight)) {
    throw new OpenLedgerError(
      'VALIDATION_FAILED',
      'a quantized weight is frozen: it has no gradient',
    );
  }
}

export class TypeScriptBackend implements MatmulBackend {
  readonly name = 'typescript';
  readonly threads = 1;
  readonly native = false;
  private readonly dequantized = new Float32Scratch();

  /** @param fallbackReason why 'auto' ended up here, when it did */
  constructor(readonly fallbackReason?: string) {}

  forward(
    out: Floats,
    inp: Floats,
    weight: Matrix,
    BT: number,
    C: number,
    OC: number,
  ): Promise<void> {
    matmulForward(out, inp, matrixValues(weight, this.dequantized), BT, C, OC);
    return Promise.resolve();
  }

  backward(
    dinp: Floats | null,
    dweight: Floats | null,
    dout: Floats,
    inp: Floats,
    weight: Matrix,
    BT: number,
    C: number,
    OC: number,
  ): Promise<void> {
    frozen(weight, dweight);
    matmulBackward(dinp, dweight, dout, inp, matrixValues(weight, this.dequantized), BT, C, OC);
    return Promise.resolve();
  }

  batchedMatmul(
    out: Floats,
    a: Floats,
    b: Floats,
    count: number,
    M: number,
    N: number,
    K: number,
    transA: boolean,
    transB: boolean,
  ): Promise<void> {
    // strides of A′[m][k] and B′[k][n] inside one item
    const [am, ak] = transA ? [1, M] : [K, 1];
    const [bk, bn] = transB ? [1, K] : [N, 1];
    for (let n = 0; n < count; n++) {
      const a0 = n * M * K;
      const b0 = n * K * N;
      const o0 = n * M * N;
      for (let m = 0; m < M; m++) {
        for (let j = 0; j < N; j++) {
          let sum = 0;
          for (let k = 0; k < K; k++) sum += a[a0 + m * am + k * ak]! * b[b0 + k * bk + j * bn]!;
          out[o0 + m * N + j] = sum;
        }
      }
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Products below this many multiply-adds stay in TypeScript: an onnxruntime call costs ~20 µs
 * of fixed overhead, about what the TypeScript loops need for 64k multiply-adds (measured in
 * bench/engine.ts).
 */
const NATIVE_MIN_MACS = 1 << 16;

type Ort = typeof OnnxRuntime;
type Session = OnnxRuntime.InferenceSession;

class OnnxBackend implements MatmulBackend {
  readonly name = 'onnxruntime';
  readonly native = true;
  private readonly small = new TypeScriptBackend();
  private readonly dequantized = new Float32Scratch();
  private readonly product = new Float32Scratch();

  private constructor(
    readonly threads: number,
    private readonly ort: Ort,
    /** Y = A·Bᵀ (forward), Y = A·B (dinp), Y = Aᵀ·B (dweight), and the same batched */
    private readonly sessions: Record<'nt' | 'nn' | 'tn' | 'bnt' | 'bnn' | 'btn', Session>,
  ) {}

  static async create(threads: number): Promise<OnnxBackend> {
    const imported = (await import('onnxruntime-node')) as Ort & { default?: Ort };
    const ort = imported.default ?? imported;
    const options = {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential' as const,
      graphOptimizationLevel: 'all' as const,
    };
    const create = (transA: boolean, transB: boolean) =>
      ort.InferenceSession.create(gemmModel(transA, transB), options);
    const batched = (transA: boolean, transB: boolean) =>
      ort.InferenceSession.create(batchedMatmulModel(transA, transB), options);
    const [nt, nn, tn, bnt, bnn, btn] = await Promise.all([
      create(false, true),
      create(false, false),
      create(true, false),
      batched(false, true),
      batched(false, false),
      batched(true, false),
    ]);
    return new OnnxBackend(threads, ort, { nt, nn, tn, bnt, bnn, btn });
  }

  private float32(...buffers: (Floats | null)[]): boolean {
    return buffers.every((b) => b === null || b instanceof Float32Array);
  }

  private tensor(data: Float32Array, rows: number, cols: number) {
    return new this.ort.Tensor('float32', data.subarray(0, rows * cols), [rows, cols]);
  }

  async forward(
    out: Floats,
    inp: Floats,
    weight: Matrix,
    BT: number,
    C: number,
    OC: number,
  ): Promise<void> {
    const W = matrixValues(weight, this.dequantized);
    if (BT * C * OC < NATIVE_MIN_MACS || !this.float32(out, inp, W)) {
      return this.small.forward(out, inp, W, BT, C, OC);
    }
    await this.sessions.nt.run(
      { A: this.tensor(inp as Float32Array, BT, C), B: this.tensor(W as Float32Array, OC, C) },
      { Y: this.tensor(out as Float32Array, BT, OC) },
    );
  }

  async backward(
    dinp: Floats | null,
    dweight: Floats | null,
    dout: Floats,
    inp: Floats,
    weight: Matrix,
    BT: number,
    C: number,
    OC: number,
  ): Promise<void> {
    frozen(weight, dweight);
    const W = matrixValues(weight, this.dequantized);
    if (BT * C * OC < NATIVE_MIN_MACS || !this.float32(dout, inp, W)) {
      return this.small.backward(dinp, dweight, dout, inp, W, BT, C, OC);
    }
    const doutT = this.tensor(dout as Float32Array, BT, OC);
    if (dinp !== null) {
      // dinp [BT][C] += dout [BT][OC] · W [OC][C]
      const y = this.product.get(BT * C);
      await this.sessions.nn.run(
        { A: doutT, B: this.tensor(W as Float32Array, OC, C) },
        { Y: this.tensor(y, BT, C) },
      );
      for (let i = 0; i < BT * C; i++) dinp[i] = dinp[i]! + y[i]!;
    }
    if (dweight !== null) {
      // dweight [OC][C] += dout [BT][OC]ᵀ · inp [BT][C]
      const y = this.product.get(OC * C);
      await this.sessions.tn.run(
        { A: doutT, B: this.tensor(inp as Float32Array, BT, C) },
        { Y: this.tensor(y, OC, C) },
      );
      for (let i = 0; i < OC * C; i++) dweight[i] = dweight[i]! + y[i]!;
    }
  }

  async batchedMatmul(
    out: Floats,
    a: Floats,
    b: Floats,
    count: number,
    M: number,
    N: number,
    K: number,
    transA: boolean,
    transB: boolean,
  ): Promise<void> {
    if (!this.float32(out, a, b) || (transA && transB)) {
      return this.small.batchedMatmul(out, a, b, count, M, N, K, transA, transB);
    }
    const session = transA ? this.sessions.btn : transB ? this.sessions.bnt : this.sessions.bnn;
    const cube = (data: Floats, d1: number, d2: number) =>
      new this.ort.Tensor('float32', (data as Float32Array).subarray(0, count * d1 * d2), [
        count,
        d1,
        d2,
      ]);
    await session.run(
      {
        A: transA ? cube(a, K, M) : cube(a, M, K),
        B: transB ? cube(b, N, K) : cube(b, K, N),
      },
      { Y: cube(out, M, N) },
    );
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.sessions).map((s) => s.release()));
  }
}
