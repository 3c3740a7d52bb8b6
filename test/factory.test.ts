import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256 } from 'viem';
import { devAccount } from '../src/chain/index.ts';
import { canonicalJson, rowHash, type RowContent } from '../src/datanets/ingest/index.ts';
import { loadLlamaGguf, loadLoraGguf } from '../src/engine/index.ts';
import {
  heldOut,
  normalizeTrainParams,
  renderExample,
  type DatasetRow,
  type TrainingManifest,
} from '../src/factory/index.ts';
import { runTraining, type TrainMessage } from '../src/factory/train-core.ts';
import { DatanetActor } from './helpers/datanets.ts';
import { call } from './helpers/http.ts';
import { AIDREAMS_GGUF } from './helpers/models.ts';
import { startTestNode, type TestNode } from './helpers/node.ts';
import { CLI_ENTRY } from './helpers/cli.ts';

interface SseEvent {
  id: number;
  event: string;
  data: Record<string, unknown>;
}

/** Reads a job's server-sent events to the end (the server closes the stream when it ends). */
async function readEvents(url: string, token: string): Promise<SseEvent[]> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200);
  const text = await response.text();
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('id:'))
    .map((block) => {
      const field = (name: string) =>
        block
          .split('\n')
          .find((l) => l.startsWith(`${name}: `))!
          .slice(name.length + 2);
      return {
        id: Number(field('id')),
        event: field('event'),
        data: JSON.parse(field('data')) as Record<string, unknown>,
      };
    });
}

const THINGS: [string, string][] = [
  ['lantern', 'blue'],
  ['kettle', 'red'],
  ['blanket', 'green'],
  ['teapot', 'yellow'],
  ['ladder', 'brown'],
  ['bucket', 'orange'],
  ['pillow', 'white'],
  ['basket', 'purple'],
  ['curtain', 'pink'],
  ['bicycle', 'black'],
  ['umbrella', 'grey'],
];
const row = ([thing, color]: [string, string]): RowContent => ({
  type: 'instruction',
  instruction: `What color is the ${thing} in the little house?`,
  output: `The ${thing} is ${color}. The ${thing} is ${color}.`,
});

describe(
  'model factory',
  { skip: existsSync(AIDREAMS_GGUF) ? false : `fixture absent: ${AIDREAMS_GGUF}` },
  () => {
    let node: TestNode;
    let owner: DatanetActor;
    let alice: DatanetActor;
    let bob: DatanetActor;
    let stranger: DatanetActor;
    let openId: number;
    let privateId: number;

    before(async () => {
      node = await startTestNode();
      owner = new DatanetActor(node.url, devAccount(0));
      alice = new DatanetActor(node.url, devAccount(1));
      bob = new DatanetActor(node.url, devAccount(2));
      stranger = new DatanetActor(node.url, devAccount(3));
      const description =
        'Short questions and answers about the colors of things in the little house: lanterns, kettles, blankets, teapots, ladders, buckets, pillows, baskets, curtains, bicycles, umbrellas.';
      const open = await owner.create({ name: 'House colors', description });
      assert.equal(open.status, 201, JSON.stringify(open.body));
      openId = open.body.id;
      const closed = await owner.create({
        name: 'Private colors',
        description,
        policy: 'permissioned',
      });
      assert.equal(closed.status, 201, JSON.stringify(closed.body));
      privateId = closed.body.id;
      const a = await alice.contributeRows(openId, THINGS.slice(0, 6).map(row));
      const b = await bob.contributeRows(openId, THINGS.slice(6).map(row));
      assert.equal(a.status, 201, JSON.stringify(a.body));
      assert.equal(b.status, 201, JSON.stringify(b.body));
      assert.equal(a.body.acceptedRowCount ?? a.body.rowCount, 6, JSON.stringify(a.body));
      const approved = await owner.approve(openId, [a.body.id, b.body.id]);
      assert.equal(approved.status, 201, JSON.stringify(approved.body));
    });
    after(() => node?.close());

    it('renders templates with only the answer trained, and previews the mask', async () => {
      const model = await loadLlamaGguf(AIDREAMS_GGUF);
      const tokenizer = model.tokenizer!;
      const messages = [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'What color is the sky?' },
        { role: 'assistant', content: 'Blue.' },
      ];
      const llama = renderExample('llama2', { messages }, tokenizer, 512);
      assert.equal(llama.tokens[0], tokenizer.bosId);
      assert.equal(llama.tokens.at(-1), tokenizer.eosId);
      const trained = llama.tokens.filter((_, i) => llama.mask[i] === 1);
      assert.equal(tokenizer.decode(trained.slice(0, -1)), 'Blue.');
      const prompt = tokenizer.decode(llama.tokens.filter((_, i) => llama.mask[i] === 0));
      assert.match(
        prompt,
        /^\[INST\] <<SYS>>\nBe brief\.\n<<\/SYS>>\n\nWhat color is the sky\? \[\/INST\]$/,
      );
      const cut = renderExample('llama2', { messages }, tokenizer, 10);
      assert.equal(cut.tokens.length, 10);
      assert.equal(cut.truncated, true);
      const chatml = renderExample('chatml', { messages }, tokenizer, 512);
      const chatPrompt = tokenizer.decode(chatml.tokens.filter((_, i) => chatml.mask[i] === 0));
      assert.ok(chatPrompt.includes('<|im_start|>user\nWhat color is the sky?<|im_end|>'));
      const doc = renderExample(
        'plain',
        { content: { type: 'document', text: 'Once upon a time' } },
        tokenizer,
        512,
      );
      assert.ok(doc.mask.every((m) => m === 1));

      const token = await alice.session();
      const preview = await call(node.url, 'POST', '/api/factory/templates/preview', {
        token,
        body: { template: 'llama2', baseModel: AIDREAMS_GGUF, row: { messages } },
      });
      assert.equal(preview.status, 200, JSON.stringify(preview.body));
      const pieces = preview.body.pieces as { piece: string; masked: boolean }[];
      assert.equal(pieces.length, llama.tokens.length);
      assert.ok(pieces[0]!.masked && pieces.at(-1)!.piece === '</s>' && !pieces.at(-1)!.masked);
      const visible = pieces
        .filter((p) => !p.masked)
        .map((p) => p.piece)
        .join('');
      assert.equal(visible.replaceAll('▁', ' ').trim(), 'Blue.</s>');
      const bad = await call(node.url, 'POST', '/api/factory/templates/preview', {
        token,
        body: { template: 'alpaca', baseModel: AIDREAMS_GGUF, row: { messages } },
      });
      assert.equal(bad.status, 400);
    });

    it('trains a LoRA on a datanet version over the API, streaming progress, with a manifest', async (t) => {
      const token = await alice.session();
      const started = performance.now();
      const submitted = await call(node.url, 'POST', '/api/factory/jobs', {
        token,
        body: {
          baseModel: AIDREAMS_GGUF,
          datanets: [{ id: openId, version: 1 }],
          template: 'llama2',
          hyperparameters: {
            steps: 30,
            rank: 4,
            learningRate: 1e-2,
            batchSize: 4,
            warmupSteps: 3,
            seed: 1,
            checkpointEvery: 10,
          },
        },
      });
      assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
      assert.equal(
        submitted.body.params.baseModel,
        'aidreams260K',
        'jobs record the model by name, not by path',
      );
      const jobId = submitted.body.id as string;
      // the node answers while it trains
      const status = await call(node.url, 'GET', '/api/status');
      assert.equal(status.status, 200);

      const events = await readEvents(`${node.url}/api/jobs/${jobId}/events`, token);
      const seconds = (performance.now() - started) / 1000;
      const statuses = events.filter((e) => e.event === 'status').map((e) => e.data.status);
      assert.deepEqual(
        statuses,
        ['queued', 'validating', 'running', 'succeeded'],
        JSON.stringify(events.at(-1)),
      );
      const progress = events.filter((e) => e.event === 'progress').map((e) => e.data);
      assert.equal(progress.length, 30);
      assert.equal(progress.at(-1)!.step, 30);
      const losses = progress.map((p) => p.loss as number);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      assert.ok(
        mean(losses.slice(-5)) < 0.7 * mean(losses.slice(0, 5)),
        `loss ${losses.join(' ')}`,
      );
      for (const p of progress) {
        assert.equal(typeof p.learningRate, 'number');
        assert.equal(typeof p.tokensPerSecond, 'number');
        assert.equal(typeof p.etaSeconds, 'number');
      }
      assert.ok(progress.some((p) => typeof p.evalLoss === 'number'));
      assert.equal(events.filter((e) => e.event === 'checkpoint').length, 2);

      const job = (await call(node.url, 'GET', `/api/jobs/${jobId}`, { token })).body;
      const result = job.result;
      t.diagnostic(
        `30 steps in ${seconds.toFixed(1)} s end to end (${result.seconds.toFixed(1)} s in the worker), ~${progress.at(-1)!.tokensPerSecond} tokens/s; loss ${losses[0]!.toFixed(2)} → ${losses.at(-1)!.toFixed(2)}; eval ${result.baseEvalLoss.toFixed(3)} (base) → ${result.evalLoss.toFixed(3)}`,
      );
      assert.ok(
        result.evalLoss < result.baseEvalLoss,
        `eval ${result.baseEvalLoss} → ${result.evalLoss}`,
      );
      assert.ok(result.trainLoss < result.baseEvalLoss);

      // the manifest: every row, whose, and tokens per contributor summing to the trained tokens
      const manifestBytes = await node.node.context.blobs.get(result.manifestBlobId);
      assert.equal(sha256(manifestBytes), result.manifestHash);
      const manifest = JSON.parse(manifestBytes.toString('utf8')) as TrainingManifest;
      assert.equal(canonicalJson(manifest), manifestBytes.toString('utf8'));
      assert.equal(manifest.rows.length, THINGS.length);
      const expected = new Map(
        THINGS.map((thing, i) => [
          rowHash(row(thing)),
          i < 6 ? devAccount(1).address : devAccount(2).address,
        ]),
      );
      for (const r of manifest.rows) {
        assert.equal(r.contributor, expected.get(r.rowHash));
        assert.equal(r.datanetId, openId);
        assert.equal(r.version, 1);
      }
      const evalRows = manifest.rows.filter((r) => r.split === 'eval');
      assert.ok(evalRows.length >= 1 && evalRows.every((r) => r.tokens === 0));
      const sum = Object.values(result.contributors as Record<string, number>).reduce(
        (a, b) => a + b,
        0,
      );
      assert.equal(sum, result.tokens);
      assert.equal(manifest.totals.tokens, result.tokens);
      assert.equal(
        manifest.rows.reduce((n, r) => n + r.tokens, 0),
        result.tokens,
      );
      assert.ok(result.tokens > 0);
      for (const [address, tokens] of Object.entries(result.contributors as Record<string, number>))
        assert.equal(manifest.contributors[address]!.tokens, tokens);

      // the adapter is a llama.cpp GGUF LoRA of the base model
      const model = await loadLlamaGguf(AIDREAMS_GGUF);
      const adapter = await loadLoraGguf(await node.node.context.blobs.get(result.adapterBlobId), {
        modelConfig: model.config,
      });
      assert.equal(adapter.config.rank, 4);
      assert.deepEqual(adapter.config.targets, ['attn_q', 'attn_v']);
    });

    it('refuses a wallet without a grant, bad parameters and unknown versions', async () => {
      const token = await stranger.session();
      const body = { baseModel: AIDREAMS_GGUF, datanets: [{ id: privateId, version: 1 }] };
      const forbidden = await call(node.url, 'POST', '/api/factory/jobs', { token, body });
      assert.equal(forbidden.status, 403, JSON.stringify(forbidden.body));
      assert.equal(forbidden.body.error.code, 'FORBIDDEN');
      // the job itself checks again before any training (a job queued before a revocation)
      const job = await node.node.context.jobs.submit('factory.train', devAccount(3).address, body);
      const events = await readEvents(`${node.url}/api/jobs/${job.id}/events`, token);
      assert.deepEqual(events.at(-1)!.data.error, {
        code: 'FORBIDDEN',
        message: forbidden.body.error.message,
        hint: forbidden.body.error.hint,
      });
      assert.equal(events.filter((e) => e.event === 'progress').length, 0);
      assert.equal(
        events.filter((e) => e.event === 'status' && e.data.status === 'running').length,
        0,
      );

      const anonymous = await call(node.url, 'POST', '/api/factory/jobs', { body });
      assert.equal(anonymous.status, 401);
      const badRank = await call(node.url, 'POST', '/api/factory/jobs', {
        token,
        body: { ...body, datanets: [{ id: openId }], hyperparameters: { rank: 0 } },
      });
      assert.equal(badRank.status, 400);
      assert.equal(badRank.body.error.code, 'VALIDATION_FAILED');
      const noVersion = await call(node.url, 'POST', '/api/factory/jobs', {
        token,
        body: { ...body, datanets: [{ id: openId, version: 9 }] },
      });
      assert.equal(noVersion.status, 404);
      const noModel = await call(node.url, 'POST', '/api/factory/jobs', {
        token,
        body: { baseModel: '/nonexistent/model.gguf', datanets: [{ id: openId }] },
      });
      assert.equal(noModel.status, 400);
      assert.equal(noModel.body.error.code, 'VALIDATION_FAILED');

      // Base models come from the node's catalogue: a GGUF elsewhere on disk is refused.
      const models = (await call(node.url, 'GET', '/api/factory/models')).body.models;
      assert.ok(
        models.some(
          (m: { name: string; architecture: string }) =>
            m.name === 'aidreams260K' && m.architecture === 'llama',
        ),
      );
      assert.equal('path' in models[0], false, 'paths on the node are not shown');
      const outside = path.join(
        await mkdtemp(path.join(tmpdir(), 'openledger-outside-')),
        'copy.gguf',
      );
      await copyFile(AIDREAMS_GGUF, outside);
      const elsewhere = await call(node.url, 'POST', '/api/factory/jobs', {
        token,
        body: { baseModel: outside, datanets: [{ id: openId }] },
      });
      assert.equal(elsewhere.status, 400);
      assert.match(elsewhere.body.error.hint, /aidreams260K/);
      const byName = await call(node.url, 'POST', '/api/factory/templates/preview', {
        token,
        body: {
          template: 'plain',
          baseModel: 'aidreams260K',
          row: { content: { type: 'document', text: 'Owls at night.' } },
        },
      });
      assert.equal(byName.status, 200, JSON.stringify(byName.body));
    });

    it('cancels a running training job', async () => {
      const token = await alice.session();
      const submitted = await call(node.url, 'POST', '/api/factory/jobs', {
        token,
        body: {
          baseModel: AIDREAMS_GGUF,
          datanets: [{ id: openId }],
          hyperparameters: { steps: 100_000, batchSize: 2 },
        },
      });
      assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
      const id = submitted.body.id as string;
      const runner = node.node.context.jobs;
      for (let job = await runner.get(id); job.progress === null; job = await runner.get(id)) {
        assert.ok(
          ['queued', 'validating', 'running'].includes(job.status),
          JSON.stringify(job.error),
        );
        await new Promise((r) => setTimeout(r, 20));
      }
      const cancelled = await call(node.url, 'POST', `/api/jobs/${id}/cancel`, { token, body: {} });
      assert.equal(cancelled.status, 200);
      const events = await readEvents(`${node.url}/api/jobs/${id}/events`, token);
      assert.equal(events.at(-1)!.data.status, 'cancelled');
      assert.equal((await runner.get(id)).status, 'cancelled');
    });

    it('trains from the CLI, printing progress lines, and --json prints the final job', async () => {
      const run = (args: string[]) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
          const child = spawn(
            process.execPath,
            [CLI_ENTRY, 'train', '--url', node.url, '--account', '1', ...args],
            { env: { ...process.env, OPENLEDGER_API_KEY: '', OPENLEDGER_PRIVATE_KEY: '' } },
          );
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (d) => (stdout += d));
          child.stderr.on('data', (d) => (stderr += d));
          child.on('exit', (code) => resolve({ code, stdout, stderr }));
        });
      const common = [
        '--base',
        AIDREAMS_GGUF,
        '--datanet',
        `${openId}@1`,
        '--steps',
        '3',
        '--rank',
        '2',
      ];
      const human = await run([...common, '--template', 'chatml']);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stderr, /step 3\/3 {2}loss \d+\.\d+/);
      assert.match(human.stdout, /succeeded[\s\S]*adapter {3}blob [0-9a-f]{64}/);
      const json = await run([...common, '--json']);
      assert.equal(json.code, 0, json.stderr);
      const job = JSON.parse(json.stdout) as { status: string; result: { tokens: number } };
      assert.equal(job.status, 'succeeded');
      assert.ok(job.result.tokens > 0);
      const bad = await run(['--base', AIDREAMS_GGUF, '--datanet', 'three', '--json']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /BAD_REQUEST/);
    });

    it('resumes from a checkpoint to the very adapter of an uninterrupted run', async () => {
      const rows: DatasetRow[] = THINGS.map((thing, i) => ({
        datanetId: 1,
        version: 1,
        rowHash: rowHash(row(thing)),
        contributor: devAccount(1 + (i % 2)).address,
        contributionId: '00000000-0000-0000-0000-000000000000',
        content: row(thing),
        messages: [
          { role: 'user', content: (row(thing) as { instruction: string }).instruction },
          { role: 'assistant', content: (row(thing) as { output: string }).output },
        ],
      }));
      assert.ok(heldOut(rows, 10).size >= 1);
      const params = normalizeTrainParams({
        baseModel: AIDREAMS_GGUF,
        datanets: [{ id: 1, version: 1 }],
        hyperparameters: {
          steps: 8,
          rank: 2,
          dropout: 0,
          batchSize: 3,
          checkpointEvery: 4,
          learningRate: 1e-2,
        },
      });
      const run = async (checkpoint?: Uint8Array) => {
        const messages: TrainMessage[] = [];
        await runTraining({ params, rows, checkpoint }, (m) => messages.push(m));
        return messages;
      };
      const full = await run();
      const checkpoint = full.find((m) => m.type === 'checkpoint' && m.step === 4);
      assert.ok(checkpoint?.type === 'checkpoint');
      const resumed = await run(checkpoint.bytes);
      const prepared = resumed.find((m) => m.type === 'prepared');
      assert.equal(prepared?.type === 'prepared' && prepared.resumedFrom, 4);
      const adapterOf = (ms: TrainMessage[]) => {
        const done = ms.find((m) => m.type === 'done');
        assert.ok(done?.type === 'done');
        return done.adapter;
      };
      assert.deepEqual(adapterOf(resumed), adapterOf(full));
      assert.equal(
        resumed.filter((m) => m.type === 'progress').length,
        4,
        'only the remaining steps are run',
      );
    });
  },
);
