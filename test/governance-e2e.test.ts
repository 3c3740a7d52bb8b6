/**
 * Issue #8's check on a running node, through the CLI a user runs: a wallet stakes and launches
 * an agent composing two adapters, which is then callable as a model through the OpenAI API; a
 * governance proposal changes the default fee split, and takes effect only after the Timelock; an
 * agent slashed by governance loses its stake and is no longer served. (The contract-level cases,
 * contribution votes carrying a vote included, are in governance-contracts.test.ts.)
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseUnits } from 'viem';
import { devAccount } from '../src/chain/index.ts';
import { runCli } from './helpers/cli.ts';
import { call, signIn } from './helpers/http.ts';
import {
  publishServingModel,
  startServingNode,
  writeTinyAdapter,
  type ServingNode,
} from './helpers/serving.ts';

const OPEN = (n: string) => parseUnits(n, 18);
const launcher = devAccount(3);
const voter = devAccount(4);

const cli = runCli;

describe('agents, model staking and governance on a node (CLI and API)', () => {
  let node: ServingNode;
  let specFile: string;
  const ok = async (args: string[]) => {
    const r = await cli(node.url, args);
    assert.equal(r.code, 0, `openledger ${args.join(' ')}: ${r.stderr}`);
    return r.json;
  };
  const warp = async (seconds: number) => {
    const chain = node.node.context.chain.publicClient;
    await chain.request({ method: 'evm_increaseTime' as never, params: [seconds] as never });
    await chain.request({ method: 'evm_mine' as never, params: [] as never });
  };
  const chat = (model: string, stream = false) =>
    call(node.url, 'POST', '/v1/chat/completions', {
      token: node.callerKey,
      body: { model, messages: [{ role: 'user', content: 'hello' }], max_tokens: 4, stream },
    });

  before(async () => {
    node = await startServingNode();
    for (const [i, account] of [launcher, voter].entries()) {
      const session = await signIn(node.url, account);
      const drip = await call(node.url, 'POST', '/api/faucet', { token: session, body: {} });
      assert.equal(drip.status, 200, `faucet ${i}: ${JSON.stringify(drip.body)}`);
    }
    for (const seed of [11, 12]) {
      const file = path.join(node.dataDir, `adapter-${seed}.gguf`);
      await writeTinyAdapter(file, seed, { scale: 0.3 });
      const { id } = await node.node.context.blobs.put(await readFile(file));
      await publishServingModel(node, { owner: devAccount(2), adapterBlob: id, name: `m${seed}` });
    }
    specFile = path.join(node.dataDir, 'agent.json');
    await writeFile(
      specFile,
      JSON.stringify({
        name: 'two-adapter-agent',
        description: 'Two published adapters mixed, then a second pass on the first.',
        system: 'Answer briefly.',
        steps: [
          {
            model: 'tiny',
            adapters: [
              { id: 'model:1', weight: 0.6 },
              { id: 'model:2', weight: 0.4 },
            ],
            max_tokens: 4,
          },
          { model: 'model:1', instruction: 'Say it again, shorter.' },
        ],
      }),
    );
  });
  after(async () => node?.close());

  it('launches a staked agent composing two adapters from the CLI, callable as a model', async () => {
    const bad = await cli(node.url, [
      'agent',
      'launch',
      specFile,
      '--stake',
      '10',
      '--account',
      '3',
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.json.error.message, /at least 100 OPEN/);

    const launched = await ok(['agent', 'launch', specFile, '--stake', '150', '--account', '3']);
    assert.equal(launched.id, 1);
    assert.equal(launched.model, 'agent:two-adapter-agent');
    assert.equal(launched.stake, OPEN('150').toString());
    assert.equal(launched.active, true);
    assert.equal(launched.owner, launcher.address);

    const models = await call(node.url, 'GET', '/v1/models', { token: node.callerKey });
    assert.ok(models.body.data.some((m: { id: string }) => m.id === 'agent:two-adapter-agent'));

    const answer = await chat('agent:two-adapter-agent');
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.model, 'agent:two-adapter-agent');
    const agentInfo = answer.body.openledger.agent;
    assert.equal(agentInfo.name, 'two-adapter-agent');
    assert.equal(agentInfo.steps.length, 1);
    assert.equal(agentInfo.steps[0].model, 'tiny');
    // The first step ran on both adapters; the last on model 1's.
    const first = await call(node.url, 'GET', `/api/usage/${agentInfo.steps[0].receipt.id}`, {
      token: node.callerKey,
    });
    if (first.status === 200) assert.equal(first.body.adapters.length, 2);
    assert.equal(answer.body.openledger.adapters.length, 1);
    assert.equal(answer.body.openledger.published_model_id, 1);

    const streamed = await chat('agent:two-adapter-agent', true);
    assert.equal(streamed.status, 200);

    const completions = await call(node.url, 'POST', '/v1/completions', {
      token: node.callerKey,
      body: { model: 'agent:two-adapter-agent', prompt: 'hi' },
    });
    assert.equal(completions.status, 400);
    const unknown = await chat('agent:nobody');
    assert.equal(unknown.status, 404);

    // A spec that does not hash to the launched one is refused.
    const forged = await call(node.url, 'POST', '/api/agents', {
      token: node.callerKey,
      body: { id: 1, spec: { ...JSON.parse(await readFile(specFile, 'utf8')), system: 'x' } },
    });
    assert.equal(forged.status, 409);
  });

  it('stakes on a model; the stakers are listed for its receipts', async () => {
    await ok(['stake', 'add', '1', '5', '--account', '4']);
    const listed = await ok(['stake', 'list', '1', '--account', '4']);
    assert.equal(listed.total, OPEN('5').toString());
    assert.equal(listed.stakers[0].address, voter.address);
    const api = await call(node.url, 'GET', '/api/staking/models/1');
    assert.deepEqual(api.body, listed);
    const tooMuch = await cli(node.url, ['stake', 'remove', '1', '6', '--account', '4']);
    assert.notEqual(tooMuch.code, 0);
    assert.match(tooMuch.json.error.message, /InsufficientStake/);
  });

  it('changes the default split by a passed proposal, only after the Timelock', async () => {
    await ok(['gov', 'deposit', '50', '--account', '3']);
    await ok(['gov', 'deposit', '20', '--account', '4']);
    const status = await ok(['gov', 'status', '--account', '3']);
    assert.equal(status.account.votes, OPEN('50').toString());
    assert.deepEqual(status.parameters.defaultSplit, {
      owner: 6000,
      stakers: 1000,
      contributors: 3000,
    });

    const created = await ok([
      'gov',
      'propose',
      '--set',
      'default-split=50/20/30',
      '--set',
      'epoch-length=2h',
      '--description',
      'Pay stakers more\n\nRaise the default stakers share to 20 %.',
      '--account',
      '3',
    ]);
    await warp(2);
    await ok(['gov', 'vote', created.id, 'for', '--account', '3']);
    const against = await ok(['gov', 'vote', created.id, 'against', '--account', '4']);
    assert.equal(against.votes.against, OPEN('20').toString());
    const twice = await cli(node.url, ['gov', 'vote', created.id, 'for', '--account', '4']);
    assert.notEqual(twice.code, 0);
    assert.match(twice.json.error.message, /GovernorAlreadyCastVote/);

    await warp(301);
    const queued = await ok(['gov', 'queue', created.id, '--account', '4']);
    assert.equal(queued.state, 'queued');
    const early = await cli(node.url, ['gov', 'execute', created.id, '--account', '4']);
    assert.notEqual(early.code, 0);
    let governance = await call(node.url, 'GET', '/api/governance');
    assert.deepEqual(governance.body.parameters.defaultSplit, {
      owner: 6000,
      stakers: 1000,
      contributors: 3000,
    });

    await warp(121);
    const executed = await ok(['gov', 'execute', created.id, '--account', '4']);
    assert.equal(executed.state, 'executed');
    governance = await call(node.url, 'GET', '/api/governance');
    assert.deepEqual(governance.body.parameters.defaultSplit, {
      owner: 5000,
      stakers: 2000,
      contributors: 3000,
    });
    assert.equal(
      (await node.node.context.governance!.defaultSplit()).stakers,
      2000,
      'the node publishes with the governed default',
    );
    // The same proposal lengthened the escrow's fee epochs, from the next epoch on.
    assert.equal(governance.body.parameters.epochs.lengthSeconds, 3600);
    assert.equal(governance.body.parameters.epochs.next.lengthSeconds, 7200);
  });

  it('slashes an agent by governance: it loses its stake and is no longer served', async () => {
    const created = await ok([
      'gov',
      'propose',
      '--slash-agent',
      '1:150',
      '--description',
      'Slash two-adapter-agent for spam',
      '--account',
      '3',
    ]);
    await warp(2);
    await ok(['gov', 'vote', created.id, 'for', '--account', '3']);
    await warp(301);
    await ok(['gov', 'queue', created.id, '--account', '3']);
    await warp(121);
    await ok(['gov', 'execute', created.id, '--account', '3']);

    const agent = await ok(['agent', 'show', 'two-adapter-agent', '--account', '3']);
    assert.equal(agent.stake, '0');
    assert.equal(agent.active, false);
    const refused = await chat('agent:two-adapter-agent');
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'agent_inactive');
  });
});
