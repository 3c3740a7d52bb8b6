import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sha256, type Hex } from 'viem';
import { DatanetRegistryAbi, devAccount } from '../src/chain/index.ts';
import { buildVersionTree, contributionIdToBytes32, proofFor } from '../src/datanets/index.ts';
import { rowHash, type RowContent } from '../src/datanets/ingest/index.ts';
import { DatanetActor } from './helpers/datanets.ts';
import { call } from './helpers/http.ts';
import { startTestNode, type TestNode } from './helpers/node.ts';
import { POSTGRES_SKIP, freshPostgresDatabase } from './helpers/postgres.ts';

const DESCRIPTION =
  'Facts about solar physics: sunspots, the corona, the solar wind, flares, coronal mass ejections and nuclear fusion in the core of the sun.';

const paragraph = (topic: string, n: number) =>
  `${topic} observation ${n}: the sun's ${['corona', 'photosphere', 'chromosphere', 'core'][n % 4]} shows ` +
  `${['sunspots', 'flares', 'plasma loops', 'magnetic fields'][(n * 7) % 4]} that scientists measure with ` +
  `${['spectrographs', 'coronagraphs', 'magnetometers', 'radio telescopes'][(n * 3) % 4]} during cycle ${20 + (n % 7)}.`;

for (const lane of ['pglite', 'postgres'] as const)
  describe(
    `datanets end to end on ${lane}`,
    { skip: lane === 'postgres' ? POSTGRES_SKIP : false },
    () => {
      let node: TestNode;
      let dropDatabase: (() => Promise<void>) | undefined;
      let owner: DatanetActor;
      let alice: DatanetActor;
      let bob: DatanetActor;
      let stranger: DatanetActor;
      let openId: number;
      let privateId: number;

      before(async () => {
        if (lane === 'postgres') {
          const db = await freshPostgresDatabase();
          dropDatabase = db.drop;
          node = await startTestNode({ databaseUrl: db.url });
        } else {
          node = await startTestNode();
        }
        owner = new DatanetActor(node.url, devAccount(0));
        alice = new DatanetActor(node.url, devAccount(1));
        bob = new DatanetActor(node.url, devAccount(2));
        stranger = new DatanetActor(node.url, devAccount(3));
      });
      after(async () => {
        await node?.close();
        await dropDatabase?.();
      });

      it('creates an open and a permissioned datanet, registered on-chain with the signer as owner', async () => {
        const open = await owner.create({
          name: 'Solar physics',
          summary: 'Facts about the sun',
          description: DESCRIPTION,
          tags: ['Sun', 'physics'],
        });
        assert.equal(open.status, 201, JSON.stringify(open.body));
        openId = open.body.id;
        assert.equal(open.body.owner, devAccount(0).address);
        assert.deepEqual(open.body.tags, ['physics', 'sun']);
        const closed = await owner.create({
          name: 'Clinical notes',
          description: 'De-identified clinical question and answer pairs.',
          policy: 'permissioned',
        });
        assert.equal(closed.status, 201, JSON.stringify(closed.body));
        privateId = closed.body.id;

        const registry = (await call(node.url, 'GET', '/api/status')).body.contracts
          .DatanetRegistry;
        const onChain = await node.node.context.chain.publicClient.readContract({
          address: registry,
          abi: DatanetRegistryAbi,
          functionName: 'datanet',
          args: [BigInt(openId)],
        });
        assert.equal(onChain.owner, devAccount(0).address);
        assert.equal(onChain.metadataHash, open.body.metadataHash);

        const listed = (await call(node.url, 'GET', '/api/datanets')).body.datanets;
        const readable = Object.fromEntries(
          listed.map((d: { id: number; canRead: boolean }) => [d.id, d.canRead]),
        );
        assert.deepEqual(
          readable,
          { [openId]: true, [privateId]: false },
          'anonymous: only the open one',
        );
        const asOwner = (await owner.call('GET', '/api/datanets')).body.datanets;
        assert.ok(
          asOwner.every((d: { canRead: boolean }) => d.canRead),
          'the owner reads both',
        );
        assert.deepEqual(
          listed.map((d: { id: number }) => d.id).sort(),
          [openId, privateId].sort(),
        );
      });

      it('refuses creation that is unsigned, signed by someone else, or invalid', async () => {
        const normalized = (
          await call(node.url, 'POST', '/api/datanets/metadata', {
            body: { metadata: { name: 'Forged' } },
          })
        ).body;
        const ctx = await alice.signing();
        const { registryTypedData } = await import('../src/datanets/index.ts');
        // Alice signs as herself, but Bob sends it: the node refuses, the chain would too.
        const signature = await devAccount(1).signTypedData(
          registryTypedData.createDatanet(ctx, {
            owner: devAccount(1).address,
            metadataHash: normalized.metadataHash,
            policy: 'open',
          }),
        );
        const forged = await bob.call('POST', '/api/datanets', {
          metadata: normalized.metadata,
          authorization: { signature, deadline: ctx.deadline.toString() },
        });
        assert.equal(forged.status, 401, JSON.stringify(forged.body));
        assert.equal(forged.body.error.code, 'INVALID_SIGNATURE');
        const anonymous = await call(node.url, 'POST', '/api/datanets', {
          body: { metadata: normalized.metadata, authorization: { signature, deadline: '1' } },
        });
        assert.equal(anonymous.status, 401);
        const bad = await call(node.url, 'POST', '/api/datanets/metadata', {
          body: { metadata: { name: 'x' } },
        });
        assert.equal(bad.status, 400);
        assert.equal(bad.body.error.code, 'VALIDATION_FAILED');
        const wrongType = await call(node.url, 'POST', '/api/datanets/metadata', {
          body: {
            metadata: { name: 'Images', modality: 'image', rules: { acceptedTypes: ['txt'] } },
          },
        });
        assert.equal(wrongType.status, 400);
        assert.match(wrongType.body.error.message, /not a image type/);
      });

      let aliceFile: string;
      let bobRows: string;

      it('takes signed contributions, splits them into rows and validates each row', async () => {
        const text = Array.from({ length: 6 }, (_, n) => paragraph('Solar', n)).join('\n\n');
        const file = await alice.contributeFile(
          openId,
          'solar.txt',
          new TextEncoder().encode(text),
        );
        assert.equal(file.status, 201, JSON.stringify(file.body));
        assert.equal(file.body.status, 'pending');
        assert.equal(file.body.contributor, devAccount(1).address);
        assert.ok(file.body.rowCount >= 1);
        assert.equal(file.body.acceptedRowCount, file.body.rowCount);
        aliceFile = file.body.id;

        const rows: RowContent[] = [
          {
            type: 'instruction',
            instruction: 'What is the solar corona?',
            output:
              'The corona is the outermost layer of the solar atmosphere, hotter than the surface.',
          },
          {
            type: 'chat',
            messages: [
              { role: 'user', content: 'What causes sunspots?' },
              {
                role: 'assistant',
                content:
                  'Concentrated magnetic fields that inhibit convection make cooler, darker regions.',
              },
            ],
          },
        ];
        const json = await bob.contributeRows(openId, rows);
        assert.equal(json.status, 201, JSON.stringify(json.body));
        assert.equal(json.body.rowCount, 2);
        assert.deepEqual(
          json.body.rows.map((r: { rowHash: string }) => r.rowHash),
          rows.map(rowHash),
        );
        bobRows = json.body.id;
      });

      it('credits the earliest contributor: exact and near duplicates are refused with the reason', async () => {
        const text = Array.from({ length: 6 }, (_, n) => paragraph('Solar', n)).join('\n\n');
        const copy = await bob.contributeFile(openId, 'copy.txt', new TextEncoder().encode(text));
        assert.equal(copy.status, 201);
        assert.equal(copy.body.status, 'rejected');
        assert.equal(copy.body.acceptedRowCount, 0);
        assert.match(copy.body.reasons.join(' '), /exact duplicate/);

        // One word changed in a ~180-word row: Jaccard similarity of its 5-word shingles is ~0.95.
        const near = Array.from({ length: 6 }, (_, n) =>
          n === 2
            ? paragraph('Solar', n).replace('scientists', 'researchers')
            : paragraph('Solar', n),
        ).join('\n\n');
        const nearCopy = await bob.contributeFile(
          openId,
          'near.txt',
          new TextEncoder().encode(near),
        );
        assert.equal(nearCopy.body.status, 'rejected', JSON.stringify(nearCopy.body));
        assert.match(nearCopy.body.reasons.join(' '), /near-duplicate/);
      });

      it('refuses bad contributions with a precise error and stores nothing', async () => {
        const before = (await owner.call('GET', `/api/datanets/${openId}/contributions`)).body
          .contributions.length;
        const bytes = new TextEncoder().encode(
          'A perfectly good paragraph about the solar wind and its charged particles.',
        );
        const cases: [
          string,
          Promise<{ status: number; body: { error: { code: string; message: string } } }>,
          number,
          string,
        ][] = [
          ['unknown datanet', alice.contributeFile(999, 'a.txt', bytes), 404, 'DATANET_NOT_FOUND'],
          ['not a pdf', alice.contributeFile(openId, 'fake.pdf', bytes), 422, 'FILE_INVALID'],
          [
            'unsupported type',
            alice.contributeFile(openId, 'tool.exe', bytes),
            415,
            'UNSUPPORTED_FILE_TYPE',
          ],
          [
            'signature for other bytes',
            alice.contributeFile(
              openId,
              'a.txt',
              bytes,
              await alice.statement(openId, sha256(new TextEncoder().encode('other'))),
            ),
            401,
            'INVALID_SIGNATURE',
          ],
          [
            'signed by someone else',
            alice.contributeFile(
              openId,
              'a.txt',
              bytes,
              await bob.statement(openId, sha256(bytes)),
            ),
            401,
            'INVALID_SIGNATURE',
          ],
          [
            'wrong licence',
            alice.contributeFile(
              openId,
              'a.txt',
              bytes,
              await alice.statement(openId, sha256(bytes), 'MIT'),
            ),
            400,
            'VALIDATION_FAILED',
          ],
          [
            'invalid utf-8',
            alice.contributeFile(openId, 'bad.txt', new Uint8Array([0x61, 0xff, 0xfe, 0x62])),
            422,
            'FILE_INVALID',
          ],
        ];
        for (const [name, pending, status, code] of cases) {
          const answer = await pending;
          assert.equal(answer.status, status, `${name}: ${JSON.stringify(answer.body)}`);
          assert.equal(answer.body.error.code, code, name);
        }
        // A replayed statement (same nonce) is refused even for the same bytes.
        const statement = await alice.statement(openId, sha256(bytes));
        assert.equal((await alice.contributeFile(openId, 'a.txt', bytes, statement)).status, 201);
        const replay = await alice.contributeFile(openId, 'a.txt', bytes, statement);
        assert.equal(replay.status, 409);
        assert.equal(replay.body.error.code, 'NONCE_INVALID');
        const afterCount = (await owner.call('GET', `/api/datanets/${openId}/contributions`)).body
          .contributions.length;
        assert.equal(afterCount, before + 1, 'only the one good contribution was stored');
      });

      it("enforces each datanet's rules: size, modality, type and daily quotas", async () => {
        const small = await owner.create({
          name: 'Tiny notes',
          description: 'Short notes.',
          rules: { maxFileBytes: 64, dailyQuotaPerContributor: 1 },
        });
        assert.equal(small.status, 201, JSON.stringify(small.body));
        const tooBig = await alice.contributeFile(
          small.body.id,
          'big.txt',
          new TextEncoder().encode('x'.repeat(65)),
        );
        assert.equal(tooBig.status, 413);
        assert.equal(tooBig.body.error.code, 'PAYLOAD_TOO_LARGE');
        const ok = await alice.contributeFile(
          small.body.id,
          'ok.txt',
          new TextEncoder().encode('Short notes are still notes, and these ones are fine.'),
        );
        assert.equal(ok.status, 201, JSON.stringify(ok.body));
        const quota = await alice.contributeFile(
          small.body.id,
          'ok2.txt',
          new TextEncoder().encode('A second short note on the same day is over quota.'),
        );
        assert.equal(quota.status, 429);
        assert.equal(quota.body.error.code, 'QUOTA_EXCEEDED');

        const images = await owner.create({
          name: 'Sun photos',
          modality: 'image',
          description: 'Photographs of the sun.',
        });
        assert.equal(images.status, 201, JSON.stringify(images.body));
        // A minimal valid PNG: signature, IHDR for a 1x1 image, IEND.
        const png = Buffer.from(
          '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4b60000000049454e44ae426082',
          'hex',
        );
        const photo = await alice.contributeFile(images.body.id, 'sun.png', png);
        assert.equal(photo.status, 201, JSON.stringify(photo.body));
        assert.equal(photo.body.mime, 'image/png');
        assert.equal(photo.body.rowCount, 1);
        const textInImages = await alice.contributeFile(
          images.body.id,
          'notes.txt',
          new TextEncoder().encode('Not an image at all, just words.'),
        );
        assert.equal(textInImages.status, 415);
        assert.equal(textInImages.body.error.code, 'UNSUPPORTED_FILE_TYPE');
        const rowsInImages = await alice.contributeRows(images.body.id, [
          { type: 'document', text: 'rows are text' },
        ]);
        assert.equal(rowsInImages.status, 415);
      });

      it('lets only the owner and curators curate', async () => {
        const notCurator = await alice.call('POST', `/api/datanets/${openId}/versions/plan`, {
          approve: [aliceFile],
        });
        assert.equal(notCurator.status, 403);
        assert.equal(notCurator.body.error.code, 'FORBIDDEN');
        const mine = (await alice.call('GET', `/api/datanets/${openId}/contributions`)).body;
        assert.equal(mine.curator, false);
        assert.ok(
          mine.contributions.every(
            (c: { contributor: string }) => c.contributor === devAccount(1).address,
          ),
        );
      });

      it('commits an approval batch as a version whose on-chain root is recomputable from the export', async () => {
        const pending = (
          await owner.call('GET', `/api/datanets/${openId}/contributions?status=pending`)
        ).body.contributions;
        assert.ok(pending.some((c: { id: string }) => c.id === aliceFile));
        const approved = await owner.approve(openId, [aliceFile, bobRows]);
        assert.equal(approved.status, 201, JSON.stringify(approved.body));
        assert.equal(approved.body.version, 1);
        assert.match(approved.body.txHash, /^0x[0-9a-f]{64}$/);

        const exported = await call(node.url, 'GET', `/api/datanets/${openId}/versions/1/export`);
        assert.equal(exported.status, 200);
        const lines = (exported.body as string)
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        assert.equal(lines.length, approved.body.rowCount);
        for (const line of lines)
          assert.equal(rowHash(line.content), line.rowHash, 'row hashes recompute from content');
        assert.ok(
          lines.some((l) => l.messages?.[0]?.role === 'user'),
          'instruction and chat rows are normalised to messages',
        );
        const tree = buildVersionTree(
          lines.map((l) => ({
            rowHash: l.rowHash,
            contributor: l.contributor,
            contributionId: l.contributionId,
          })),
        );

        const registry = (await call(node.url, 'GET', '/api/status')).body.contracts
          .DatanetRegistry;
        const client = node.node.context.chain.publicClient;
        const onChain = await client.readContract({
          address: registry,
          abi: DatanetRegistryAbi,
          functionName: 'version',
          args: [BigInt(openId), 1n],
        });
        assert.equal(onChain.root, tree.root);
        assert.equal(onChain.rowCount, BigInt(lines.length));

        const leaf = {
          rowHash: lines[0].rowHash,
          contributor: lines[0].contributor,
          contributionId: lines[0].contributionId,
        };
        const proof = proofFor(tree, leaf)!;
        const verify = (rowHashHex: string) =>
          client.readContract({
            address: registry,
            abi: DatanetRegistryAbi,
            functionName: 'verifyRow',
            args: [
              BigInt(openId),
              1n,
              `0x${rowHashHex}` as Hex,
              leaf.contributor,
              contributionIdToBytes32(leaf.contributionId),
              proof,
            ],
          });
        assert.equal(await verify(leaf.rowHash), true);
        const tampered = rowHash({
          ...lines[0].content,
          text: `${lines[0].content.text ?? ''} (edited)`,
        });
        assert.equal(await verify(tampered), false, 'a tampered row fails on-chain');

        const served = await call(
          node.url,
          'GET',
          `/api/datanets/${openId}/versions/1/proof?rowHash=${leaf.rowHash}`,
        );
        assert.equal(served.body.root, tree.root);
        assert.deepEqual(served.body.proof, proof);

        const stats = (await call(node.url, 'GET', `/api/datanets/${openId}`)).body.stats;
        assert.equal(stats.latestVersion, 1);
        const board = (await call(node.url, 'GET', `/api/datanets/${openId}/leaderboard`)).body
          .contributors;
        assert.ok(board.length >= 2);
        // Approving again what is no longer pending is a conflict, and nothing changes.
        const again = await owner.approve(openId, [aliceFile]);
        assert.equal(again.status, 409);
      });

      it('lets only the owner update the metadata, registered on-chain; policy and modality stay', async () => {
        const { metadataHash, normalizeMetadata, registryTypedData } =
          await import('../src/datanets/index.ts');
        const update = async (
          actor: DatanetActor,
          input: Parameters<typeof normalizeMetadata>[0],
        ) => {
          const metadata = normalizeMetadata(input);
          const ctx = await actor.signing();
          const signature = await actor.account.signTypedData(
            registryTypedData.updateMetadata(ctx, {
              owner: actor.account.address,
              id: BigInt(openId),
              metadataHash: metadataHash(metadata),
            }),
          );
          return actor.call('PUT', `/api/datanets/${openId}/metadata`, {
            metadata,
            authorization: { signature, deadline: ctx.deadline.toString() },
          });
        };
        const base = {
          name: 'Solar physics',
          summary: 'Facts about the sun, curated',
          description: DESCRIPTION,
          tags: ['sun', 'physics', 'corona'],
        };
        const byAlice = await update(alice, base);
        assert.equal(byAlice.status, 403, JSON.stringify(byAlice.body));
        const changed = await update(owner, base);
        assert.equal(changed.status, 200, JSON.stringify(changed.body));
        assert.deepEqual(changed.body.tags, ['corona', 'physics', 'sun']);
        const registry = (await call(node.url, 'GET', '/api/status')).body.contracts
          .DatanetRegistry;
        const onChain = await node.node.context.chain.publicClient.readContract({
          address: registry,
          abi: DatanetRegistryAbi,
          functionName: 'datanet',
          args: [BigInt(openId)],
        });
        assert.equal(onChain.metadataHash, changed.body.metadataHash);
        const closing = await update(owner, { ...base, policy: 'permissioned' });
        assert.equal(closing.status, 400);
        assert.equal(closing.body.error.code, 'VALIDATION_FAILED');
      });

      it('lets the owner appoint a curator, who may then approve; and remove them again', async () => {
        const rows: RowContent[] = [
          {
            type: 'document',
            text:
              paragraph('Curated', 11) + ' Plasma in the solar corona is heated by magnetic waves.',
          },
        ];
        const created = await alice.contributeRows(openId, rows);
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const notOwner = await bob.setCurator(openId, devAccount(2).address, true);
        assert.equal(notOwner.status, 403, JSON.stringify(notOwner.body));
        const appointed = await owner.setCurator(openId, devAccount(2).address, true);
        assert.equal(appointed.status, 200, JSON.stringify(appointed.body));
        assert.deepEqual((await call(node.url, 'GET', `/api/datanets/${openId}`)).body.curators, [
          devAccount(2).address,
        ]);
        const byCurator = await bob.approve(openId, [created.body.id]);
        assert.equal(byCurator.status, 201, JSON.stringify(byCurator.body));
        assert.equal(byCurator.body.version, 2);
        assert.equal((await owner.setCurator(openId, devAccount(2).address, false)).status, 200);
        assert.deepEqual(
          (await call(node.url, 'GET', `/api/datanets/${openId}`)).body.curators,
          [],
        );
        const after = await bob.call('POST', `/api/datanets/${openId}/versions/plan`, {
          approve: [created.body.id],
        });
        assert.equal(after.status, 403);
      });

      it('rejects with a reason, visible to the contributor', async () => {
        const rows: RowContent[] = [
          {
            type: 'document',
            text:
              paragraph('Heliosphere', 42) + ' Extra words about the heliopause and cosmic rays.',
          },
        ];
        const created = await alice.contributeRows(openId, rows);
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const noReason = await owner.call('POST', `/api/datanets/${openId}/reject`, {
          contributions: [created.body.id],
          reason: '',
        });
        assert.equal(noReason.status, 400);
        const rejected = await owner.call('POST', `/api/datanets/${openId}/reject`, {
          contributions: [created.body.id],
          reason: 'Speculative.',
        });
        assert.equal(rejected.status, 200, JSON.stringify(rejected.body));
        const seen = await alice.call('GET', `/api/contributions/${created.body.id}`);
        assert.equal(seen.body.status, 'rejected');
        assert.equal(seen.body.decisionReason, 'Speculative.');
        const other = await stranger.call('GET', `/api/contributions/${created.body.id}`);
        assert.equal(other.status, 403);
      });

      it('keeps a permissioned datanet unreadable without a grant on every path, and readable after one', async () => {
        const rows: RowContent[] = [
          {
            type: 'instruction',
            instruction: 'First-line treatment of mild hypertension?',
            output:
              'Lifestyle change, then a thiazide diuretic or an ACE inhibitor, per current guidelines.',
          },
        ];
        const contributed = await alice.contributeRows(privateId, rows);
        assert.equal(contributed.status, 201, JSON.stringify(contributed.body));
        assert.equal((await owner.approve(privateId, [contributed.body.id])).status, 201);
        const hash = rowHash(rows[0]!);

        const reads = async (actor: DatanetActor | undefined) => {
          const get = (path: string) =>
            actor ? actor.call('GET', path) : call(node.url, 'GET', path);
          return {
            show: (await get(`/api/datanets/${privateId}`)).body.canRead,
            export: (await get(`/api/datanets/${privateId}/versions/1/export`)).status,
            latest: (await get(`/api/datanets/${privateId}/versions/latest/export`)).status,
            proof: (await get(`/api/datanets/${privateId}/versions/1/proof?rowHash=${hash}`))
              .status,
            contributions: actor
              ? (await get(`/api/datanets/${privateId}/contributions`)).body.contributions.length
              : 0,
            access: (
              await call(
                node.url,
                'GET',
                `/api/datanets/${privateId}/access/${actor?.account.address ?? devAccount(9).address}`,
              )
            ).body.canRead,
          };
        };
        assert.deepEqual(await reads(undefined), {
          show: false,
          export: 401,
          latest: 401,
          proof: 401,
          contributions: 0,
          access: false,
        });
        assert.deepEqual(await reads(stranger), {
          show: false,
          export: 403,
          latest: 403,
          proof: 403,
          contributions: 0,
          access: false,
        });

        const requested = await stranger.requestAccess(privateId, 'Training a triage assistant.');
        assert.equal(requested.status, 201, JSON.stringify(requested.body));
        const onOpen = await stranger.requestAccess(openId, 'n/a');
        assert.equal(onOpen.status, 409);
        const listed = await owner.call('GET', `/api/datanets/${privateId}/access-requests`);
        assert.equal(listed.body.requests[0].requester, devAccount(3).address);
        const own = (await stranger.call('GET', `/api/datanets/${privateId}/access-requests`)).body;
        assert.equal(own.curator, false);
        assert.deepEqual(
          own.requests.map((r: { requester: string }) => r.requester),
          [devAccount(3).address],
        );
        const others = await alice.call('GET', `/api/datanets/${privateId}/access-requests`);
        assert.deepEqual(others.body.requests, [], 'a requester sees only their own requests');
        const twice = await stranger.requestAccess(privateId, 'Again.');
        assert.equal(twice.status, 409, 'one pending request at a time');

        const notOwner = await alice.decideAccess(privateId, devAccount(3).address, 'grant');
        assert.equal(notOwner.status, 403, JSON.stringify(notOwner.body));
        const granted = await owner.decideAccess(privateId, devAccount(3).address, 'grant');
        assert.equal(granted.status, 200, JSON.stringify(granted.body));
        assert.deepEqual(await reads(stranger), {
          show: true,
          export: 200,
          latest: 200,
          proof: 200,
          contributions: 0,
          access: true,
        });
        const again = await stranger.requestAccess(privateId, 'More.');
        assert.equal(again.status, 409, 'no request once access is granted');

        assert.equal(
          (await owner.decideAccess(privateId, devAccount(3).address, 'revoke')).status,
          200,
        );
        assert.equal((await reads(stranger)).export, 403);
      });
    },
  );

describe('datanets after a stop between the chain and the database', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
  });
  after(() => node?.close());

  it('restores datanets and versions the chain has from the blobs stored before each call', async () => {
    const { DatanetRegistryAbi: abi } = await import('../src/chain/index.ts');
    const { canonicalJson } = await import('../src/datanets/ingest/index.ts');
    const { metadataHash, normalizeMetadata, registryTypedData } =
      await import('../src/datanets/index.ts');
    const ctx = node.node.context;
    const registry = ctx.deployment.contracts.DatanetRegistry!;
    const owner = new DatanetActor(node.url, devAccount(0));
    const contributor = new DatanetActor(node.url, devAccount(1));

    // A datanet whose creation reached the chain but not the database.
    const metadata = normalizeMetadata({
      name: 'Interrupted',
      description: 'Created while the node stopped.',
    });
    await ctx.blobs.put(canonicalJson(metadata));
    const signing = await owner.signing();
    const signature = await devAccount(0).signTypedData(
      registryTypedData.createDatanet(signing, {
        owner: devAccount(0).address,
        metadataHash: metadataHash(metadata),
        policy: 'open',
      }),
    );
    await ctx.relayer!.write({
      address: registry,
      abi,
      functionName: 'createDatanetWithSig',
      args: [devAccount(0).address, metadataHash(metadata), 0, signing.deadline, signature],
    });
    assert.equal((await call(node.url, 'GET', '/api/datanets/1')).status, 404);
    assert.deepEqual(await ctx.datanets!.reconcile(), { datanets: 1, versions: 0 });
    assert.equal((await call(node.url, 'GET', '/api/datanets/1')).body.name, 'Interrupted');

    // A version committed on-chain whose approval never reached the database.
    const contributed = await contributor.contributeRows(1, [
      { type: 'document', text: paragraph('Interrupted', 3) },
    ]);
    assert.equal(contributed.status, 201, JSON.stringify(contributed.body));
    const plan = await ctx.datanets!.planVersion({ id: 1, approve: [contributed.body.id] });
    await ctx.blobs.put(plan.manifest);
    const versionSigning = await owner.signing();
    const versionSignature = await devAccount(0).signTypedData(
      registryTypedData.commitVersion(versionSigning, {
        committer: devAccount(0).address,
        id: 1n,
        root: plan.root,
        rowCount: BigInt(plan.rowCount),
        manifestId: plan.manifestId,
      }),
    );
    await ctx.relayer!.write({
      address: registry,
      abi,
      functionName: 'commitVersionWithSig',
      args: [
        devAccount(0).address,
        1n,
        plan.root,
        BigInt(plan.rowCount),
        plan.manifestId,
        versionSigning.deadline,
        versionSignature,
      ],
    });
    assert.deepEqual(await ctx.datanets!.reconcile(), { datanets: 0, versions: 1 });
    assert.deepEqual(await ctx.datanets!.reconcile(), { datanets: 0, versions: 0 }, 'idempotent');
    const versions = (await call(node.url, 'GET', '/api/datanets/1/versions')).body.versions;
    assert.equal(versions[0].root, plan.root);
    assert.match(versions[0].txHash, /^0x[0-9a-f]{64}$/);
    const seen = await contributor.call('GET', `/api/contributions/${contributed.body.id}`);
    assert.equal(seen.body.status, 'approved');
    assert.equal(seen.body.version, 1);
  });
});
