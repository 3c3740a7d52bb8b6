import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eq } from 'drizzle-orm';
import OpenAI from 'openai';
import { schema } from '../src/db/index.ts';
import { receiptHash, type InferenceReceipt } from '../src/serving/index.ts';
import { call } from './helpers/http.ts';
import {
  startServingNode,
  writeTinyAdapter,
  writeTinyModel,
  type ServingNode,
} from './helpers/serving.ts';

/**
 * The OpenAI-compatible API through the official `openai` client, unchanged: a base model, an
 * adapter, composed adapters; streaming and not; usage, receipts and usage rows; and the
 * errors, in OpenAI's shape, after which the node goes on serving.
 */
describe('OpenLoRA: the OpenAI-compatible API', () => {
  let node: ServingNode;
  let client: OpenAI;
  before(async () => {
    node = await startServingNode({ maxTokens: 64 });
    client = new OpenAI({ apiKey: node.callerKey, baseURL: `${node.url}/v1`, maxRetries: 0 });
    for (const [name, seed] of [
      ['style-a', 1],
      ['style-b', 2],
    ] as const) {
      const file = path.join(node.dataDir, `${name}.gguf`);
      await writeTinyAdapter(file, seed, { scale: 0.5 });
      const loaded = await call(node.url, 'POST', '/v1/load_lora_adapter', {
        token: node.operatorKey,
        body: { lora_name: name, lora_path: file },
      });
      assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
    }
  });
  after(async () => {
    await node?.close();
  });

  it('lists base models and adapters, and /healthz reports the engine', async () => {
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    assert.ok(
      ids.includes('tiny') && ids.includes('style-a') && ids.includes('style-b'),
      ids.join(),
    );
    const adapter = models.data.find((m) => m.id === 'style-a') as unknown as { parent: string };
    assert.equal(adapter.parent, 'tiny');
    const health = await call(node.url, 'GET', '/healthz');
    assert.equal(health.body.checks.engine.ok, true);
    assert.match(health.body.checks.engine.detail, /^serving tiny/);
  });

  it('answers a chat completion (not streamed) with usage, a receipt and a usage row', async () => {
    const { data, response } = await client.chat.completions
      .create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'hello there' }],
        max_tokens: 12,
        temperature: 0,
      })
      .withResponse();
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.choices[0]!.message.role, 'assistant');
    assert.equal(typeof data.choices[0]!.message.content, 'string');
    assert.ok(['stop', 'length'].includes(data.choices[0]!.finish_reason));
    assert.ok(data.usage!.prompt_tokens > 3);
    assert.ok(data.usage!.completion_tokens > 0 && data.usage!.completion_tokens <= 12);
    assert.equal(
      data.usage!.total_tokens,
      data.usage!.prompt_tokens + data.usage!.completion_tokens,
    );

    const receiptId = response.headers.get('x-openledger-receipt-id')!;
    const hash = response.headers.get('x-openledger-receipt-hash')!;
    const [row] = await node.node.context.database.db
      .select()
      .from(schema.inferenceUsage)
      .where(eq(schema.inferenceUsage.id, receiptId));
    assert.ok(row, 'the usage row is written before the response');
    assert.equal(row.receiptHash, hash);
    assert.equal(
      receiptHash(row.receipt as InferenceReceipt),
      hash,
      'the hash is of the canonical receipt',
    );
    assert.equal(row.promptTokens, data.usage!.prompt_tokens);
    assert.equal(row.completionTokens, data.usage!.completion_tokens);
    assert.equal(row.model, 'tiny');
    assert.deepEqual(row.adapters, []);
    assert.equal(row.status, 'completed');
    assert.equal(row.feeWei, null);
  });

  it('streams a chat completion as OpenAI server-sent events, with usage at the end', async () => {
    const stream = await client.chat.completions.create({
      model: 'style-a',
      messages: [{ role: 'user', content: 'tell me a story' }],
      max_tokens: 16,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage;
    let chunks = 0;
    let extension: { adapters: { name: string }[]; receipt: { hash: string } } | undefined;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (choice?.delta.content) text += choice.delta.content;
      if (choice?.finish_reason) finish = choice.finish_reason;
      const ext = (chunk as unknown as { openledger?: typeof extension }).openledger;
      if (ext) extension = ext;
    }
    assert.ok(chunks >= 3, `${chunks} chunks`);
    assert.ok(finish === 'stop' || finish === 'length');
    assert.ok(usage && usage.completion_tokens > 0);
    assert.ok(text.length > 0);
    assert.deepEqual(
      extension?.adapters.map((a) => a.name),
      ['style-a'],
    );
    assert.match(extension!.receipt.hash, /^[0-9a-f]{64}$/);

    // the same request, not streamed, gives the same text (greedy)
    const whole = await client.chat.completions.create({
      model: 'style-a',
      messages: [{ role: 'user', content: 'tell me a story' }],
      max_tokens: 16,
      temperature: 0,
    });
    assert.equal(whole.choices[0]!.message.content, text);
    assert.equal(whole.usage!.completion_tokens, usage.completion_tokens);
  });

  it('completes text, streamed and not; adapters change the output and compose with weights', async () => {
    const complete = async (model: string, adapters?: { id: string; weight: number }[]) => {
      const answer = await client.completions.create({
        model,
        prompt: 'the quick brown fox',
        max_tokens: 12,
        temperature: 0,
        ...(adapters ? { adapters } : {}),
      } as OpenAI.CompletionCreateParamsNonStreaming);
      assert.equal(answer.object, 'text_completion');
      return answer.choices[0]!.text;
    };
    const plain = await complete('tiny');
    const a = await complete('style-a');
    const viaAdapters = await complete('tiny', [{ id: 'style-a', weight: 1 }]);
    const mixed = await complete('tiny', [
      { id: 'style-a', weight: 0.5 },
      { id: 'style-b', weight: 0.5 },
    ]);
    assert.notEqual(a, plain, 'the adapter changes the output');
    assert.equal(viaAdapters, a, 'model=adapter and adapters=[adapter] are the same');
    assert.notEqual(mixed, a);

    const stream = await client.completions.create({
      model: 'style-a',
      prompt: 'the quick brown fox',
      max_tokens: 12,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, a);
    assert.ok(usage && usage.prompt_tokens > 0);
  });

  it('embeds text with the base model', async () => {
    const answer = await client.embeddings.create({ model: 'tiny', input: ['one', 'two words'] });
    assert.equal(answer.data.length, 2);
    assert.equal(answer.data[0]!.embedding.length, 96);
    assert.notDeepEqual(answer.data[0]!.embedding, answer.data[1]!.embedding);
    assert.ok(answer.usage.prompt_tokens >= 2);
  });

  it('gives OpenAI-shaped errors with the right status, and goes on serving', async () => {
    const expectError = async (run: () => Promise<unknown>, status: number, code: string) => {
      await assert.rejects(run, (error: unknown) => {
        assert.ok(error instanceof OpenAI.APIError, String(error));
        assert.equal(error.status, status, error.message);
        assert.equal(error.code, code, error.message);
        assert.equal(typeof (error.error as { message?: unknown }).message, 'string');
        return true;
      });
    };
    const chat =
      (model: string, content = 'hi', extra: object = {}) =>
      () =>
        client.chat.completions.create({
          model,
          messages: [{ role: 'user', content }],
          max_tokens: 4,
          ...extra,
        });
    await expectError(chat('no-such-model'), 404, 'model_not_found');
    await expectError(chat('model:999'), 404, 'model_not_found');
    await expectError(
      chat('tiny', 'hi', { adapters: [{ id: 'nope', weight: 1 }] }),
      404,
      'adapter_not_found',
    );
    await expectError(chat('tiny', 'word '.repeat(400)), 400, 'context_length_exceeded');
    await expectError(chat('tiny', 'hi', { max_tokens: 10_000 }), 400, 'validation_failed');
    const stranger = new OpenAI({
      apiKey: 'olk_not-a-key',
      baseURL: `${node.url}/v1`,
      maxRetries: 0,
    });
    await expectError(() => stranger.models.list(), 401, 'invalid_api_key');
    const anonymous = await call(node.url, 'POST', '/v1/chat/completions', {
      body: { model: 'tiny', messages: [{ role: 'user', content: 'hi' }] },
    });
    assert.equal(anonymous.status, 401);
    assert.deepEqual(Object.keys(anonymous.body.error).sort(), [
      'code',
      'message',
      'param',
      'type',
    ]);

    // operators only
    const notOperator = await call(node.url, 'POST', '/v1/load_lora_adapter', {
      token: node.callerKey,
      body: { lora_name: 'x', lora_path: '/etc/passwd' },
    });
    assert.equal(notOperator.status, 403);
    assert.equal(notOperator.body.error.type, 'permission_error');

    // a malformed adapter file, and an adapter of another base model
    const broken = path.join(node.dataDir, 'broken.gguf');
    await writeFile(broken, Buffer.from('GGUF but not really'));
    const malformed = await call(node.url, 'POST', '/v1/load_lora_adapter', {
      token: node.operatorKey,
      body: { lora_name: 'broken', lora_path: broken },
    });
    assert.equal(malformed.status, 400, JSON.stringify(malformed.body));
    assert.equal(malformed.body.error.code, 'adapter_invalid');
    const notAnAdapter = path.join(node.dataDir, 'base-copy.gguf');
    await writeTinyModel(notAnAdapter);
    const baseAsAdapter = await call(node.url, 'POST', '/v1/load_lora_adapter', {
      token: node.operatorKey,
      body: { lora_name: 'base-copy', lora_path: notAnAdapter },
    });
    assert.equal(baseAsAdapter.status, 400);
    assert.equal(baseAsAdapter.body.error.code, 'adapter_invalid');
    const wrong = path.join(node.dataDir, 'wrong-base.gguf');
    await writeTinyAdapter(wrong, 9, { rank: 4 });
    await rewriteAsOtherShape(wrong);
    const mismatch = await call(node.url, 'POST', '/v1/load_lora_adapter', {
      token: node.operatorKey,
      body: { lora_name: 'wrong-base', lora_path: wrong },
    });
    assert.equal(mismatch.status, 400, JSON.stringify(mismatch.body));
    assert.equal(mismatch.body.error.code, 'adapter_base_mismatch');

    // and the node still serves
    const fine = await chat('style-b')();
    assert.equal(fine.object, 'chat.completion');
  });

  it('unloads an adapter by name', async () => {
    const gone = await call(node.url, 'POST', '/v1/unload_lora_adapter', {
      token: node.operatorKey,
      body: { lora_name: 'style-b' },
    });
    assert.equal(gone.status, 200);
    const again = await call(node.url, 'POST', '/v1/unload_lora_adapter', {
      token: node.operatorKey,
      body: { lora_name: 'style-b' },
    });
    assert.equal(again.status, 404);
    const models = await client.models.list();
    assert.ok(!models.data.some((m) => m.id === 'style-b'));
  });
});

/** Writes an adapter whose attn_q is for a model of another width (dim 64, not 96). */
async function rewriteAsOtherShape(file: string): Promise<void> {
  const { readGguf, writeGguf, GGML_TYPE } = await import('../src/engine/gguf/index.ts');
  const original = await readGguf(file);
  const tensors = [];
  for (const info of original.tensors) {
    const dims = info.name.endsWith('attn_q.weight.lora_a') ? [64, info.dims[1]!] : info.dims;
    tensors.push({
      name: info.name,
      dims,
      type: GGML_TYPE.F32,
      data: new Float32Array(dims.reduce((a, b) => a * b, 1)),
    });
  }
  await writeGguf(file, { metadata: [...original.metadata], tensors });
}
