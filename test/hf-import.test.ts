import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getLlama, type Llama } from 'node-llama-cpp';
import {
  BpeTokenizer,
  GGML_TYPE,
  SentencePieceTokenizer,
  llamaHyperparams,
  loadLlamaGguf,
  loadModelGguf,
  readGguf,
} from '../src/engine/index.ts';
import { convertHfFolder, ggufToHfFolder } from '../src/engine/hf/index.ts';
import { readSafetensors } from '../src/engine/safetensors.ts';
import { parseHubRef, resolveModelSource } from '../src/factory/download.ts';
import { ModelCatalog } from '../src/factory/models.ts';
import {
  AIDREAMS_GGUF,
  BPE_TRICKY_TEXTS,
  writeRandomModel,
  writeRandomQwen2,
  type ArchShape,
} from './helpers/models.ts';

let dir: string;
let original: string;
let llama: Llama | undefined;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'openledger-hf-'));
  original = path.join(dir, 'random.gguf');
  await writeRandomModel(original, () => GGML_TYPE.F32);
});
after(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const SAMPLES = [
  'Once upon a time, the kettle sang.',
  'hello world',
  ' two  spaces\nand a line',
  'ünïcödé ✓',
];

/** Same tensors, byte for byte, by name; same hyperparameters and tokenizer behaviour. */
async function assertSameModel(a: string, b: string): Promise<void> {
  const x = await readGguf(a);
  const y = await readGguf(b);
  assert.deepEqual(y.tensors.map((t) => t.name).sort(), x.tensors.map((t) => t.name).sort());
  for (const t of x.tensors) {
    const u = y.tensor(t.name);
    assert.deepEqual(u.dims, t.dims, t.name);
    assert.equal(u.type, t.type, t.name);
    assert.ok(
      Buffer.from(await y.tensorData(u)).equals(Buffer.from(await x.tensorData(t))),
      `${t.name} bytes`,
    );
  }
  const hx = llamaHyperparams(x.metadata);
  const hy = llamaHyperparams(y.metadata);
  assert.deepEqual({ ...hy, ropeFreqBase: 0 }, { ...hx, ropeFreqBase: 0 });
  assert.ok(Math.abs(hy.ropeFreqBase - hx.ropeFreqBase) < 1e-3);
  const tx = SentencePieceTokenizer.fromGguf(x.metadata);
  const ty = SentencePieceTokenizer.fromGguf(y.metadata);
  assert.equal(ty.vocabSize, tx.vocabSize);
  assert.equal(ty.bosId, tx.bosId);
  assert.equal(ty.eosId, tx.eosId);
  for (let id = 0; id < tx.vocabSize; id++) {
    assert.equal(ty.piece(id), tx.piece(id));
    assert.equal(ty.tokenType(id), tx.tokenType(id), `type of ${id}`);
  }
  for (const text of SAMPLES) assert.deepEqual(ty.encode(text), tx.encode(text), text);
}

describe('Hugging Face folders', () => {
  it('a GGUF exported as a Hugging Face folder converts back to the same tensors, byte for byte', async () => {
    const folder = path.join(dir, 'hf-single');
    await ggufToHfFolder(original, folder);
    assert.deepEqual((await readdir(folder)).sort(), [
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const st = await readSafetensors(path.join(folder, 'model.safetensors'));
    assert.deepEqual(st.tensor('model.layers.0.self_attn.k_proj.weight').shape, [32, 96]);
    assert.ok(st.findTensor('lm_head.weight'));
    const back = path.join(dir, 'back.gguf');
    await convertHfFolder(folder, back, { repository: 'someone/random-llama' });
    await assertSameModel(original, back);
    const meta = (await readGguf(back)).metadata;
    assert.equal(meta.get('tokenizer.ggml.pre')?.value, 'default');
    assert.equal(meta.get('general.source.huggingface.repository')?.value, 'someone/random-llama');
    // the q rows really moved in the Hugging Face file
    const q = await st.tensorFloat32('model.layers.0.self_attn.q_proj.weight');
    const gq = await (await readGguf(original)).tensorFloat32('blk.0.attn_q.weight');
    assert.notDeepEqual(q, gq);
  });

  it('reads sharded folders (model.safetensors.index.json) and refuses other architectures', async () => {
    const folder = path.join(dir, 'hf-sharded');
    await ggufToHfFolder(original, folder, { shards: 3 });
    const index = JSON.parse(
      await readFile(path.join(folder, 'model.safetensors.index.json'), 'utf8'),
    );
    assert.equal(new Set(Object.values(index.weight_map)).size, 3);
    const back = path.join(dir, 'back-sharded.gguf');
    await convertHfFolder(folder, back);
    await assertSameModel(original, back);

    const config = JSON.parse(await readFile(path.join(folder, 'config.json'), 'utf8'));
    await writeFile(
      path.join(folder, 'config.json'),
      JSON.stringify({ ...config, architectures: ['GPTNeoXForCausalLM'] }),
    );
    await assert.rejects(convertHfFolder(folder, path.join(dir, 'x.gguf')), {
      code: 'MODEL_UNSUPPORTED',
    });
  });

  it('the converted model runs in llama.cpp to the logits of the original', async () => {
    const back = path.join(dir, 'back.gguf');
    const tokens = [1, 300, 301, 302, 5, 400, 77];
    llama ??= await getLlama({
      gpu: false,
      build: 'never',
      maxThreads: 2,
      logLevel: 'error' as never,
    });
    const logitsOf = async (file: string) => {
      const model = await llama!.loadModel({ modelPath: file });
      const context = await model.createContext({
        threads: 2,
        contextSize: 64,
        experimentalKvCacheKeyType: 'F32',
        experimentalKvCacheValueType: 'F32',
      });
      try {
        const out = await context
          .getSequence()
          .controlledEvaluate(
            tokens.map((t) => [t, { generateNext: { logits: true } }] as const) as never,
          );
        return out.map((r) => (r as { next: { logits: Map<number, number> } }).next.logits);
      } finally {
        await context.dispose();
        await model.dispose();
      }
    };
    const a = await logitsOf(original);
    const b = await logitsOf(back);
    const ours = (await loadLlamaGguf(back)).forwardSequence(tokens);
    let same = 0;
    let ourDiff = 0;
    let maxLogit = 0;
    a.forEach((m, p) => {
      for (const [token, logit] of m) {
        same = Math.max(same, Math.abs(logit - b[p]!.get(token)!));
        ourDiff = Math.max(ourDiff, Math.abs(logit - ours[p * 512 + token]!));
        maxLogit = Math.max(maxLogit, Math.abs(logit));
      }
    });
    assert.equal(same, 0, 'identical tensors and hyperparameters give identical logits');
    assert.ok(ourDiff / maxLogit < 1e-3, `our engine on the converted file: ${ourDiff / maxLogit}`);
  });

  it(
    'converts a real model (aidreams260K) exported as a folder and back',
    { skip: existsSync(AIDREAMS_GGUF) ? false : 'fixture absent' },
    async () => {
      const folder = path.join(dir, 'hf-aidreams');
      await ggufToHfFolder(AIDREAMS_GGUF, folder);
      const back = path.join(dir, 'aidreams-back.gguf');
      await convertHfFolder(folder, back);
      await assertSameModel(AIDREAMS_GGUF, back);
      // the fixture's known greedy continuation (its lines are quoted)
      const model = await loadLlamaGguf(back);
      assert.match(model.generate('"Echoes of', 8).text, /^ vectors unfold/);
    },
  );
});

describe('Hugging Face Qwen2 folders', () => {
  const shapes: [string, ArchShape, number][] = [
    [
      'GQA 4/2 heads, tied, F16',
      { dim: 64, hidden: 192, layers: 2, heads: 4, kvHeads: 2, context: 64, tied: true },
      GGML_TYPE.F16,
    ],
    [
      'one kv head, untied, F32',
      { dim: 128, hidden: 320, layers: 3, heads: 4, kvHeads: 1, context: 64, tied: false },
      GGML_TYPE.F32,
    ],
  ];
  for (const [label, shape, type] of shapes) {
    it(`a qwen2 GGUF (${label}) exported as a folder converts back to the same model`, async () => {
      const original = path.join(dir, `qwen2-${type}-${shape.dim}.gguf`);
      await writeRandomQwen2(original, shape, () => type as never);
      const folder = path.join(dir, `hf-qwen2-${type}-${shape.dim}`);
      await ggufToHfFolder(original, folder);
      const config = JSON.parse(await readFile(path.join(folder, 'config.json'), 'utf8'));
      assert.deepEqual(config.architectures, ['Qwen2ForCausalLM']);
      assert.equal(config.tie_word_embeddings, shape.tied);
      const st = await readSafetensors(path.join(folder, 'model.safetensors'));
      const kvDim = (shape.dim / shape.heads) * shape.kvHeads;
      assert.deepEqual(st.tensor('model.layers.0.self_attn.k_proj.bias').shape, [kvDim]);
      assert.equal(st.findTensor('lm_head.weight') !== undefined, !shape.tied);
      const back = path.join(dir, `qwen2-${type}-${shape.dim}-back.gguf`);
      await convertHfFolder(folder, back);

      const x = await readGguf(original);
      const y = await readGguf(back);
      // NeoX RoPE on both sides: q rows are not permuted
      assert.deepEqual(
        await st.tensorFloat32('model.layers.0.self_attn.q_proj.weight'),
        await x.tensorFloat32('blk.0.attn_q.weight'),
      );
      assert.deepEqual(y.tensors.map((t) => t.name).sort(), x.tensors.map((t) => t.name).sort());
      for (const t of x.tensors) {
        const u = y.tensor(t.name);
        assert.deepEqual(u.dims, t.dims, t.name);
        assert.equal(u.type, t.type, t.name);
        assert.ok(
          Buffer.from(await y.tensorData(u)).equals(Buffer.from(await x.tensorData(t))),
          `${t.name} bytes`,
        );
      }
      // every qwen2.* and tokenizer.* key comes back with its value, and no other appears
      const keys = (m: typeof x.metadata) =>
        new Map([...m].filter(([k]) => !k.startsWith('general.')).map(([k, v]) => [k, v.value]));
      assert.deepEqual(keys(y.metadata), keys(x.metadata));
      assert.equal(y.metadata.get('general.architecture')?.value, 'qwen2');
      assert.equal(y.metadata.get('general.file_type')?.value, type === GGML_TYPE.F16 ? 1 : 0);

      const a = await loadModelGguf(original);
      const b = await loadModelGguf(back);
      assert.ok(b.tokenizer instanceof BpeTokenizer);
      assert.equal(b.tokenizer.preTokenizer, 'qwen2');
      for (const text of BPE_TRICKY_TEXTS)
        assert.deepEqual(b.tokenizer.encode(text), a.tokenizer!.encode(text), text);
      const tokens = a.tokenizer!.encode('Once upon a time, 日本語 😀 <|tool|>');
      assert.ok(tokens.length > 4);
      const la = a.forwardSequence(tokens);
      const lb = b.forwardSequence(tokens);
      assert.ok(la.some((v) => v !== 0));
      assert.deepEqual(lb, la, 'identical files give identical logits');
    });
  }

  it('refuses a Qwen2 folder whose tokenizer is not byte-level BPE, and llama biases', async () => {
    const original = path.join(dir, 'qwen2-refuse.gguf');
    const shape = {
      dim: 64,
      hidden: 192,
      layers: 1,
      heads: 4,
      kvHeads: 2,
      context: 64,
      tied: true,
    };
    await writeRandomQwen2(original, shape, () => GGML_TYPE.F32);
    const folder = path.join(dir, 'hf-qwen2-refuse');
    await ggufToHfFolder(original, folder);
    const tokenizer = JSON.parse(await readFile(path.join(folder, 'tokenizer.json'), 'utf8'));
    await writeFile(
      path.join(folder, 'tokenizer.json'),
      JSON.stringify({ ...tokenizer, model: { ...tokenizer.model, byte_fallback: true } }),
    );
    await assert.rejects(convertHfFolder(folder, path.join(dir, 'x.gguf')), {
      code: 'MODEL_UNSUPPORTED',
    });
    await writeFile(path.join(folder, 'tokenizer.json'), JSON.stringify(tokenizer));
    const config = JSON.parse(await readFile(path.join(folder, 'config.json'), 'utf8'));
    await writeFile(
      path.join(folder, 'config.json'),
      JSON.stringify({ ...config, architectures: ['LlamaForCausalLM'] }),
    );
    await assert.rejects(convertHfFolder(folder, path.join(dir, 'x.gguf')), {
      code: 'MODEL_UNSUPPORTED',
      message: /self_attn\.[qkv]_proj\.bias/,
    });
  });
});

describe('model sources', () => {
  let hub: Server;
  let endpoint: string;
  const requests: { url: string; range?: string; auth?: string }[] = [];
  let folder: string;

  before(async () => {
    folder = path.join(dir, 'hub-files');
    await ggufToHfFolder(original, folder);
    await writeFile(path.join(folder, 'single.gguf'), await readFile(original));
    // A small hub: /<owner>/<name>/resolve/<rev>/<file>, ETag = sha256 as the hub gives for LFS
    // files, byte ranges, and a gated repo that wants a token.
    hub = createServer((req, res) => {
      requests.push({ url: req.url!, range: req.headers.range, auth: req.headers.authorization });
      const match = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(req.url!);
      if (!match || match[3] !== 'main') return void res.writeHead(404).end('Entry not found');
      if (match[1] === 'gated' && req.headers.authorization !== 'Bearer hf_secret')
        return void res.writeHead(401).end('gated');
      readFile(path.join(folder, decodeURIComponent(match[4]!))).then(
        (bytes) => {
          const sha = createHash('sha256').update(bytes).digest('hex');
          const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
          const from = range ? Number(range[1]) : 0;
          res.writeHead(range ? 206 : 200, {
            'content-length': bytes.length - from,
            'x-linked-etag': `"${sha}"`,
            ...(range
              ? { 'content-range': `bytes ${from}-${bytes.length - 1}/${bytes.length}` }
              : {}),
          });
          res.end(bytes.subarray(from));
        },
        () => res.writeHead(404).end('Entry not found'),
      );
    });
    await new Promise<void>((resolve) => hub.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => hub.close(() => resolve())));

  it('parses hub references', () => {
    assert.deepEqual(parseHubRef('TinyLlama/TinyLlama-1.1B'), {
      repo: 'TinyLlama/TinyLlama-1.1B',
      revision: 'main',
      file: undefined,
    });
    assert.deepEqual(parseHubRef('a/b@v1.0:x.Q4_0.gguf'), {
      repo: 'a/b',
      revision: 'v1.0',
      file: 'x.Q4_0.gguf',
    });
    assert.deepEqual(parseHubRef('a/b:x.gguf@abc123'), {
      repo: 'a/b',
      revision: 'abc123',
      file: 'x.gguf',
    });
    assert.equal(parseHubRef('a/b:x.bin'), undefined);
    assert.equal(parseHubRef('./models/x.gguf'), undefined);
    assert.equal(parseHubRef('a/b/c'), undefined);
  });

  it('adds a local GGUF and a local Hugging Face folder to the catalogue', async () => {
    const modelsDir = path.join(dir, 'models-local');
    const gguf = await resolveModelSource(original, { modelsDir, name: 'tiny' });
    assert.equal(gguf.name, 'tiny');
    assert.equal(
      gguf.sha256,
      createHash('sha256')
        .update(await readFile(original))
        .digest('hex'),
    );
    const converted = await resolveModelSource(path.join(dir, 'hf-single'), { modelsDir });
    assert.equal(converted.name, 'hf-single');
    await assertSameModel(original, converted.path);
    const catalog = new ModelCatalog([modelsDir]);
    assert.deepEqual((await catalog.list()).map((m) => m.name).sort(), ['hf-single', 'tiny']);
    await assert.rejects(resolveModelSource(original, { modelsDir, name: 'tiny' }), {
      code: 'CONFLICT',
    });
    await assert.rejects(resolveModelSource(original, { modelsDir, name: '../evil' }), {
      code: 'VALIDATION_FAILED',
    });
    await assert.rejects(resolveModelSource('not/a/thing/at/all', { modelsDir }), {
      code: 'VALIDATION_FAILED',
    });
  });

  it('downloads from a hub: a GGUF file, and a safetensors folder resumed from a part file', async () => {
    const modelsDir = path.join(dir, 'models-hub');
    const single = await resolveModelSource('someone/tiny-gguf:single.gguf', {
      modelsDir,
      endpoint,
    });
    assert.equal(single.name, 'someone--single');
    assert.equal(
      single.sha256,
      createHash('sha256')
        .update(await readFile(original))
        .digest('hex'),
    );

    // half of the weights already there from an interrupted run
    const cache = path.join(modelsDir, 'hf', 'someone--tiny-llama', 'main');
    const weights = await readFile(path.join(folder, 'model.safetensors'));
    await rm(cache, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(cache, { recursive: true }));
    await writeFile(path.join(cache, 'model.safetensors.part'), weights.subarray(0, 5000));
    requests.length = 0;
    const model = await resolveModelSource('someone/tiny-llama', { modelsDir, endpoint });
    assert.equal(model.name, 'someone--tiny-llama');
    assert.equal(model.source, 'hub-folder');
    assert.ok(
      requests.some((r) => r.url.endsWith('/model.safetensors') && r.range === 'bytes=5000-'),
      JSON.stringify(requests),
    );
    await assertSameModel(original, model.path);
    assert.equal(
      (await readGguf(model.path)).metadata.get('general.source.huggingface.repository')?.value,
      'someone/tiny-llama',
    );
    const record = JSON.parse(await readFile(path.join(cache, 'download.json'), 'utf8'));
    assert.equal(
      record['model.safetensors'].sha256,
      createHash('sha256').update(weights).digest('hex'),
    );
  });

  it('fails clearly: offline, unknown repo, gated without a token (and works with HF_TOKEN)', async () => {
    const modelsDir = path.join(dir, 'models-errors');
    const started = performance.now();
    await assert.rejects(
      resolveModelSource('someone/tiny-llama', { modelsDir, endpoint: 'http://127.0.0.1:1' }),
      { code: 'MODEL_DOWNLOAD_FAILED', message: /Cannot reach/ },
    );
    assert.ok(performance.now() - started < 5000, 'offline fails at once');
    await assert.rejects(resolveModelSource('someone/none:x.gguf@v2', { modelsDir, endpoint }), {
      code: 'MODEL_DOWNLOAD_FAILED',
      message: /HTTP 404/,
    });
    await assert.rejects(resolveModelSource('gated/model:single.gguf', { modelsDir, endpoint }), {
      code: 'MODEL_DOWNLOAD_FAILED',
      message: /HTTP 401/,
    });
    const ok = await resolveModelSource('gated/model:single.gguf', {
      modelsDir,
      endpoint,
      token: 'hf_secret',
    });
    assert.equal(ok.name, 'gated--single');
  });
});
