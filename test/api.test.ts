import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import { after, before, describe, it } from 'node:test';
import { devAccount } from '../src/chain/index.ts';
import { call, signIn, siwe } from './helpers/http.ts';
import { startTestNode, type TestNode } from './helpers/node.ts';
import { POSTGRES_SKIP, freshPostgresDatabase } from './helpers/postgres.ts';

const alice = devAccount(1);
const bob = devAccount(2);

for (const lane of ['pglite', 'postgres'] as const) {
  describe(`HTTP API on ${lane}`, { skip: lane === 'postgres' ? POSTGRES_SKIP : false }, () => {
    let node: TestNode;
    let url: string;
    let dropDatabase: (() => Promise<void>) | undefined;

    before(async () => {
      let databaseUrl: string | undefined;
      if (lane === 'postgres') {
        const db = await freshPostgresDatabase();
        databaseUrl = db.url;
        dropDatabase = db.drop;
      }
      node = await startTestNode(databaseUrl ? { databaseUrl } : {});
      url = node.url;
    });
    after(async () => {
      await node?.close();
      await dropDatabase?.();
    });

    it('describes itself at /api/status', async () => {
      const { status, body } = await call(url, 'GET', '/api/status');
      assert.equal(status, 200);
      assert.equal(body.name, 'openledger');
      assert.equal(body.chainId, 31337);
      assert.equal(body.local, true);
      assert.match(body.contracts.OpenToken, /^0x[0-9a-fA-F]{40}$/);
      assert.match(body.contracts.DevFaucet, /^0x[0-9a-fA-F]{40}$/);
      assert.equal(body.database.kind, lane);
    });

    it('reports database, chain and engine health at /healthz', async () => {
      const { status, body } = await call(url, 'GET', '/healthz');
      assert.equal(status, 200);
      assert.equal(body.status, 'ok');
      assert.equal(body.checks.database.ok, true);
      assert.equal(body.checks.chain.ok, true);
      assert.match(body.checks.chain.blockNumber, /^\d+$/);
      assert.equal(body.checks.engine.ok, true);
    });

    it('publishes a valid OpenAPI 3 document that covers every API route', async () => {
      const { status, body } = await call(url, 'GET', '/api/openapi.json');
      assert.equal(status, 200);
      assert.match(body.openapi, /^3\./);
      await SwaggerParser.validate(structuredClone(body));
      for (const path of [
        '/api/status',
        '/healthz',
        '/api/auth/nonce',
        '/api/auth/verify',
        '/api/keys',
        '/api/keys/{id}',
        '/api/faucet',
      ]) {
        assert.ok(body.paths[path], `missing ${path}`);
      }
      assert.ok(body.paths['/api/keys'].post.responses['400'], 'error answers are documented');
    });

    it('exposes Prometheus metrics', async () => {
      const { status, body, headers } = await call(url, 'GET', '/metrics');
      assert.equal(status, 200);
      assert.match(headers.get('content-type') ?? '', /text\/plain/);
      assert.match(
        body,
        /openledger_http_requests_total\{method="GET",route="\/api\/status",status="200"\} \d+/,
      );
      assert.match(body, /openledger_process_cpu_seconds_total/);
    });

    it('signs in with Ethereum and keeps the session by token and by cookie', async () => {
      const signed = await siwe(url, alice);
      const answer = await call(url, 'POST', '/api/auth/verify', { body: signed });
      assert.equal(answer.status, 200);
      assert.equal(answer.body.address, alice.address);
      assert.match(answer.body.token, /^ols_/);
      const cookie = answer.headers.get('set-cookie') ?? '';
      assert.match(cookie, /ol_session=ols_[^;]+;.*HttpOnly/i);
      assert.match(cookie, /SameSite=Strict/i);
      const byToken = await call(url, 'GET', '/api/auth/session', { token: answer.body.token });
      assert.equal(byToken.body.address, alice.address);
      const byCookie = await call(url, 'GET', '/api/auth/session', {
        headers: { cookie: cookie.split(';')[0]! },
      });
      assert.equal(byCookie.body.address, alice.address);
      assert.equal(byCookie.body.via, 'session');

      // The same signed message cannot be replayed: its nonce is spent.
      const replay = await call(url, 'POST', '/api/auth/verify', { body: signed });
      assert.equal(replay.status, 409);
      assert.equal(replay.body.error.code, 'NONCE_INVALID');

      const out = await call(url, 'POST', '/api/auth/logout', {
        token: answer.body.token,
        body: {},
      });
      assert.equal(out.status, 200);
      const after = await call(url, 'GET', '/api/auth/session', { token: answer.body.token });
      assert.equal(after.status, 401);
      assert.equal(after.body.error.code, 'UNAUTHENTICATED');
    });

    it('refuses sign-ins that are forged, for another domain or chain, or malformed', async () => {
      const forged = await siwe(url, alice);
      const bobSignature = await bob.signMessage({ message: forged.message });
      const cases: [unknown, number, string][] = [
        [{ ...forged, signature: bobSignature }, 401, 'INVALID_SIGNATURE'],
        [await siwe(url, alice, { domain: 'evil.example' }), 401, 'INVALID_SIGNATURE'],
        [await siwe(url, alice, { chainId: 1 }), 401, 'INVALID_SIGNATURE'],
        [await siwe(url, alice, { nonce: 'neverissued123' }), 409, 'NONCE_INVALID'],
        [
          await siwe(url, alice, { expirationTime: new Date(Date.now() - 60_000) }),
          401,
          'INVALID_SIGNATURE',
        ],
        [{ message: 'hello', signature: '0x00' }, 400, 'VALIDATION_FAILED'],
        [{ message: forged.message }, 400, 'VALIDATION_FAILED'],
        [{ ...forged, signature: 'not hex' }, 400, 'VALIDATION_FAILED'],
      ];
      for (const [body, status, code] of cases) {
        const answer = await call(url, 'POST', '/api/auth/verify', { body });
        assert.equal(answer.status, status, JSON.stringify(answer.body));
        assert.equal(answer.body.error.code, code);
        assert.equal(typeof answer.body.error.message, 'string');
        assert.doesNotMatch(JSON.stringify(answer.body), /at .*\.ts:\d+/, 'no stack traces');
      }
    });

    it('creates, lists, uses and revokes API keys; only hashes are stored', async () => {
      const session = await signIn(url, alice);
      const created = await call(url, 'POST', '/api/keys', {
        token: session,
        body: { name: '  ci  ' },
      });
      assert.equal(created.status, 201);
      assert.equal(created.body.name, 'ci');
      assert.match(created.body.key, /^olk_[A-Za-z0-9_-]{43}$/);
      assert.equal(created.body.key.startsWith(created.body.prefix), true);

      const byKey = await call(url, 'GET', '/api/auth/session', { token: created.body.key });
      assert.equal(byKey.body.address, alice.address);
      assert.equal(byKey.body.via, 'apiKey');

      const listed = await call(url, 'GET', '/api/keys', { token: created.body.key });
      assert.deepEqual(
        listed.body.keys.map((k: { id: string }) => k.id),
        [created.body.id],
      );
      assert.equal('key' in listed.body.keys[0], false, 'the secret is never shown again');
      assert.notEqual(listed.body.keys[0].lastUsedAt, null);

      const rows = await node.node.context.database.db.execute<{ key_hash: string }>(
        (await import('drizzle-orm')).sql`select key_hash from api_keys`,
      );
      const hashes = JSON.stringify(rows);
      assert.equal(hashes.includes(created.body.key), false);

      // Bob cannot see or revoke Alice's key.
      const bobSession = await signIn(url, bob);
      assert.deepEqual((await call(url, 'GET', '/api/keys', { token: bobSession })).body.keys, []);
      const stolen = await call(url, 'DELETE', `/api/keys/${created.body.id}`, {
        token: bobSession,
      });
      assert.equal(stolen.status, 404);
      assert.equal(stolen.body.error.code, 'NOT_FOUND');

      const revoked = await call(url, 'DELETE', `/api/keys/${created.body.id}`, { token: session });
      assert.equal(revoked.status, 200);
      assert.notEqual(revoked.body.revokedAt, null);
      const twice = await call(url, 'DELETE', `/api/keys/${created.body.id}`, { token: session });
      assert.equal(twice.body.revokedAt, revoked.body.revokedAt, 'revoking is idempotent');
      const refused = await call(url, 'GET', '/api/keys', { token: created.body.key });
      assert.equal(refused.status, 401);
      assert.equal(refused.body.error.code, 'INVALID_API_KEY');
    });

    it('validates every request precisely', async () => {
      const session = await signIn(url, alice);
      const cases: [string, string, unknown, number, string, RegExp?][] = [
        ['POST', '/api/keys', { name: '' }, 400, 'VALIDATION_FAILED', /name/],
        ['POST', '/api/keys', { name: '   ' }, 400, 'VALIDATION_FAILED', /name/],
        ['POST', '/api/keys', { name: 'x'.repeat(65) }, 400, 'VALIDATION_FAILED', /name/],
        ['POST', '/api/keys', { name: 'ok', extra: 1 }, 400, 'VALIDATION_FAILED', /additional/],
        ['POST', '/api/keys', '{"name":', 400, 'BAD_REQUEST'],
        ['DELETE', '/api/keys/not-a-uuid', undefined, 400, 'VALIDATION_FAILED', /uuid/],
        ['DELETE', '/api/keys/00000000-0000-4000-8000-000000000000', undefined, 404, 'NOT_FOUND'],
        ['GET', '/api/token/balances/0x123', undefined, 400, 'VALIDATION_FAILED', /address/],
        ['GET', '/api/nothing-here', undefined, 404, 'ROUTE_NOT_FOUND'],
      ];
      for (const [method, path, body, status, code, message] of cases) {
        const answer = await call(url, method, path, {
          token: session,
          ...(body === undefined ? {} : { body }),
        });
        assert.equal(answer.status, status, `${method} ${path}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.error.code, code);
        if (message) assert.match(answer.body.error.message, message);
      }
      const wrongType = await call(url, 'POST', '/api/keys', {
        token: session,
        body: 'name=x',
        headers: { 'content-type': 'text/plain' },
      });
      assert.equal(wrongType.status, 415);
      assert.equal(wrongType.body.error.code, 'UNSUPPORTED_MEDIA_TYPE');
      const huge = await call(url, 'POST', '/api/keys', {
        token: session,
        body: { name: 'x'.repeat(2 * 1024 * 1024) },
      });
      assert.equal(huge.status, 413);
      assert.equal(huge.body.error.code, 'PAYLOAD_TOO_LARGE');
    });

    it('refuses every mutating request without credentials, and bad credentials everywhere', async () => {
      for (const [method, path] of [
        ['POST', '/api/keys'],
        ['DELETE', '/api/keys/00000000-0000-4000-8000-000000000000'],
        ['POST', '/api/faucet'],
      ] as const) {
        const answer = await call(url, method, path, method === 'POST' ? { body: {} } : {});
        assert.equal(answer.status, 401, `${method} ${path}`);
        assert.equal(answer.body.error.code, 'UNAUTHENTICATED');
      }
      const unknownKey = await call(url, 'GET', '/api/status', { token: 'olk_unknown' });
      assert.equal(unknownKey.body.error.code, 'INVALID_API_KEY');
      const garbage = await call(url, 'GET', '/api/keys', { token: 'garbage' });
      assert.equal(garbage.status, 401);
      const malformed = await call(url, 'GET', '/api/keys', {
        headers: { authorization: 'Basic abc' },
      });
      assert.equal(malformed.status, 401);
    });

    it('drips test OPEN on the local chain, once per cooldown, with Retry-After', async () => {
      const session = await signIn(url, bob);
      const target = '0x00000000000000000000000000000000000b0b00';
      const before = await call(url, 'GET', `/api/token/balances/${target}`);
      assert.equal(before.body.open, '0');
      const drip = await call(url, 'POST', '/api/faucet', {
        token: session,
        body: { address: target },
      });
      assert.equal(drip.status, 200, JSON.stringify(drip.body));
      assert.match(drip.body.txHash, /^0x[0-9a-f]{64}$/);
      const afterDrip = await call(url, 'GET', `/api/token/balances/${target}`);
      assert.equal(afterDrip.body.open, drip.body.open);
      assert.equal(BigInt(afterDrip.body.open) > 0n, true);
      const again = await call(url, 'POST', '/api/faucet', {
        token: session,
        body: { address: target },
      });
      assert.equal(again.status, 429);
      assert.equal(again.body.error.code, 'FAUCET_COOLDOWN');
      assert.match(again.headers.get('retry-after') ?? '', /^\d+$/);
    });

    it('serves the web app with a single-page fallback, but never for /api', async () => {
      const page = await call(url, 'GET', '/datanets');
      assert.equal(page.status, 200);
      assert.match(page.body, /<div id="root">/);
      const api = await call(url, 'GET', '/api/datanets-unknown');
      assert.equal(api.status, 404);
      assert.equal(api.body.error.code, 'ROUTE_NOT_FOUND');
    });
  });
}
