import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import SwaggerParser from '@apidevtools/swagger-parser';
import { LoraAdapter, Prng, saveLoraGguf, type LoraTarget } from '../src/engine/index.ts';
import {
  denseDelta,
  loraScale,
  mergeDeltas,
  mergeLoraFiles,
  readLoraFile,
  truncatedSvd,
  type LoraFileInfo,
} from '../src/serving/merge.ts';
import { adaptersLineage, adaptersMerge } from '../src/cli/commands/chat.ts';
import type { Output } from '../src/cli/output.ts';
import { call } from './helpers/http.ts';
import {
  TINY_CONFIG,
  startServingNode,
  writeTinyAdapter,
  type ServingNode,
} from './helpers/serving.ts';

/** ΔW of every target of a LoRA file as llama.cpp applies it: (alpha / r)·B·A, row-major [out][in]. */
async function deltas(info: LoraFileInfo): Promise<Map<string, Float64Array>> {
  const out = new Map<string, Float64Array>();
  for (const [target, pair] of info.pairs) {
    const a = await info.file.tensorFloat32(pair.a);
    const b = await info.file.tensorFloat32(pair.b);
    const s = loraScale(info.alpha, pair.rank);
    const d = new Float64Array(pair.rows * pair.cols);
    for (let i = 0; i < pair.rows; i++)
      for (let j = 0; j < pair.rank; j++)
        for (let x = 0; x < pair.cols; x++)
          d[i * pair.cols + x]! += s * b[i * pair.rank + j]! * a[j * pair.cols + x]!;
    out.set(target, d);
  }
  return out;
}

function maxAbsDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  assert.equal(x.length, y.length);
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  return worst;
}

/** TIES as PEFT writes it, with a sort for the top-k (ties in magnitude: the earlier index). */
function referenceTies(ds: Float32Array[], weights: number[], density: number): Float64Array {
  const size = ds[0]!.length;
  const k = Math.floor(density * size);
  const trimmed = ds.map((d) => {
    const order = [...d.keys()].sort((i, j) => Math.abs(d[j]!) - Math.abs(d[i]!) || i - j);
    const t = new Float64Array(size);
    for (const i of order.slice(0, k)) t[i] = d[i]!;
    return t;
  });
  return disjointMean(trimmed, weights);
}

function disjointMean(ts: ArrayLike<number>[], weights: number[]): Float64Array {
  const out = new Float64Array(ts[0]!.length);
  for (let i = 0; i < out.length; i++) {
    const sign = ts.reduce((sum, t) => sum + t[i]!, 0) >= 0 ? 1 : -1;
    let value = 0;
    let count = 0;
    ts.forEach((t, s) => {
      if (Math.sign(t[i]!) === sign) {
        value += weights[s]! * t[i]!;
        count++;
      }
    });
    out[i] = value / Math.max(1, count);
  }
  return out;
}

/** A random adapter of the tiny model on some targets (B random too). */
async function writeAdapter(
  file: string,
  seed: number,
  rank: number,
  targets: LoraTarget[],
  alpha = rank,
): Promise<void> {
  const adapter = LoraAdapter.create(TINY_CONFIG, { rank, alpha, dropout: 0, targets }, seed);
  const random = new Prng(seed + 1000);
  for (const layer of adapter.layers)
    for (const pair of Object.values(layer))
      for (let i = 0; i < pair.b.length; i++) pair.b[i] = 0.05 * random.normal();
  await saveLoraGguf(file, adapter, { alpha, baseModelName: 'tiny' });
}

function randomMatrix(rows: number, cols: number, seed: number): Float32Array {
  const random = new Prng(seed);
  return Float32Array.from({ length: rows * cols }, () => random.normal());
}

describe('adapter merges: the numbers', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'openledger-merge-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('linear: ΔW of the merge is Σ wᵢ ΔWᵢ (different ranks, alphas and targets)', async () => {
    const a = path.join(dir, 'a.gguf');
    const b = path.join(dir, 'b.gguf');
    await writeTinyAdapter(a, 1, { rank: 4 });
    // rank 8, alpha 16 (scale 2), and only two targets: the others come from `a` alone.
    await writeAdapter(b, 7, 8, ['attn_q', 'ffn_down'], 16);
    const merged = await mergeLoraFiles({
      method: 'linear',
      params: {},
      sources: [
        { path: a, weight: 0.7 },
        { path: b, weight: -0.3 },
      ],
      baseModel: 'tiny',
    });
    assert.equal(merged.truncationError, undefined);
    assert.equal(merged.rank, 12);
    const file = path.join(dir, 'ab.gguf');
    await writeFile(file, merged.bytes);
    const [da, db, dm] = await Promise.all(
      [a, b, file].map(async (f) => deltas(await readLoraFile(f))),
    );
    assert.deepEqual([...dm!.keys()].sort(), [...da!.keys()].sort());
    let worst = 0;
    for (const [target, d] of dm!) {
      const want = da!.get(target)!.map((v, i) => 0.7 * v + -0.3 * (db!.get(target)?.[i] ?? 0));
      worst = Math.max(worst, maxAbsDiff(d, want));
    }
    assert.ok(worst < 1e-6, `max |ΔW' − Σ wᵢ ΔWᵢ| = ${worst}`);
    // Targets only `a` has keep rank 4, scaled back under the file's single alpha (12).
    assert.equal((await readLoraFile(file)).pairs.get('blk.0.attn_k.weight')!.rank, 4);
  });

  it('TIES and DARE of constructed deltas match reference implementations', async () => {
    const rows = 12;
    const cols = 10;
    const ds = [1, 2, 3].map((seed) => randomMatrix(rows, cols, seed));
    // Equal magnitudes and zeros: the top-k must still keep exactly k, earliest first.
    ds[0]!.fill(0.5, 0, 30);
    ds[1]!.fill(0, 40, 70);
    const weights = [0.5, 1.5, -0.4];
    const sources = ds.map((d, i) => denseDelta(d, cols, weights[i]!));
    for (const density of [0.2, 0.45, 1]) {
      const got = await mergeDeltas('ties', sources, rows, cols, { density });
      const want = referenceTies(ds, weights, density);
      assert.ok(maxAbsDiff(got, want) < 1e-6, `ties density ${density}`);
    }
    // DARE: each source's mask (alone, weight 1) is entries kept as d/density or dropped ...
    const density = 0.3;
    const masks = await Promise.all(
      ds.map((d, i) =>
        mergeDeltas('dare', [denseDelta(d, cols, 1)], rows, cols, {
          density,
          seed: 9,
          tensor: 't',
          sourceIndex: [i],
        }),
      ),
    );
    for (const [i, m] of masks.entries()) {
      let kept = 0;
      for (let x = 0; x < m.length; x++) {
        if (m[x] === 0) continue;
        kept++;
        assert.ok(Math.abs(m[x]! - ds[i]![x]! / density) < 1e-5);
      }
      assert.ok(kept > 15 && kept < 60, `kept ${kept} of 120 at density 0.3`); // ~6σ
    }
    // ... and the merges combine exactly those masked deltas.
    const options = { density, seed: 9, tensor: 't' };
    const dare = await mergeDeltas('dare', sources, rows, cols, options);
    const linearOfMasks = masks[0]!.map((_, x) =>
      masks.reduce((s, m, i) => s + weights[i]! * m[x]!, 0),
    );
    assert.ok(maxAbsDiff(dare, linearOfMasks) < 1e-5);
    const dareTies = await mergeDeltas('dare_ties', sources, rows, cols, options);
    assert.ok(maxAbsDiff(dareTies, disjointMean(masks, weights)) < 1e-5);
    // Deterministic per seed; another seed drops other entries.
    assert.deepEqual(await mergeDeltas('dare', sources, rows, cols, options), dare);
    const reseeded = await mergeDeltas('dare', sources, rows, cols, { ...options, seed: 10 });
    assert.ok(maxAbsDiff(reseeded, dare) > 0.1);
  });

  it('truncated SVD: exact on an exactly rank-r matrix, Eckart–Young optimal otherwise', async () => {
    for (const [rows, cols, r] of [
      [40, 30, 3],
      [300, 200, 6], // the randomized path: 6 + 10 < 200
    ] as const) {
      const u = randomMatrix(rows, r, rows);
      const v = randomMatrix(r, cols, cols);
      const m = new Float32Array(rows * cols);
      for (let i = 0; i < rows; i++)
        for (let j = 0; j < r; j++)
          for (let x = 0; x < cols; x++) m[i * cols + x]! += u[i * r + j]! * v[j * cols + x]!;
      const svd = await truncatedSvd(m, rows, cols, r);
      assert.ok(svd.residual / svd.norm < 1e-5, `${rows}×${cols}: ${svd.residual / svd.norm}`);
    }
    // Known singular values 2^-i: the best rank-4 error is √(Σ_{i≥4} σᵢ²) / ‖M‖.
    const n = 60;
    const q = (seed: number) => {
      // Orthonormal columns from Gram–Schmidt of a random matrix.
      const g = Array.from({ length: n }, (_, j) => Array.from(randomMatrix(n, 1, seed * 100 + j)));
      for (let j = 0; j < n; j++) {
        for (let p = 0; p < j; p++) {
          const dot = g[j]!.reduce((s, x, i) => s + x * g[p]![i]!, 0);
          g[j] = g[j]!.map((x, i) => x - dot * g[p]![i]!);
        }
        const norm = Math.hypot(...g[j]!);
        g[j] = g[j]!.map((x) => x / norm);
      }
      return g;
    };
    const [uq, vq] = [q(1), q(2)];
    const sigma = Array.from({ length: n }, (_, i) => 2 ** -i);
    const m = new Float32Array(n * n);
    for (let i = 0; i < n; i++)
      for (let x = 0; x < n; x++) {
        let sum = 0;
        for (let j = 0; j < n; j++) sum += uq[j]![i]! * sigma[j]! * vq[j]![x]!;
        m[i * n + x] = sum;
      }
    const svd = await truncatedSvd(m, n, n, 4);
    for (let i = 0; i < 4; i++)
      assert.ok(Math.abs(svd.singularValues[i]! - sigma[i]!) < 1e-5 * sigma[i]! + 1e-7);
    const best = Math.sqrt(
      sigma.slice(4).reduce((s, x) => s + x * x, 0) / sigma.reduce((s, x) => s + x * x, 0),
    );
    assert.ok(
      Math.abs(svd.residual / svd.norm - best) < 1e-3 * best,
      `${svd.residual / svd.norm} vs ${best}`,
    );
  });

  it('TIES of adapter files at full rank gives the reference TIES of their ΔWs', async () => {
    const a = path.join(dir, 'ta.gguf');
    const b = path.join(dir, 'tb.gguf');
    // attn_k and attn_v are 96 → 32: rank 32 is their smaller side, so nothing is truncated.
    await writeAdapter(a, 11, 4, ['attn_k', 'attn_v']);
    await writeAdapter(b, 12, 6, ['attn_k', 'attn_v']);
    const merged = await mergeLoraFiles({
      method: 'ties',
      params: { density: 0.3, rank: 32 },
      sources: [
        { path: a, weight: 1 },
        { path: b, weight: 0.5 },
      ],
      baseModel: 'tiny',
    });
    assert.ok(merged.truncationError! < 1e-5, `truncation error ${merged.truncationError}`);
    const file = path.join(dir, 'tab.gguf');
    await writeFile(file, merged.bytes);
    const [da, db, dm] = await Promise.all(
      [a, b, file].map(async (f) => deltas(await readLoraFile(f))),
    );
    for (const target of ['blk.0.attn_k.weight', 'blk.2.attn_v.weight']) {
      const want = referenceTies(
        [Float32Array.from(da!.get(target)!), Float32Array.from(db!.get(target)!)],
        [1, 0.5],
        0.3,
      );
      const scale = Math.max(...want.map(Math.abs));
      assert.ok(maxAbsDiff(dm!.get(target)!, want) < 1e-4 * scale, target);
    }
  });
});

describe('adapter merges: on a serving node', () => {
  let node: ServingNode;
  const ids: Record<string, string> = {};
  before(async () => {
    node = await startServingNode({ maxTokens: 32 });
    for (const [name, seed] of [
      ['merge-a', 21],
      ['merge-b', 22],
    ] as const) {
      const file = path.join(node.dataDir, `${name}.gguf`);
      await writeTinyAdapter(file, seed, { scale: 0.5 });
      const loaded = await call(node.url, 'POST', '/v1/load_lora_adapter', {
        token: node.operatorKey,
        body: { lora_name: name, lora_path: file },
      });
      assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
      ids[name] = loaded.body.id;
    }
  });
  after(() => node?.close());

  const complete = async (body: Record<string, unknown>) => {
    const answer = await call(node.url, 'POST', '/v1/completions', {
      token: node.callerKey,
      body: { prompt: 'the quick brown', max_tokens: 16, temperature: 0, ...body },
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body.choices[0].text as string;
  };

  it('a linear merge serves as the two adapters composed at its weights; cached; lineage', async () => {
    const recipe = {
      method: 'linear',
      adapters: [
        { id: 'merge-a', weight: 0.7 },
        { id: `adapter:${ids['merge-b']}`, weight: 0.3 },
      ],
    };
    const first = await call(node.url, 'POST', '/api/adapters/merge', {
      token: node.operatorKey,
      body: { ...recipe, name: 'merge-ab' },
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.cached, false);
    assert.equal(first.body.name, 'merge-ab');
    assert.match(first.body.id, /^[0-9a-f]{64}$/);
    assert.deepEqual(
      first.body.lineage.sources.map((s: { id: string; weight: number }) => [s.id, s.weight]),
      [
        [ids['merge-a'], 0.7],
        [ids['merge-b'], 0.3],
      ],
    );

    const composed = await complete({ model: 'tiny', adapters: recipe.adapters });
    const base = await complete({ model: 'tiny' });
    assert.notEqual(composed, base, 'the adapters change the output');
    assert.equal(await complete({ model: 'merge-ab' }), composed);
    assert.equal(await complete({ model: `adapter:${first.body.id}` }), composed);

    // The same recipe (by other names of the same adapters) is a cache hit, for any caller.
    const again = await call(node.url, 'POST', '/api/adapters/merge', {
      token: node.callerKey,
      body: {
        method: 'linear',
        adapters: [
          { id: `adapter:${ids['merge-a']}`, weight: 0.7 },
          { id: 'merge-b', weight: 0.3 },
        ],
      },
    });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.cached, true);
    assert.equal(again.body.id, first.body.id);

    // A merge of merges: its lineage is a tree.
    const ties = await call(node.url, 'POST', '/api/adapters/merge', {
      token: node.callerKey,
      body: {
        method: 'dare_ties',
        adapters: [{ id: 'merge-ab' }, { id: 'merge-a', weight: 0.5 }],
        density: 0.6,
        rank: 8,
        seed: 3,
      },
    });
    assert.equal(ties.status, 200, JSON.stringify(ties.body));
    assert.ok(ties.body.truncationError > 0 && ties.body.truncationError < 1);
    assert.equal(ties.body.lineage.rank, 8);
    assert.notEqual(await complete({ model: `adapter:${ties.body.id}` }), base);
    const lineage = await call(node.url, 'GET', `/api/adapters/${ties.body.id}/lineage`, {
      token: node.callerKey,
    });
    assert.equal(lineage.status, 200, JSON.stringify(lineage.body));
    assert.equal(lineage.body.merge.method, 'dare_ties');
    assert.deepEqual(lineage.body.merge.params, { density: 0.6, rank: 8, seed: 3 });
    const [ab, a] = lineage.body.sources;
    assert.equal(ab.id, first.body.id);
    assert.equal(ab.ref, 'merge-ab');
    assert.equal(ab.merge.method, 'linear');
    assert.deepEqual(
      ab.sources.map((s: { id: string }) => s.id),
      [ids['merge-a'], ids['merge-b']],
    );
    assert.equal(a.id, ids['merge-a']);
    assert.equal(a.merge, undefined);
    const byName = await call(node.url, 'GET', '/api/adapters/merge-ab/lineage', {
      token: node.callerKey,
    });
    assert.equal(byName.body.id, first.body.id);
  });

  it('openledger adapters merge|lineage (in process)', async () => {
    const printed: { value: unknown; text: string }[] = [];
    const out: Output = {
      json: false,
      result: (value, human) => printed.push({ value, text: human(value) }),
      progress: () => {},
      progressUpdate: () => {},
      progressDone: () => {},
      error: (error) => {
        throw error;
      },
    };
    const flags = { url: node.url, key: node.callerKey };
    await adaptersMerge(
      { ...flags, method: 'ties', adapter: ['merge-a:1', 'merge-b:-0.5'], density: '0.4' },
      out,
    );
    const merged = printed[0]!.value as { id: string; cached: boolean };
    assert.equal(merged.cached, false);
    assert.match(
      printed[0]!.text,
      /^merged adapter:[0-9a-f]{64}\n {2}ties \(density 0\.4, rank 4\)/,
    );
    assert.match(printed[0]!.text, /-0\.5 × merge-b/);
    await adaptersLineage(merged.id, flags, out);
    assert.match(
      printed[1]!.text,
      /= ties\(density 0\.4, rank 4\) over tiny\n {2}1 × merge-a adapter:/,
    );
  });

  it('documents the endpoints in a valid OpenAPI document', async () => {
    const { body } = await call(node.url, 'GET', '/api/openapi.json');
    await SwaggerParser.validate(structuredClone(body));
    assert.ok(body.paths['/api/adapters/merge'].post.responses['400']);
    assert.ok(body.paths['/api/adapters/{id}/lineage'].get);
  });

  it('refuses bad merges with a clear code', async () => {
    const merge = (body: Record<string, unknown>, token = node.callerKey) =>
      call(node.url, 'POST', '/api/adapters/merge', { token, body });
    const expect = async (body: Record<string, unknown>, status: number, code: string) => {
      const answer = await merge(body);
      assert.equal(answer.status, status, JSON.stringify(answer.body));
      assert.equal(answer.body.error.code, code, JSON.stringify(answer.body));
    };
    await expect({ method: 'linear', adapters: [{ id: 'merge-a' }] }, 400, 'VALIDATION_FAILED');
    await expect(
      { method: 'ties', adapters: [{ id: 'merge-a' }, { id: 'merge-b' }], density: 0 },
      400,
      'VALIDATION_FAILED',
    );
    await expect(
      { method: 'linear', adapters: [{ id: 'merge-a' }, { id: 'merge-b' }], density: 0.5 },
      400,
      'VALIDATION_FAILED',
    );
    await expect(
      { method: 'linear', adapters: [{ id: 'merge-a' }, { id: 'no-such-adapter' }] },
      404,
      'ADAPTER_NOT_FOUND',
    );
    await expect(
      { method: 'linear', adapters: [{ id: 'no-such-adapter' }, { id: 'merge-a' }] },
      404,
      'ADAPTER_NOT_FOUND',
    );
    // An adapter of another architecture, in the blob store.
    const alien = path.join(node.dataDir, 'alien.gguf');
    const adapter = LoraAdapter.create(
      TINY_CONFIG,
      { rank: 4, alpha: 4, dropout: 0, targets: ['attn_q'] },
      5,
    );
    await saveLoraGguf(alien, adapter, { architecture: 'qwen2', baseModelName: 'tiny' });
    const blob = await node.node.context.blobs.put(await readFile(alien));
    await expect(
      { method: 'linear', adapters: [{ id: 'merge-a' }, { id: `adapter:${blob.id}` }] },
      400,
      'ADAPTER_BASE_MISMATCH',
    );
    // Naming is for operators; anyone may merge.
    const named = await merge({
      method: 'linear',
      adapters: [{ id: 'merge-a' }, { id: 'merge-b' }],
      name: 'mine',
    });
    assert.equal(named.status, 403, JSON.stringify(named.body));
    const anonymous = await call(node.url, 'POST', '/api/adapters/merge', {
      body: { method: 'linear', adapters: [{ id: 'merge-a' }, { id: 'merge-b' }] },
    });
    assert.equal(anonymous.status, 401);
    const noLineage = await call(node.url, 'GET', `/api/adapters/${ids['merge-a']}/lineage`, {
      token: node.callerKey,
    });
    assert.equal(noLineage.status, 404);
    assert.equal(noLineage.body.error.code, 'NOT_FOUND');
  });
});
