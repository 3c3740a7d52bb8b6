/**
 * RAG over datanets (issue #7) on a running node with the built-in model and embedder: a planted
 * fact among ~300 distractor rows from three contributors is retrieved first, `ask` answers with
 * a citation of its row and contributor, versions are indexed incrementally, the embedded ANN
 * fallback (usearch) finds the same, and a caller without a grant to a permissioned datanet never
 * sees its text — in no prompt, answer or stored record. The PostgreSQL lane (a server without
 * pgvector) runs the same retrieval through usearch, chosen automatically.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { devAccount } from '../src/chain/index.ts';
import { resolveConfig } from '../src/config.ts';
import * as schema from '../src/db/schema.ts';
import { loadBuiltinCorpus } from '../src/factory/builtin/corpus.ts';
import { BUILTIN_MODELS_DIR, BUILTIN_MODEL_NAME } from '../src/factory/builtin/paths.ts';
import { startNode, type RunningNode } from '../src/node/index.ts';
import { builtinEmbedderPath } from '../src/rag/embedder/index.ts';
import { ablationWeights, refitFromRecorded } from '../src/rag/contextcite.ts';
import { chooseVectorStore, RagService } from '../src/rag/index.ts';
import { ragMessages } from '../src/rag/prompt.ts';
import { CLI_ENTRY } from './helpers/cli.ts';
import { DatanetActor } from './helpers/datanets.ts';
import { freshPostgresDatabase, POSTGRES_SKIP } from './helpers/postgres.ts';

const MODEL = path.join(BUILTIN_MODELS_DIR, `${BUILTIN_MODEL_NAME}.gguf`);
const SKIP =
  !existsSync(MODEL) || !existsSync(builtinEmbedderPath())
    ? 'the built-in model or embedder is absent (npm run build:model)'
    : false;

const FACT =
  'Orrin Tasker, keeper of the Velmora lighthouse, logged 4213 storms between 1871 and 1903.';
const SECRET = 'The vault of Karsimar opens with the code 77 ALPHA 19 spoken at noon.';

/** Forty questions about the planted fact, worded in different ways. */
const SUBJECTS = [
  'Orrin Tasker',
  'the Velmora lighthouse keeper',
  'Tasker',
  'the keeper of Velmora',
];
const ASKS = [
  'How many storms did {s} log?',
  'What did {s} record between 1871 and 1903?',
  'Which storms were logged by {s}?',
  'Tell me about {s} and the storms.',
  'How many storms are in the log of {s}?',
  'What is known about {s}?',
  'When did {s} log storms?',
  'What did {s} keep a log of?',
  'Storm records kept by {s}',
  'Who logged 4213 storms, was it {s}?',
];
const QUERIES = SUBJECTS.flatMap((s) => ASKS.map((a) => a.replace('{s}', s)));

/** Short corpus paragraphs as distractor rows (deterministic). */
function distractors(count: number): string[] {
  const rows: string[] = [];
  for (const paragraph of loadBuiltinCorpus().train) {
    const words = paragraph.split(/\s+/).length;
    if (words >= 25 && words <= 90) rows.push(paragraph);
    if (rows.length === count) break;
  }
  return rows;
}

function cli(url: string, args: string[]) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI_ENTRY, ...args, '--url', url, '--json'], {
      env: { ...process.env, OPENLEDGER_PRIVATE_KEY: '', OPENLEDGER_API_KEY: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** A datanet with the planted fact among distractors, one contribution per contributor. */
async function plantedDatanet(owner: DatanetActor, contributors: DatanetActor[], rows: number) {
  const created = await owner.create({ name: 'Almanac', description: 'Logs and speeches.' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id as number;
  const texts = distractors(rows);
  const share = Math.ceil(texts.length / contributors.length);
  const contributions: string[] = [];
  for (const [i, actor] of contributors.entries()) {
    const mine = texts.slice(i * share, (i + 1) * share).map((text) => ({
      type: 'document' as const,
      text,
    }));
    // The second contributor plants the fact in the middle of their rows.
    if (i === 1) mine.splice(mine.length >> 1, 0, { type: 'document', text: FACT });
    const sent = await actor.contributeRows(id, mine);
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
    contributions.push(sent.body.id as string);
  }
  const approved = await owner.approve(id, contributions);
  assert.equal(approved.status, 201, JSON.stringify(approved.body));
  return id;
}

describe('RAG over datanets (pglite, pgvector)', { skip: SKIP }, () => {
  let node: RunningNode;
  let dataDir: string;
  let owner: DatanetActor;
  let contributors: DatanetActor[];
  let outsider: DatanetActor;
  let almanac: number;
  let vault: number;

  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'openledger-rag-'));
    const base = resolveConfig({ port: '0', chainPort: '0', dataDir, logLevel: 'silent' }, {});
    node = await startNode({
      ...base,
      serving: { ...base.serving, baseModels: [BUILTIN_MODEL_NAME], threads: 1 },
    });
    owner = new DatanetActor(node.url, devAccount(0));
    contributors = [1, 2, 3].map((i) => new DatanetActor(node.url, devAccount(i)));
    outsider = new DatanetActor(node.url, devAccount(6));
    almanac = await plantedDatanet(owner, contributors, 300);

    const created = await owner.create({
      name: 'Vault',
      description: 'Permissioned.',
      policy: 'permissioned',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    vault = created.body.id as number;
    const sent = await owner.contributeRows(vault, [{ type: 'document', text: SECRET }]);
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
    assert.equal((await owner.approve(vault, [sent.body.id as string])).status, 201);
  });

  after(async () => {
    await node?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('reports its vector backend in /healthz', async () => {
    const health = (await (await fetch(`${node.url}/healthz`)).json()) as {
      rag: { vectors: string; reason: string };
    };
    assert.equal(health.rag.vectors, 'pgvector');
    assert.match(health.rag.reason, /vector extension/);
  });

  it('retrieves the planted fact first for at least 95 % of forty questions', async (t) => {
    const indexed = await owner.call('POST', `/api/datanets/${almanac}/rag-index`);
    assert.equal(indexed.status, 200, JSON.stringify(indexed.body));
    assert.ok(indexed.body.chunks >= 300, JSON.stringify(indexed.body));
    let first = 0;
    const misses: string[] = [];
    for (const query of QUERIES) {
      const found = await outsider.call('POST', '/api/rag/search', {
        datanets: [almanac],
        query,
        k: 5,
      });
      assert.equal(found.status, 200, JSON.stringify(found.body));
      const top = found.body.sources[0] as { text: string; contributor: string } | undefined;
      if (top?.text.includes('Orrin Tasker')) first++;
      else misses.push(`${query} → ${top?.text.slice(0, 60)}`);
    }
    t.diagnostic(`planted fact first in ${first}/40`);
    assert.ok(first >= 38, `planted fact first in ${first}/40:\n${misses.join('\n')}`);
  });

  it('`ask` answers with a citation of the planted row and its contributor', async () => {
    const asked = await cli(node.url, [
      'ask',
      'How many storms did Orrin Tasker log?',
      '--datanet',
      String(almanac),
      '--account',
      '6',
    ]);
    assert.equal(asked.code, 0, asked.stderr);
    const answer = JSON.parse(asked.stdout) as {
      answer: string;
      citations: { n: number; supported: boolean; contributor: string; row_id: string }[];
      sources: { n: number; text: string }[];
    };
    assert.match(answer.answer, /4213 storms/);
    const cited = answer.citations.find((c) => c.supported);
    assert.ok(cited, JSON.stringify(answer));
    assert.match(answer.answer, new RegExp(`\\[${cited.n}\\]`));
    assert.equal(cited.contributor, devAccount(2).address.toLowerCase());
    const row = await outsider.call('GET', `/api/datanets/${almanac}/rows/${cited.row_id}`);
    assert.equal(row.status, 200, JSON.stringify(row.body));
    assert.equal(row.body.text, FACT);
  });

  it('indexes only the rows of a new version', async () => {
    const sent = await contributors[0]!.contributeRows(almanac, [
      { type: 'document', text: 'Merrow Fenn charted the reefs of Calloway in a copper logbook.' },
      { type: 'document', text: 'The Calloway reef chart of Merrow Fenn named thirty shoals.' },
    ]);
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
    assert.equal((await owner.approve(almanac, [sent.body.id as string])).status, 201);
    const indexed = await owner.call('POST', `/api/datanets/${almanac}/rag-index`);
    assert.equal(indexed.status, 200, JSON.stringify(indexed.body));
    assert.equal(indexed.body.version, 2);
    // The version's commit may have indexed it already (in the background): either way, only the
    // two new rows were embedded, once.
    const chunks = await node.context.database.db.select().from(schema.ragChunks);
    assert.equal(chunks.filter((c) => c.version === 2).length, 2);
    assert.equal(new Set(chunks.map((c) => `${c.rowId}:${c.ord}`)).size, chunks.length);
    const found = await outsider.call('POST', '/api/rag/search', {
      datanets: [almanac],
      query: 'Who charted the Calloway reefs?',
    });
    assert.match(found.body.sources[0].text, /Merrow Fenn/);
  });

  it('scores ablations of the sources with the serving model (ContextCite)', async () => {
    const question = 'How many storms did Orrin Tasker log?';
    const retrieved = await node.context.rag!.retrieve({
      caller: undefined,
      datanets: [almanac],
      query: question,
      k: 5,
    });
    assert.match(retrieved[0]!.text, /Orrin Tasker/);
    // The fact and one short other source: what fits the built-in model's 256 tokens.
    const sources = [
      retrieved[0]!,
      { ...retrieved[1]!, n: 2, text: 'The harbour pilot Jem Rook guided nine whalers home.' },
    ];
    const messages = [{ role: 'user', content: question }];
    const score = async (mask: readonly boolean[]) =>
      (
        await node.context.serving.scoreChat({
          model: BUILTIN_MODEL_NAME,
          messages: ragMessages(
            messages,
            sources.filter((_, j) => mask[j]),
          ),
          continuation: FACT,
        })
      ).logprob;
    const run = await ablationWeights({ sources: sources.length, score, seed: 'rag-test' });
    assert.equal(run.y.length, 1 + 32 + 8);
    assert.ok(run.y.every((y) => Number.isFinite(y) && Number.isInteger(y * 2 ** 16)));
    // A verifier refits the same weights, bit for bit, from the recorded scores.
    assert.deepEqual(refitFromRecorded(run.masks, run.y).weights, run.weights);
    // The sources the prompt holds change the answer's score (the built-in 1M model is too small
    // to copy from its context, so which way is not asserted here).
    assert.ok(new Set(run.y).size > 1, `scores: ${run.y.join(', ')}`);
  });

  it('finds the same with the embedded usearch index', async () => {
    const vectors = await chooseVectorStore(node.context.database, dataDir, 'usearch');
    assert.equal(vectors.kind, 'usearch');
    const rag = new RagService({
      database: node.context.database,
      datanets: node.context.datanets!,
      vectors,
      embedder: () => node.context.rag!.embedder(),
    });
    const query = 'How many storms did Orrin Tasker log?';
    const sources = await rag.retrieve({ caller: undefined, datanets: [almanac], query });
    // The approximate index finds what exact search finds.
    const embedder = await rag.embedder();
    const [vector] = await embedder.embed([query]);
    const exact = await chooseVectorStore(node.context.database, dataDir, 'exact');
    assert.deepEqual(
      (await vectors.store.search(embedder.sha256, [almanac], vector!, 10)).map((h) => h.chunkId),
      (await exact.store.search(embedder.sha256, [almanac], vector!, 10)).map((h) => h.chunkId),
    );
    assert.match(sources[0]!.text, /Orrin Tasker/);
    await vectors.store.close();
  });

  it('never lets a caller without a grant see a permissioned datanet', async () => {
    const searched = await outsider.call('POST', '/api/rag/search', {
      datanets: [almanac, vault],
      query: 'What opens the vault of Karsimar?',
    });
    assert.equal(searched.status, 403, JSON.stringify(searched.body));
    assert.equal(searched.body.error.code, 'FORBIDDEN');
    assert.doesNotMatch(JSON.stringify(searched.body), /77 ALPHA/);

    const chat = await outsider.call('POST', '/v1/chat/completions', {
      model: BUILTIN_MODEL_NAME,
      messages: [{ role: 'user', content: 'What opens the vault of Karsimar?' }],
      rag: { datanets: [vault] },
    });
    assert.equal(chat.status, 403, JSON.stringify(chat.body));
    assert.doesNotMatch(JSON.stringify(chat.body), /77 ALPHA/);

    const asked = await cli(node.url, [
      'ask',
      'What opens the vault of Karsimar?',
      '--datanet',
      String(vault),
      '--account',
      '6',
    ]);
    assert.notEqual(asked.code, 0);
    assert.doesNotMatch(asked.stdout + asked.stderr, /77 ALPHA/);

    // Anonymous callers are refused too (401), and nothing about the vault was ever stored.
    const anonymous = await fetch(`${node.url}/api/rag/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ datanets: [vault], query: 'vault code' }),
    });
    assert.equal(anonymous.status, 401);
    const answers = await node.context.database.db.select().from(schema.ragAnswers);
    assert.ok(answers.length >= 1);
    for (const answer of answers) {
      assert.doesNotMatch(JSON.stringify(answer), /77 ALPHA|Karsimar opens/);
      assert.ok(!(answer.datanets as number[]).includes(vault));
    }

    // With a grant (on-chain), the same caller gets the answer.
    assert.equal((await outsider.requestAccess(vault, 'research')).status, 201);
    const granted = await owner.decideAccess(vault, outsider.account.address, 'grant');
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
    const allowed = await outsider.call('POST', '/api/rag/search', {
      datanets: [vault],
      query: 'What opens the vault of Karsimar?',
    });
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
    assert.match(allowed.body.sources[0].text, /77 ALPHA 19/);
  });

  it('refuses bad RAG requests with precise errors', async () => {
    const unknown = await outsider.call('POST', '/api/rag/search', {
      datanets: [9999],
      query: 'anything',
    });
    assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
    const tooMany = await outsider.call('POST', '/v1/chat/completions', {
      model: BUILTIN_MODEL_NAME,
      messages: [{ role: 'user', content: 'storms' }],
      rag: { datanets: [almanac], k: 99 },
    });
    assert.equal(tooMany.status, 400, JSON.stringify(tooMany.body));
    const noQuestion = await outsider.call('POST', '/v1/chat/completions', {
      model: BUILTIN_MODEL_NAME,
      messages: [{ role: 'system', content: 'be brief' }],
      rag: { datanets: [almanac] },
    });
    assert.equal(noQuestion.status, 400, JSON.stringify(noQuestion.body));
  });
});

describe('RAG on PostgreSQL without pgvector (usearch)', { skip: SKIP || POSTGRES_SKIP }, () => {
  let node: RunningNode;
  let dataDir: string;
  let database: Awaited<ReturnType<typeof freshPostgresDatabase>>;

  before(async () => {
    database = await freshPostgresDatabase();
    dataDir = await mkdtemp(path.join(tmpdir(), 'openledger-rag-pg-'));
    const base = resolveConfig(
      { port: '0', chainPort: '0', dataDir, logLevel: 'silent', databaseUrl: database.url },
      {},
    );
    node = await startNode({
      ...base,
      serving: { ...base.serving, baseModels: [BUILTIN_MODEL_NAME], threads: 1 },
    });
  });

  after(async () => {
    await node?.close();
    await database?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('chooses usearch, reports it, and answers with the planted fact', async () => {
    const health = (await (await fetch(`${node.url}/healthz`)).json()) as {
      rag: { vectors: string; reason: string };
    };
    assert.equal(health.rag.vectors, 'usearch', JSON.stringify(health.rag));
    assert.match(health.rag.reason, /no pgvector/);
    const owner = new DatanetActor(node.url, devAccount(0));
    const contributors = [1, 2, 3].map((i) => new DatanetActor(node.url, devAccount(i)));
    const id = await plantedDatanet(owner, contributors, 60);
    const asked = await cli(node.url, [
      'ask',
      'How many storms did Orrin Tasker log?',
      '--datanet',
      String(id),
      '--account',
      '6',
    ]);
    assert.equal(asked.code, 0, asked.stderr);
    const answer = JSON.parse(asked.stdout) as {
      answer: string;
      citations: { supported: boolean; contributor: string }[];
    };
    assert.match(answer.answer, /4213 storms/);
    assert.equal(
      answer.citations.find((c) => c.supported)?.contributor,
      devAccount(2).address.toLowerCase(),
    );
  });
});
