import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getLlama, type Llama, type LlamaModel as CppModel } from 'node-llama-cpp';
import { devAccount } from '../src/chain/index.ts';
import {
  LORA_TARGETS,
  LoraAdapter,
  Prng,
  loadLlamaGguf,
  loadLoraGguf,
  mergeLora,
  readGguf,
  type LlamaModel,
} from '../src/engine/index.ts';
import { ggufToHfRows, hfToGgufRows } from '../src/engine/hf/permute.ts';
import { encodeSafetensors, readSafetensors, writeSafetensors } from '../src/engine/safetensors.ts';
import {
  PEFT_MODULES,
  mergedGguf,
  peftBaseOf,
  peftFiles,
  peftKey,
} from '../src/factory/exports.ts';
import { DatanetActor } from './helpers/datanets.ts';
import { call } from './helpers/http.ts';
import { AIDREAMS_GGUF } from './helpers/models.ts';
import { startTestNode, type TestNode } from './helpers/node.ts';
import { CLI_ENTRY } from './helpers/cli.ts';

const HAVE_AIDREAMS = existsSync(AIDREAMS_GGUF);
const SKIP = HAVE_AIDREAMS ? false : `fixture absent: ${AIDREAMS_GGUF}`;

let dir: string;
let llama: Llama | undefined;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'openledger-exports-'));
});
after(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});
async function cpp(): Promise<Llama> {
  llama ??= await getLlama({
    gpu: false,
    build: 'never',
    maxThreads: 2,
    logLevel: 'error' as never,
  });
  return llama;
}

/** An adapter of every target with random B (training starts B at zero), so each one matters. */
function randomAdapter(base: LlamaModel, seed: number): LoraAdapter {
  const adapter = LoraAdapter.create(
    base.config,
    { rank: 4, alpha: 8, dropout: 0, targets: [...LORA_TARGETS] },
    seed,
  );
  const random = new Prng(seed + 1);
  for (const layer of adapter.layers)
    for (const pair of Object.values(layer))
      for (let i = 0; i < pair.b.length; i++) pair.b[i] = 0.05 * random.normal();
  return adapter;
}

/** llama.cpp's logits for every position of `tokens` (F32 KV cache, 2 threads). */
async function cppLogits(
  model: CppModel,
  tokens: number[],
  lora?: string,
): Promise<Map<number, number>[]> {
  const context = await model.createContext({
    threads: 2,
    contextSize: 64,
    ...(lora ? { lora: { adapters: [{ filePath: lora, scale: 1 }] } } : {}),
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
  });
  try {
    const evaluated = await context
      .getSequence()
      .controlledEvaluate(
        tokens.map((t) => [t, { generateNext: { logits: true } }] as const) as never,
      );
    return evaluated.map(
      (r) => (r as { next?: { logits?: Map<number, number> } } | undefined)!.next!.logits!,
    );
  } finally {
    await context.dispose();
  }
}

/** llama.cpp's greedy continuation (temperature 0) of `prompt`, `count` tokens, past EOS too. */
async function cppGreedy(
  model: CppModel,
  prompt: number[],
  count: number,
  lora?: string,
): Promise<number[]> {
  const context = await model.createContext({
    threads: 2,
    contextSize: 128,
    ...(lora ? { lora: { adapters: [{ filePath: lora, scale: 1 }] } } : {}),
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
  });
  try {
    const out: number[] = [];
    for await (const token of context
      .getSequence()
      .evaluate(prompt as never, { temperature: 0, yieldEogToken: true })) {
      out.push(token as number);
      if (out.length === count) break;
    }
    return out;
  } finally {
    await context.dispose();
  }
}

describe('safetensors', () => {
  it('writes what the reference library writes: dtype-then-name order, 8-byte header, metadata first', () => {
    const bytes = encodeSafetensors(
      [
        { name: 'a', dtype: 'F16', shape: [1], data: new Float32Array([1]) },
        { name: 'c', dtype: 'F32', shape: [1, 2], data: new Float32Array([1.5, -2]) },
        { name: 'b', dtype: 'F32', shape: [2], data: new Float32Array([3, 4]) },
      ],
      { format: 'pt' },
    );
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal((8 + n) % 8, 0);
    const header = Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8');
    assert.equal(
      header.trimEnd(),
      '{"__metadata__":{"format":"pt"},' +
        '"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
        '"c":{"dtype":"F32","shape":[1,2],"data_offsets":[8,16]},' +
        '"a":{"dtype":"F16","shape":[1],"data_offsets":[16,18]}}',
    );
    assert.match(header, / *$/);
    assert.equal(bytes.length, 8 + n + 18);
    // F16 1.0 is 0x3c00
    assert.deepEqual([...bytes.subarray(8 + n + 16)], [0x00, 0x3c]);
  });

  it('round-trips F32, F16 and BF16 through a file, reading tensors lazily', async () => {
    const values = Float32Array.from({ length: 6 }, (_, i) => (i - 2.5) / 4);
    const file = path.join(dir, 'round.safetensors');
    const { size } = await writeSafetensors(
      file,
      [
        { name: 'x.f32', dtype: 'F32', shape: [2, 3], data: values },
        { name: 'x.f16', dtype: 'F16', shape: [3, 2], data: values },
        { name: 'x.bf16', dtype: 'BF16', shape: [6], data: values },
      ],
      { note: 'hello' },
    );
    const read = await readSafetensors(file);
    assert.deepEqual(read.metadata, { note: 'hello' });
    assert.deepEqual(read.tensor('x.f16').shape, [3, 2]);
    for (const name of ['x.f32', 'x.f16', 'x.bf16'])
      assert.deepEqual(await read.tensorFloat32(name), values, name); // all exact in 8 bits
    const bytes = await readFile(file);
    assert.equal(bytes.length, size);
    assert.deepEqual(
      (await readSafetensors(new Uint8Array(bytes))).tensors.map((t) => t.name),
      read.tensors.map((t) => t.name),
    );
    // broken files are refused with FILE_INVALID
    await assert.rejects(readSafetensors(new Uint8Array(bytes.subarray(0, bytes.length - 1))), {
      code: 'FILE_INVALID',
    });
    const gap = encodeSafetensors([
      { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
    ]);
    const text = Buffer.from(gap).toString('latin1').replace('[0,4]', '[1,4]');
    await assert.rejects(readSafetensors(new Uint8Array(Buffer.from(text, 'latin1'))), {
      code: 'FILE_INVALID',
    });
  });
});

describe('q/k permutation', () => {
  /** llama.cpp's `permute`, transcribed literally: reshape(n, 2, hd/2, c).swapaxes(1, 2). */
  function llamaCppPermute(w: Float32Array, rows: number, cols: number, n: number): Float32Array {
    const half = rows / n / 2;
    const out = new Float32Array(w.length);
    let at = 0; // iterate the swapped view (n, half, 2, cols) in C order
    for (let h = 0; h < n; h++)
      for (let i = 0; i < half; i++)
        for (let j = 0; j < 2; j++)
          for (let c = 0; c < cols; c++) out[at++] = w[((h * 2 + j) * half + i) * cols + c]!;
    return out;
  }

  it('is llama.cpp permute, and the un-permutation is its exact inverse', () => {
    const random = new Prng(5);
    for (const [rows, cols, n] of [
      [64, 3, 4],
      [32, 5, 2],
      [96, 1, 6],
    ] as const) {
      const w = Float32Array.from({ length: rows * cols }, () => random.normal());
      assert.deepEqual(hfToGgufRows(w, rows, cols, n), llamaCppPermute(w, rows, cols, n));
      assert.deepEqual(ggufToHfRows(hfToGgufRows(w, rows, cols, n), rows, cols, n), w);
      assert.deepEqual(hfToGgufRows(ggufToHfRows(w, rows, cols, n), rows, cols, n), w);
      assert.notDeepEqual(ggufToHfRows(w, rows, cols, n), w);
    }
    assert.throws(() => ggufToHfRows(new Float32Array(6), 6, 1, 2), { code: 'VALIDATION_FAILED' });
  });

  it("makes Hugging Face's rotate-half RoPE on the un-permuted rows equal llama.cpp's pairwise RoPE", () => {
    const hd = 16;
    const nHead = 3;
    const random = new Prng(9);
    const q = Float32Array.from({ length: nHead * hd }, () => random.normal());
    const pos = 7;
    const theta = (i: number) => pos * Math.pow(10000, (-2 * i) / hd);
    const pairwise = q.slice(); // llama.cpp "normal": (x[2i], x[2i+1])
    const halves = ggufToHfRows(q, nHead * hd, 1, nHead); // HF: (x[i], x[i + hd/2])
    for (let h = 0; h < nHead; h++)
      for (let i = 0; i < hd / 2; i++) {
        const [c, s] = [Math.cos(theta(i)), Math.sin(theta(i))];
        const a = h * hd + 2 * i;
        [pairwise[a], pairwise[a + 1]] = [q[a]! * c - q[a + 1]! * s, q[a]! * s + q[a + 1]! * c];
        const b = h * hd + i;
        const [x0, x1] = [halves[b]!, halves[b + hd / 2]!];
        halves[b] = x0 * c - x1 * s;
        halves[b + hd / 2] = x1 * c + x0 * s;
      }
    const expected = ggufToHfRows(pairwise, nHead * hd, 1, nHead);
    for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(expected[i]! - halves[i]!) < 1e-5);
  });
});

describe('PEFT and merged exports', { skip: SKIP }, () => {
  it('PEFT: the keys and shapes PEFT writes, q/k lora_B un-permuted, A and the others as they are', async () => {
    const base = await loadLlamaGguf(AIDREAMS_GGUF);
    const adapter = randomAdapter(base, 3);
    const file = await readGguf(AIDREAMS_GGUF);
    const files = peftFiles(adapter, peftBaseOf(file, 'aidreams260K'));
    assert.deepEqual(
      files.map((f) => f.name),
      ['adapter_config.json', 'adapter_model.safetensors'],
    );
    const config = JSON.parse(Buffer.from(files[0]!.bytes).toString('utf8'));
    assert.equal(config.peft_type, 'LORA');
    assert.equal(config.task_type, 'CAUSAL_LM');
    assert.equal(config.r, 4);
    assert.equal(config.lora_alpha, 8);
    assert.equal(config.bias, 'none');
    assert.equal(config.fan_in_fan_out, false);
    assert.equal(config.base_model_name_or_path, 'aidreams260K');
    assert.deepEqual(config.target_modules, [
      'down_proj',
      'gate_proj',
      'k_proj',
      'o_proj',
      'q_proj',
      'up_proj',
      'v_proj',
    ]);
    assert.deepEqual(Object.keys(config), Object.keys(config).sort(), 'PEFT sorts the keys');

    const st = await readSafetensors(files[1]!.bytes);
    assert.deepEqual(st.metadata, { format: 'pt' });
    const { dim, hiddenDim, nHeads, nKvHeads, headDim, nLayers } = base.config;
    assert.equal(st.tensors.length, nLayers * LORA_TARGETS.length * 2);
    const out = {
      attn_q: nHeads * headDim,
      attn_k: nKvHeads * headDim,
      attn_v: nKvHeads * headDim,
      attn_output: dim,
      ffn_gate: hiddenDim,
      ffn_up: hiddenDim,
      ffn_down: dim,
    };
    const inn = {
      attn_q: dim,
      attn_k: dim,
      attn_v: dim,
      attn_output: nHeads * headDim,
      ffn_gate: dim,
      ffn_up: dim,
      ffn_down: hiddenDim,
    };
    for (let l = 0; l < nLayers; l++)
      for (const target of LORA_TARGETS) {
        const a = st.tensor(
          `base_model.model.model.layers.${l}.${PEFT_MODULES[target]}.lora_A.weight`,
        );
        const b = st.tensor(peftKey(l, target, 'B'));
        assert.deepEqual(a.shape, [4, inn[target]]);
        assert.deepEqual(b.shape, [out[target], 4]);
        assert.equal(a.dtype, 'F32');
        const pair = adapter.layers[l]![target]!;
        assert.deepEqual(await st.tensorFloat32(a), pair.a);
        const heads = target === 'attn_q' ? nHeads : target === 'attn_k' ? nKvHeads : 0;
        const expected = heads ? ggufToHfRows(pair.b, out[target], 4, heads) : pair.b;
        assert.deepEqual(await st.tensorFloat32(b), expected, `${l} ${target}`);
      }
    // the GGUF layout on request: B exactly as stored
    const raw = await readSafetensors(
      peftFiles(adapter, peftBaseOf(file, 'x'), { ropeLayout: 'gguf' })[1]!.bytes,
    );
    assert.deepEqual(
      await raw.tensorFloat32(peftKey(0, 'attn_q', 'B')),
      adapter.layers[0]!.attn_q!.b,
    );
  });

  it('merged: a GGUF that our engine reads as mergeLora, and llama.cpp runs to the same logits', async () => {
    const base = await loadLlamaGguf(AIDREAMS_GGUF);
    const adapter = randomAdapter(base, 11);
    const merged = mergeLora(base, adapter);
    const file = path.join(dir, 'merged-f32.gguf');
    await writeFile(
      file,
      await mergedGguf(await readGguf(AIDREAMS_GGUF), adapter, { type: 'F32' }),
    );
    const ours = await loadLlamaGguf(file);
    assert.deepEqual(ours.weights.layers, merged.weights.layers, 'bit-exact merged weights');
    assert.deepEqual(ours.weights.tokenEmbd, base.weights.tokenEmbd);
    const original = await readGguf(AIDREAMS_GGUF);
    const written = await readGguf(file);
    assert.deepEqual([...written.metadata.keys()], [...original.metadata.keys()], 'metadata kept');

    const tokens = base.tokenizer!.encode('"Echoes of vectors unfold', { addBos: true });
    const expected = merged.forwardSequence(tokens);
    const unadapted = base.forwardSequence(tokens);
    const vocab = base.config.vocabSize;
    const model = await (await cpp()).loadModel({ modelPath: file });
    let maxDiff = 0;
    let maxLogit = 0;
    let effect = 0;
    try {
      (await cppLogits(model, tokens)).forEach((logits, p) => {
        for (const [token, logit] of logits) {
          maxDiff = Math.max(maxDiff, Math.abs(logit - expected[p * vocab + token]!));
          maxLogit = Math.max(maxLogit, Math.abs(logit));
          effect = Math.max(
            effect,
            Math.abs(expected[p * vocab + token]! - unadapted[p * vocab + token]!),
          );
        }
      });
    } finally {
      await model.dispose();
    }
    console.log({ maxDiff, relative: maxDiff / maxLogit, effect });
    assert.ok(
      effect > 100 * maxDiff,
      `the merge moves the logits (${effect}) beyond the difference (${maxDiff})`,
    );
    assert.ok(maxDiff / maxLogit < 1e-3, `relative difference ${maxDiff / maxLogit}`);

    // F16 merged weights: half the size, logits close
    const f16 = path.join(dir, 'merged-f16.gguf');
    await writeFile(f16, await mergedGguf(await readGguf(AIDREAMS_GGUF), adapter, { type: 'F16' }));
    const f16Model = await (await cpp()).loadModel({ modelPath: f16 });
    try {
      const logits = await cppLogits(f16Model, tokens);
      let diff = 0;
      logits.forEach((m, p) => {
        for (const [token, logit] of m)
          diff = Math.max(diff, Math.abs(logit - expected[p * vocab + token]!));
      });
      assert.ok(diff / maxLogit < 2e-2, `F16 relative difference ${diff / maxLogit}`);
    } finally {
      await f16Model.dispose();
    }
  });
});

const THINGS: [string, string][] = [
  ['lantern', 'blue'],
  ['kettle', 'red'],
  ['blanket', 'green'],
  ['teapot', 'yellow'],
  ['ladder', 'brown'],
  ['bucket', 'orange'],
  ['pillow', 'white'],
  ['basket', 'purple'],
];

/** Runs the CLI against a node; `--json` output parsed. */
function cli(args: string[]): Promise<{ code: number | null; json: unknown; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_ENTRY, ...args, '--json'], {
      env: { ...process.env, OPENLEDGER_API_KEY: '', OPENLEDGER_PRIVATE_KEY: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => {
      let json: unknown;
      try {
        json = JSON.parse((code === 0 ? stdout : stderr).trim().split('\n').pop() ?? '');
      } catch {
        json = undefined;
      }
      resolve({ code, json, stderr });
    });
  });
}

describe('exports of a LoRA trained from the CLI on a datanet', { skip: SKIP }, () => {
  let node: TestNode;
  let jobId: string;

  before(async () => {
    node = await startTestNode();
    const owner = new DatanetActor(node.url, devAccount(0));
    const alice = new DatanetActor(node.url, devAccount(1));
    const created = await owner.create({
      name: 'House colors',
      description:
        'Short questions and answers about the colors of things in the little house: lanterns, kettles, blankets, teapots and more.',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const rows = THINGS.map(([thing, color]) => ({
      type: 'instruction' as const,
      instruction: `What color is the ${thing} in the little house?`,
      output: `The ${thing} is ${color}. The ${thing} is ${color}.`,
    }));
    const contributed = await alice.contributeRows(created.body.id, rows);
    assert.equal(contributed.status, 201, JSON.stringify(contributed.body));
    const approved = await owner.approve(created.body.id, [contributed.body.id]);
    assert.equal(approved.status, 201, JSON.stringify(approved.body));
    const trained = await cli([
      'train',
      '--url',
      node.url,
      '--account',
      '1',
      '--base',
      'aidreams260K',
      '--datanet',
      `${created.body.id}@1`,
      '--steps',
      '20',
      '--rank',
      '4',
      '--lr',
      '0.01',
      '--batch-size',
      '4',
      '--seed',
      '1',
    ]);
    assert.equal(trained.code, 0, trained.stderr);
    const job = trained.json as { id: string; status: string };
    assert.equal(job.status, 'succeeded');
    jobId = job.id;
  });
  after(() => node?.close());

  it("the GGUF export loads in llama.cpp and gives our engine's greedy text", async () => {
    const file = path.join(dir, 'adapter.gguf');
    const exported = await cli([
      'export',
      jobId,
      '--format',
      'gguf',
      '--out',
      file,
      '--url',
      node.url,
      '--account',
      '1',
    ]);
    assert.equal(exported.code, 0, exported.stderr);
    const adapter = await loadLoraGguf(file);
    const base = await loadLlamaGguf(AIDREAMS_GGUF);
    const merged = mergeLora(base, adapter);
    const tokenizer = base.tokenizer!;
    const prompt = tokenizer.encode(
      '[INST] What color is the kettle in the little house? [/INST]',
      {
        addBos: true,
      },
    );
    const count = 24;
    const ours = merged.generate(prompt, count, { stopAtEos: false });
    const plain = base.generate(prompt, count, { stopAtEos: false });
    const model = await (await cpp()).loadModel({ modelPath: AIDREAMS_GGUF });
    let theirs: number[];
    try {
      theirs = await cppGreedy(model, prompt, count, file);
    } finally {
      await model.dispose();
    }
    console.log({ ours: ours.text, base: plain.text });
    assert.equal(
      tokenizer.decode([...prompt, ...theirs]).slice(tokenizer.decode(prompt).length),
      ours.text,
    );
    assert.deepEqual(theirs, ours.tokens);
    assert.notDeepEqual(ours.tokens, plain.tokens, 'the adapter changes what the model says');
  });

  it('the merged export runs in llama.cpp to the same greedy text; PEFT has the keys and shapes', async () => {
    const file = path.join(dir, 'merged.gguf');
    const exported = await cli([
      'export',
      jobId,
      '--format',
      'merged',
      '--type',
      'f32',
      '--out',
      file,
      '--url',
      node.url,
      '--account',
      '1',
    ]);
    assert.equal(exported.code, 0, exported.stderr);
    const base = await loadLlamaGguf(AIDREAMS_GGUF);
    const adapter = await loadLoraGguf(path.join(dir, 'adapter.gguf'));
    const prompt = base.tokenizer!.encode(
      '[INST] What color is the teapot in the little house? [/INST]',
      { addBos: true },
    );
    const ours = mergeLora(base, adapter).generate(prompt, 24, { stopAtEos: false });
    const model = await (await cpp()).loadModel({ modelPath: file });
    try {
      assert.deepEqual(await cppGreedy(model, prompt, 24), ours.tokens);
    } finally {
      await model.dispose();
    }

    const folder = path.join(dir, 'peft');
    const peft = await cli([
      'export',
      jobId,
      '--format',
      'peft',
      '--out',
      folder,
      '--url',
      node.url,
      '--account',
      '1',
    ]);
    assert.equal(peft.code, 0, peft.stderr);
    const config = JSON.parse(await readFile(path.join(folder, 'adapter_config.json'), 'utf8'));
    assert.deepEqual(config.target_modules, ['q_proj', 'v_proj']);
    assert.equal(config.r, 4);
    const st = await readSafetensors(path.join(folder, 'adapter_model.safetensors'));
    const { dim, nLayers } = base.config;
    assert.deepEqual(
      st.tensors.map((t) => t.name).sort(),
      Array.from({ length: nLayers }, (_, l) =>
        ['q_proj', 'v_proj'].flatMap((m) =>
          ['A', 'B'].map(
            (k) => `base_model.model.model.layers.${l}.self_attn.${m}.lora_${k}.weight`,
          ),
        ),
      )
        .flat()
        .sort(),
    );
    for (const t of st.tensors)
      assert.deepEqual(t.shape, t.name.includes('lora_A') ? [4, dim] : [dim, 4]);

    // another wallet cannot export the job; a bad format is a 400
    const stranger = await cli([
      'export',
      jobId,
      '--format',
      'gguf',
      '--out',
      path.join(dir, 'x.gguf'),
      '--url',
      node.url,
      '--account',
      '2',
    ]);
    assert.equal(stranger.code, 1);
    assert.match(stranger.stderr, /NOT_FOUND/);
    const bad = await cli([
      'export',
      jobId,
      '--format',
      'onnx',
      '--out',
      path.join(dir, 'x'),
      '--url',
      node.url,
      '--account',
      '1',
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /BAD_REQUEST/);
  });

  it('models: `models add` puts a GGUF in the data dir, `models list` and the API see it; the API imports only hub ids', async () => {
    const added = await cli([
      'models',
      'add',
      AIDREAMS_GGUF,
      '--name',
      'dreams-copy',
      '--data-dir',
      node.dataDir,
    ]);
    assert.equal(added.code, 0, added.stderr);
    assert.equal((added.json as { name: string }).name, 'dreams-copy');
    const listed = await cli(['models', 'list', '--url', node.url]);
    assert.equal(listed.code, 0, listed.stderr);
    const names = (listed.json as { models: { name: string }[] }).models.map((m) => m.name);
    assert.ok(names.includes('dreams-copy') && names.includes('aidreams260K'), names.join(','));

    const token = await new DatanetActor(node.url, devAccount(1)).session();
    const local = await call(node.url, 'POST', '/api/factory/models', {
      token,
      body: { source: AIDREAMS_GGUF },
    });
    assert.equal(local.status, 400, JSON.stringify(local.body));
    assert.equal(local.body.error.code, 'VALIDATION_FAILED');
    const anonymous = await call(node.url, 'POST', '/api/factory/models', {
      body: { source: 'a/b:c.gguf' },
    });
    assert.equal(anonymous.status, 401);
    // a hub of one GGUF file, as huggingface.co serves it
    const bytes = await readFile(AIDREAMS_GGUF);
    const hub = createServer((req, res) => {
      if (req.url !== '/someone/dreams/resolve/main/aidreams.gguf')
        return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
    });
    await new Promise<void>((resolve) => hub.listen(0, '127.0.0.1', resolve));
    process.env.OPENLEDGER_HF_ENDPOINT = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
    try {
      const imported = await call(node.url, 'POST', '/api/factory/models', {
        token,
        body: { source: 'someone/dreams:aidreams.gguf' },
      });
      assert.equal(imported.status, 201, JSON.stringify(imported.body));
      assert.equal(imported.body.name, 'someone--aidreams');
      const missing = await call(node.url, 'POST', '/api/factory/models', {
        token,
        body: { source: 'someone/none:x.gguf' },
      });
      assert.equal(missing.status, 502);
      assert.equal(missing.body.error.code, 'MODEL_DOWNLOAD_FAILED');
    } finally {
      delete process.env.OPENLEDGER_HF_ENDPOINT;
      await new Promise<void>((resolve) => hub.close(() => resolve()));
    }
    const models = await call(node.url, 'GET', '/api/factory/models');
    assert.ok(models.body.models.some((m: { name: string }) => m.name === 'someone--aidreams'));
  });
});
