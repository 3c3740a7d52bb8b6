import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  GGML_TYPE,
  GPT2_LORA_TARGETS,
  LORA_TARGETS,
  LoraAdapter,
  Prng,
  gguf,
  loadGpt2Gguf,
  loadLoraGguf,
  readGguf,
  saveLoraGguf,
  writeGguf,
  type GgufFile,
  type GgufValue,
} from '../src/engine/index.ts';
import { encodeSafetensors, readSafetensors } from '../src/engine/safetensors.ts';
import { peftBaseOf, peftFiles, peftKey } from '../src/factory/exports.ts';
import { importPeftAdapter } from '../src/serving/adapter-import.ts';
import { parseHubAdapterRef } from '../src/serving/adapters.ts';
import { call } from './helpers/http.ts';
import { randomTensors, SHAPE, syntheticVocab, writeRandomGpt2 } from './helpers/models.ts';
import {
  TINY_CONFIG,
  TINY_CONTEXT,
  startServingNode,
  writeTinyAdapter,
  writeTinyModel,
  type ServingNode,
} from './helpers/serving.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'openledger-peft-import-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The tiny model's shape as a qwen2 GGUF (NeoX RoPE: q/k rows are not permuted). */
async function writeTinyQwen2(file: string): Promise<void> {
  const { dim, hidden, layers, heads, kvHeads } = SHAPE;
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string('qwen2')],
    ['general.name', gguf.string('tiny-qwen2')],
    ['qwen2.context_length', gguf.uint32(TINY_CONTEXT)],
    ['qwen2.embedding_length', gguf.uint32(dim)],
    ['qwen2.feed_forward_length', gguf.uint32(hidden)],
    ['qwen2.block_count', gguf.uint32(layers)],
    ['qwen2.attention.head_count', gguf.uint32(heads)],
    ['qwen2.attention.head_count_kv', gguf.uint32(kvHeads)],
    ['qwen2.attention.layer_norm_rms_epsilon', gguf.float32(1e-6)],
    ...syntheticVocab(),
  ];
  await writeGguf(file, {
    metadata,
    tensors: randomTensors(512).map((t) => ({ ...t, type: GGML_TYPE.F32 })),
  });
}

/** Our PEFT export of a GGUF adapter (src/factory/exports.ts), written as a folder. */
async function exportPeft(
  adapterFile: string,
  base: GgufFile,
  baseName: string,
  out: string,
  ropeLayout: 'hf' | 'gguf' = 'hf',
): Promise<void> {
  const files = peftFiles(await loadLoraGguf(adapterFile), peftBaseOf(base, baseName), {
    ropeLayout,
  });
  await mkdir(out, { recursive: true });
  for (const f of files) await writeFile(path.join(out, f.name), f.bytes);
}

/** Every tensor of `got` equals the one of the same name in `want`, and no tensor is missing. */
async function assertSameTensors(got: GgufFile, want: GgufFile): Promise<void> {
  assert.deepEqual(got.tensors.map((t) => t.name).sort(), want.tensors.map((t) => t.name).sort());
  for (const info of want.tensors) {
    const mine = got.findTensor(info.name)!;
    assert.deepEqual(mine.dims, info.dims, info.name);
    const [a, b] = [await got.tensorFloat32(mine), await want.tensorFloat32(info)];
    for (let i = 0; i < a.length; i++)
      assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-7, `${info.name}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

describe('PEFT → llama.cpp LoRA GGUF import', () => {
  it('round-trips our PEFT export of a llama adapter, q/k rows re-permuted', async () => {
    const baseFile = path.join(dir, 'llama', 'tiny.gguf');
    await writeTinyModel(baseFile);
    const base = await readGguf(baseFile);
    const adapterFile = path.join(dir, 'llama', 'adapter.gguf');
    await writeTinyAdapter(adapterFile, 3);
    const peft = path.join(dir, 'llama', 'peft');
    await exportPeft(adapterFile, base, 'tiny', peft);

    const imported = await importPeftAdapter(peft, { name: 'tiny', file: base });
    const original = await readGguf(adapterFile);
    const back = await readGguf(imported.bytes);
    await assertSameTensors(back, original);
    assert.equal(back.metadata.get('general.architecture')?.value, 'llama');
    assert.equal(back.metadata.get('general.type')?.value, 'adapter');
    assert.equal(back.metadata.get('adapter.type')?.value, 'lora');
    assert.equal(back.metadata.get('adapter.lora.alpha')?.type, 'float32');
    assert.equal(
      back.metadata.get('adapter.lora.alpha')?.value,
      original.metadata.get('adapter.lora.alpha')?.value,
    );
    assert.equal(imported.baseModelNameOrPath, 'tiny');

    // The point of the round trip: PEFT's q lora_B is in another row order than the GGUF's
    // (6 heads, 2 kv heads), and an import that skips the permutation gets other rows back.
    const weights = await readSafetensors(path.join(peft, 'adapter_model.safetensors'));
    const peftQ = await weights.tensorFloat32(peftKey(0, 'attn_q', 'B'));
    const ggufQ = await original.tensorFloat32(original.findTensor('blk.0.attn_q.weight.lora_b')!);
    assert.notDeepEqual(peftQ, ggufQ);
    const unpermuted = await readGguf(
      (await importPeftAdapter(peft, { name: 'tiny', file: base }, { ropeLayout: 'gguf' })).bytes,
    );
    assert.notDeepEqual(
      await unpermuted.tensorFloat32(unpermuted.findTensor('blk.0.attn_q.weight.lora_b')!),
      ggufQ,
    );
  });

  it('round-trips a qwen2 adapter, whose rows stay as they are', async () => {
    const baseFile = path.join(dir, 'qwen2', 'tiny-qwen2.gguf');
    await writeTinyQwen2(baseFile);
    const base = await readGguf(baseFile);
    const adapter = LoraAdapter.create(
      TINY_CONFIG,
      { rank: 8, alpha: 16, dropout: 0, targets: [...LORA_TARGETS] },
      5,
    );
    const random = new Prng(6);
    for (const layer of adapter.layers)
      for (const pair of Object.values(layer))
        for (let i = 0; i < pair.b.length; i++) pair.b[i] = 0.05 * random.normal();
    const adapterFile = path.join(dir, 'qwen2', 'adapter.gguf');
    await saveLoraGguf(adapterFile, adapter, {
      architecture: 'qwen2',
      baseModelName: 'tiny-qwen2',
    });
    const peft = path.join(dir, 'qwen2', 'peft');
    await exportPeft(adapterFile, base, 'tiny-qwen2', peft);

    const original = await readGguf(adapterFile);
    const weights = await readSafetensors(path.join(peft, 'adapter_model.safetensors'));
    assert.deepEqual(
      await weights.tensorFloat32(peftKey(1, 'attn_k', 'B')),
      await original.tensorFloat32(original.findTensor('blk.1.attn_k.weight.lora_b')!),
    );
    const back = await readGguf(
      (await importPeftAdapter(peft, { name: 'tiny-qwen2', file: base })).bytes,
    );
    await assertSameTensors(back, original);
    assert.equal(back.metadata.get('general.architecture')?.value, 'qwen2');
    assert.equal(back.metadata.get('adapter.lora.alpha')?.value, 16);
  });

  it('round-trips a GPT-2 adapter (Conv1D: fan_in_fan_out, fused c_attn)', async () => {
    const baseFile = path.join(dir, 'gpt2', 'gpt2.gguf');
    await mkdir(path.dirname(baseFile), { recursive: true });
    const shape = {
      dim: 16,
      hidden: 64,
      layers: 2,
      heads: 2,
      kvHeads: 2,
      context: 32,
      tied: false,
    };
    await writeRandomGpt2(baseFile, shape, () => GGML_TYPE.F32, 21);
    const model = await loadGpt2Gguf(baseFile);
    const adapter = LoraAdapter.create(
      model.config,
      { rank: 4, alpha: 8, dropout: 0, targets: [...GPT2_LORA_TARGETS] },
      9,
    );
    const random = new Prng(10);
    for (const layer of adapter.layers)
      for (const pair of Object.values(layer))
        for (let i = 0; i < pair.b.length; i++) pair.b[i] = 0.05 * random.normal();
    const adapterFile = path.join(dir, 'gpt2', 'adapter.gguf');
    await saveLoraGguf(adapterFile, adapter, { architecture: 'gpt2', baseModelName: 'gpt2' });
    const base = await readGguf(baseFile);
    const peft = path.join(dir, 'gpt2', 'peft');
    await exportPeft(adapterFile, base, 'gpt2', peft);
    const back = await readGguf(
      (await importPeftAdapter(peft, { name: 'gpt2', file: base })).bytes,
    );
    await assertSameTensors(back, await readGguf(adapterFile));
    assert.equal(back.metadata.get('general.architecture')?.value, 'gpt2');
    // A llama-family PEFT folder does not fit a GPT-2 base.
    await assert.rejects(
      importPeftAdapter(path.join(dir, 'llama', 'peft'), { name: 'gpt2', file: base }),
      { code: 'ADAPTER_BASE_MISMATCH' },
    );
  });

  it("folds rsLoRA and alpha_pattern into llama.cpp's one alpha", async () => {
    const base = await readGguf(path.join(dir, 'llama', 'tiny.gguf'));
    const peft = path.join(dir, 'llama', 'peft');
    const scaled = path.join(dir, 'llama', 'peft-scaled');
    await mkdir(scaled, { recursive: true });
    const config = JSON.parse(await readFile(path.join(peft, 'adapter_config.json'), 'utf8'));
    const r = config.r as number;
    const alpha = config.lora_alpha as number;
    await writeFile(
      path.join(scaled, 'adapter_config.json'),
      JSON.stringify({ ...config, use_rslora: true, alpha_pattern: { q_proj: 2 * alpha } }),
    );
    await writeFile(
      path.join(scaled, 'adapter_model.safetensors'),
      await readFile(path.join(peft, 'adapter_model.safetensors')),
    );
    const plain = await readGguf(
      (await importPeftAdapter(peft, { name: 'tiny', file: base })).bytes,
    );
    const got = await readGguf(
      (await importPeftAdapter(scaled, { name: 'tiny', file: base })).bytes,
    );
    // PEFT's rsLoRA scale is alpha/√r; llama.cpp's is alpha'/r, so alpha' = alpha·√r.
    const ggufAlpha = got.metadata.get('adapter.lora.alpha')!.value as number;
    assert.ok(Math.abs(ggufAlpha - alpha * Math.sqrt(r)) < 1e-5, String(ggufAlpha));
    const q = (f: GgufFile, layer: number, t: string) =>
      f.tensorFloat32(f.findTensor(`blk.${layer}.${t}.weight.lora_b`)!);
    const [qPlain, qScaled] = [await q(plain, 2, 'attn_q'), await q(got, 2, 'attn_q')];
    for (let i = 0; i < qPlain.length; i++)
      assert.ok(Math.abs(qScaled[i]! - 2 * qPlain[i]!) < 1e-6, `q_proj B[${i}] doubled`);
    assert.deepEqual(await q(got, 2, 'attn_v'), await q(plain, 2, 'attn_v'));
  });

  it('parses hf: references and nothing else', () => {
    assert.deepEqual(parseHubAdapterRef('hf:someone/lora'), {
      repo: 'someone/lora',
      revision: 'main',
      path: '',
    });
    assert.deepEqual(parseHubAdapterRef('hf:someone/lora@v1.2/adapters/chat'), {
      repo: 'someone/lora',
      revision: 'v1.2',
      path: 'adapters/chat',
    });
    assert.equal(parseHubAdapterRef('someone/lora'), undefined);
    assert.throws(() => parseHubAdapterRef('hf:someone/lora/../x'), { code: 'VALIDATION_FAILED' });
    assert.throws(() => parseHubAdapterRef('hf:someone'), { code: 'VALIDATION_FAILED' });
  });
});

describe('load_lora_adapter with a PEFT folder, local or hf:', () => {
  let node: ServingNode;
  let peft: string;
  let hub: Server;
  let hubRequests = 0;
  let ggufId: string;
  const load = (lora_name: string, lora_path: string) =>
    call(node.url, 'POST', '/v1/load_lora_adapter', {
      token: node.operatorKey,
      body: { lora_name, lora_path },
    });
  const complete = async (model: string) => {
    const answer = await call(node.url, 'POST', '/v1/completions', {
      token: node.callerKey,
      body: { model, prompt: 'once upon a time', max_tokens: 12, temperature: 0 },
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body.choices[0].text as string;
  };
  /** A bad PEFT folder: the export's files, changed. */
  const badFolder = async (
    name: string,
    change: { config?: object | null; weights?: Uint8Array | null; bin?: boolean },
  ) => {
    const out = path.join(node.dataDir, name);
    await mkdir(out, { recursive: true });
    const config = JSON.parse(await readFile(path.join(peft, 'adapter_config.json'), 'utf8'));
    if (change.config !== null)
      await writeFile(
        path.join(out, 'adapter_config.json'),
        JSON.stringify({ ...config, ...change.config }),
      );
    if (change.weights !== null)
      await writeFile(
        path.join(out, 'adapter_model.safetensors'),
        change.weights ?? (await readFile(path.join(peft, 'adapter_model.safetensors'))),
      );
    if (change.bin) await writeFile(path.join(out, 'adapter_model.bin'), 'PK');
    return out;
  };

  before(async () => {
    node = await startServingNode();
    const adapterFile = path.join(node.dataDir, 'style.gguf');
    await writeTinyAdapter(adapterFile, 11, { scale: 0.3 });
    peft = path.join(node.dataDir, 'style-peft');
    await exportPeft(
      adapterFile,
      await readGguf(path.join(node.dataDir, 'models', 'tiny.gguf')),
      'tiny',
      peft,
    );
    const loaded = await load('style-gguf', adapterFile);
    assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
    ggufId = loaded.body.id;
    // A hub as huggingface.co serves files: /<repo>/resolve/<revision>/<path>.
    hub = createServer((req, res) => {
      hubRequests++;
      const match = /^\/someone\/style\/resolve\/main\/(sub\/)?([a-z_.]+)$/.exec(req.url ?? '');
      if (!match) return void res.writeHead(404).end();
      readFile(path.join(match[1] ? peft : node.dataDir, match[2]!)).then(
        (bytes) => res.writeHead(200, { 'content-length': bytes.length }).end(bytes),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => hub.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    await new Promise<void>((resolve) => hub?.close(() => resolve()));
    await node?.close();
  });

  it('answers as the GGUF adapter it was exported from', async () => {
    const loaded = await load('style-peft', peft);
    assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
    assert.equal(loaded.body.base_model, 'tiny');
    const [fromGguf, fromPeft, bare] = [
      await complete('style-gguf'),
      await complete('style-peft'),
      await complete('tiny'),
    ];
    assert.equal(fromPeft, fromGguf);
    assert.notEqual(fromGguf, bare, 'the adapter changes the greedy completion');
    // The same folder with q/k lora_B rows left in the GGUF's order: the import's permutation
    // is what makes the completions equal.
    const unpermuted = path.join(node.dataDir, 'style-peft-gguf-rows');
    await exportPeft(
      path.join(node.dataDir, 'style.gguf'),
      await readGguf(path.join(node.dataDir, 'models', 'tiny.gguf')),
      'tiny',
      unpermuted,
      'gguf',
    );
    assert.equal((await load('style-rows', unpermuted)).status, 200);
    assert.notEqual(await complete('style-rows'), fromGguf);
  });

  it('downloads hf:owner/name/subfolder from the hub, once, to the same adapter', async () => {
    const local = (await call(node.url, 'GET', '/v1/lora_adapters', { token: node.callerKey })).body
      .data as { id: string; names: string[] }[];
    const localId = local.find((a) => a.names.includes('style-peft'))!.id;
    process.env.OPENLEDGER_HF_ENDPOINT = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
    try {
      const loaded = await load('style-hub', 'hf:someone/style/sub');
      assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
      assert.equal(loaded.body.id, localId);
      const served = hubRequests;
      assert.equal(served, 2, 'adapter_config.json and adapter_model.safetensors');
      assert.equal((await load('style-hub-again', 'hf:someone/style/sub')).body.id, localId);
      assert.equal(hubRequests, served, 'the second load reads the cache');
      const gguf = await load('style-hub-gguf', 'hf:someone/style/style.gguf');
      assert.equal(gguf.status, 200, JSON.stringify(gguf.body));
      assert.equal(gguf.body.id, ggufId);
      const missing = await load('style-none', 'hf:someone/none');
      assert.equal(missing.status, 404, JSON.stringify(missing.body));
      assert.equal(missing.body.error.code, 'adapter_not_found');
      assert.match(missing.body.error.message, /no adapter_config\.json/);
      process.env.OPENLEDGER_HF_ENDPOINT = 'http://127.0.0.1:1';
      const offline = await load('style-offline', 'hf:someone/other');
      assert.equal(offline.status, 502, JSON.stringify(offline.body));
      assert.equal(offline.body.error.code, 'model_download_failed');
      assert.match(offline.body.error.message, /offline/);
    } finally {
      delete process.env.OPENLEDGER_HF_ENDPOINT;
    }
    const bare = await load('style-bare', 'someone/style');
    assert.equal(bare.status, 404);
    assert.equal(bare.body.error.code, 'adapter_not_found');
    assert.match(bare.body.error.message, /hf:someone\/style/);
  });

  it('refuses what llama.cpp cannot run, with a clear code', async () => {
    const cases: [string, Promise<string>, number, string, RegExp][] = [
      [
        'no-config',
        badFolder('bad-no-config', { config: null }),
        400,
        'ADAPTER_INVALID',
        /adapter_config\.json/,
      ],
      [
        'dora',
        badFolder('bad-dora', { config: { use_dora: true } }),
        400,
        'ADAPTER_INVALID',
        /DoRA/,
      ],
      [
        'modules',
        badFolder('bad-modules', { config: { modules_to_save: ['lm_head'] } }),
        400,
        'ADAPTER_INVALID',
        /modules_to_save/,
      ],
      [
        'embed',
        badFolder('bad-embed', { config: { target_modules: ['q_proj', 'embed_tokens'] } }),
        400,
        'ADAPTER_INVALID',
        /embed_tokens/,
      ],
      ['bin', badFolder('bad-bin', { weights: null, bin: true }), 400, 'ADAPTER_INVALID', /pickle/],
      [
        'shape',
        badFolder('bad-shape', {
          weights: encodeSafetensors([
            {
              name: peftKey(0, 'attn_q', 'A'),
              dtype: 'F32',
              shape: [4, 64],
              data: new Float32Array(256),
            },
            {
              name: peftKey(0, 'attn_q', 'B'),
              dtype: 'F32',
              shape: [96, 4],
              data: new Float32Array(384),
            },
          ]),
        }),
        400,
        'ADAPTER_BASE_MISMATCH',
        /q_proj is \[96, 64\]/,
      ],
    ];
    for (const [name, folder, status, code, message] of cases) {
      const answer = await load(`bad-${name}`, await folder);
      assert.equal(answer.status, status, `${name}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error.code, code.toLowerCase(), name);
      assert.match(answer.body.error.message, message, name);
    }
  });
});
