import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { getAddress, type Address as EvmAddress, type Hex } from 'viem';
import { metadataHash, normalizeMetadata, type Authorization } from '../../datanets/index.ts';
import { OpenLedgerError } from '../../errors.ts';
import type { NodeContext } from '../../node/context.ts';
import { requirePrincipal } from '../auth.ts';
import { Address, errors } from '../schemas.ts';

const Uint = Type.String({
  pattern: '^[0-9]{1,78}$',
  description: 'An unsigned integer as a decimal string.',
});
const Signature = Type.String({ pattern: '^0x[0-9a-fA-F]+$', maxLength: 20000 });
const AuthorizationBody = Type.Object(
  { signature: Signature, deadline: Uint },
  {
    description:
      "The acting wallet's EIP-712 signature of the registry action, and its deadline (unix seconds).",
  },
);
const Id = Type.Object({ id: Type.Integer({ minimum: 1 }) });
const Uuid = Type.String({ format: 'uuid' });

const Rules = Type.Object({
  acceptedTypes: Type.Optional(Type.Array(Type.String(), { maxItems: 20 })),
  maxFileBytes: Type.Optional(Type.Integer({ minimum: 1 })),
  dailyQuotaPerContributor: Type.Optional(Type.Integer({ minimum: 1 })),
  dailyQuotaPerDatanet: Type.Optional(Type.Integer({ minimum: 1 })),
});
const MetadataInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 80 }),
    summary: Type.Optional(Type.String({ maxLength: 280 })),
    description: Type.Optional(Type.String({ maxLength: 20000 })),
    tags: Type.Optional(Type.Array(Type.String({ maxLength: 40 }), { maxItems: 20 })),
    modality: Type.Optional(
      Type.Union([Type.Literal('text'), Type.Literal('image'), Type.Literal('audio')]),
    ),
    license: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    policy: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('permissioned')])),
    rules: Type.Optional(Rules),
  },
  { additionalProperties: false },
);

const ChatMessage = Type.Object({
  role: Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant')]),
  content: Type.String(),
});
const RowContent = Type.Union([
  Type.Object(
    { type: Type.Literal('document'), text: Type.String(), title: Type.Optional(Type.String()) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('instruction'),
      instruction: Type.String(),
      input: Type.Optional(Type.String()),
      output: Type.String(),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { type: Type.Literal('chat'), messages: Type.Array(ChatMessage, { minItems: 1 }) },
    { additionalProperties: false },
  ),
]);
type RowContentValue = Static<typeof RowContent>;
const Statement = {
  license: Type.String({ minLength: 1 }),
  consent: Type.Boolean(),
  nonce: Uint,
  signature: Signature,
};

/** Files are sent as raw bytes; this caps the request, each datanet's rules cap it further. */
export const MAX_UPLOAD_BYTES = 100 * 1024 * 1024;

function authorization(body: Static<typeof AuthorizationBody>): Authorization {
  return { signature: body.signature as Hex, deadline: BigInt(body.deadline) };
}

function service(ctx: NodeContext) {
  if (!ctx.datanets) {
    throw new OpenLedgerError('NOT_FOUND', 'This node has no datanet registry deployed.', {
      hint: 'Redeploy the contract suite (`openledger deploy --force`).',
    });
  }
  return ctx.datanets;
}

function viewer(request: FastifyRequest): EvmAddress | undefined {
  return request.principal?.address;
}

export function datanetRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.addContentTypeParser(
    'application/octet-stream',
    { parseAs: 'buffer', bodyLimit: MAX_UPLOAD_BYTES },
    (_request, body, done) => done(null, body),
  );

  app.get(
    '/api/datanets',
    {
      schema: {
        tags: ['datanets'],
        summary:
          'List datanets with statistics and whether the caller may read each (metadata is public; content follows each access policy)',
        querystring: Type.Object({
          owner: Type.Optional(Address),
          q: Type.Optional(Type.String({ maxLength: 100 })),
        }),
      },
    },
    async (request) => {
      const query = request.query as { owner?: string; q?: string };
      const datanets = service(ctx);
      const list = await datanets.list({
        ...(query.owner ? { owner: query.owner as EvmAddress } : {}),
        ...(query.q ? { q: query.q } : {}),
      });
      const reader = viewer(request);
      return {
        datanets: await Promise.all(
          list.map(async (d) => ({ ...d, canRead: await datanets.canRead(d.id, reader) })),
        ),
      };
    },
  );

  app.get(
    '/api/datanets/signing-info',
    {
      schema: {
        tags: ['datanets'],
        summary:
          'Chain id, registry address and the registry nonce of an address, for signing actions',
        querystring: Type.Object({ address: Address }),
        response: { 200: Type.Object({ chainId: Type.Integer(), registry: Address, nonce: Uint }) },
      },
    },
    async (request) => {
      const info = await service(ctx).signingInfo(
        getAddress((request.query as { address: string }).address),
      );
      return { ...info, nonce: info.nonce.toString() };
    },
  );

  app.post(
    '/api/datanets/metadata',
    {
      config: { public: true },
      schema: {
        tags: ['datanets'],
        summary:
          'Normalise datanet metadata (defaults filled) and give the hash a CreateDatanet signature covers',
        body: Type.Object({ metadata: MetadataInput }, { additionalProperties: false }),
        response: errors(400),
      },
    },
    async (request) => {
      const metadata = normalizeMetadata(
        (request.body as { metadata: Static<typeof MetadataInput> }).metadata,
      );
      return { metadata, metadataHash: metadataHash(metadata) };
    },
  );

  app.post(
    '/api/datanets',
    {
      schema: {
        tags: ['datanets'],
        summary:
          'Create a datanet: the owner signs CreateDatanet over the metadata hash; the node relays it on-chain',
        body: Type.Object(
          { metadata: MetadataInput, authorization: AuthorizationBody },
          { additionalProperties: false },
        ),
        response: { ...errors(400, 401, 403, 409, 503) },
      },
    },
    async (request, reply) => {
      const body = request.body as {
        metadata: Static<typeof MetadataInput>;
        authorization: Static<typeof AuthorizationBody>;
      };
      const owner = requirePrincipal(request).address;
      const created = await service(ctx).create({
        metadata: body.metadata,
        owner,
        authorization: authorization(body.authorization),
      });
      return reply.status(201).send(created);
    },
  );

  app.get(
    '/api/datanets/:id',
    {
      schema: {
        tags: ['datanets'],
        summary: 'A datanet: metadata, statistics, curators, versions, and whether you may read it',
        params: Id,
        response: errors(404),
      },
    },
    async (request) => {
      const { id } = request.params as { id: number };
      const datanets = service(ctx);
      const [datanet, stats, curators, versions, canRead] = await Promise.all([
        datanets.get(id),
        datanets.stats(id),
        datanets.curators(id),
        datanets.versions(id),
        datanets.canRead(id, viewer(request)),
      ]);
      return { ...datanet, stats, curators, versions, canRead };
    },
  );

  app.put(
    '/api/datanets/:id/metadata',
    {
      schema: {
        tags: ['datanets'],
        summary:
          'Replace the metadata of a datanet (owner; signed UpdateMetadata over the new metadata hash; policy and modality stay)',
        params: Id,
        body: Type.Object(
          { metadata: MetadataInput, authorization: AuthorizationBody },
          { additionalProperties: false },
        ),
        response: errors(400, 401, 403, 404),
      },
    },
    async (request) => {
      const { id } = request.params as { id: number };
      const body = request.body as {
        metadata: Static<typeof MetadataInput>;
        authorization: Static<typeof AuthorizationBody>;
      };
      return service(ctx).updateMetadata({
        id,
        owner: requirePrincipal(request).address,
        metadata: body.metadata,
        authorization: authorization(body.authorization),
      });
    },
  );

  app.post(
    '/api/datanets/:id/curators',
    {
      schema: {
        tags: ['datanets'],
        summary: 'Appoint or remove a curator (owner; signed SetCurator)',
        params: Id,
        body: Type.Object(
          { curator: Address, enabled: Type.Boolean(), authorization: AuthorizationBody },
          { additionalProperties: false },
        ),
        response: errors(400, 401, 403, 404),
      },
    },
    async (request) => {
      const { id } = request.params as { id: number };
      const body = request.body as {
        curator: string;
        enabled: boolean;
        authorization: Static<typeof AuthorizationBody>;
      };
      return service(ctx).setCurator({
        id,
        owner: requirePrincipal(request).address,
        curator: getAddress(body.curator),
        enabled: body.enabled,
        authorization: authorization(body.authorization),
      });
    },
  );

  app.post(
    '/api/datanets/:id/contributions',
    {
      schema: {
        tags: ['datanets'],
        summary:
          'Contribute rows (JSON body) or a file (raw bytes, application/octet-stream, statement in the query), with a signed Contribution statement',
        params: Id,
        querystring: Type.Object({
          fileName: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
          license: Type.Optional(Type.String()),
          consent: Type.Optional(Type.Boolean()),
          nonce: Type.Optional(Uint),
          signature: Type.Optional(Signature),
        }),
        body: {
          content: {
            'application/json': {
              schema: Type.Object(
                { rows: Type.Array(RowContent, { minItems: 1, maxItems: 10000 }), ...Statement },
                { additionalProperties: false },
              ),
            },
            // No JSON Schema for raw bytes (a Buffer is no JSON string); the handler checks them.
            'application/octet-stream': { schema: { description: 'The file, as raw bytes.' } },
          },
        },
        response: errors(400, 401, 404, 409, 413, 415, 422, 429),
      },
      // Multi-megabyte uploads: checked against the datanet's own limit after parsing.
      bodyLimit: MAX_UPLOAD_BYTES,
    },
    async (request, reply) => {
      const { id } = request.params as { id: number };
      const contributor = requirePrincipal(request).address;
      const datanets = service(ctx);
      let created;
      if (Buffer.isBuffer(request.body)) {
        const q = request.query as {
          fileName?: string;
          license?: string;
          consent?: boolean;
          nonce?: string;
          signature?: string;
        };
        const missing = (['fileName', 'license', 'nonce', 'signature'] as const).filter(
          (k) => !q[k],
        );
        if (missing.length > 0 || q.consent === undefined) {
          throw new OpenLedgerError(
            'VALIDATION_FAILED',
            `A file upload needs the query parameters ${[...missing, ...(q.consent === undefined ? ['consent'] : [])].join(', ')}.`,
          );
        }
        created = await datanets.contribute({
          datanetId: id,
          contributor,
          file: { name: q.fileName!, bytes: new Uint8Array(request.body) },
          license: q.license!,
          consent: q.consent === true,
          nonce: parseUint(q.nonce!, 'nonce'),
          signature: q.signature as Hex,
        });
      } else {
        const body = request.body as {
          rows: RowContentValue[];
          license: string;
          consent: boolean;
          nonce: string;
          signature: string;
        };
        created = await datanets.contribute({
          datanetId: id,
          contributor,
          rows: body.rows,
          license: body.license,
          consent: body.consent,
          nonce: parseUint(body.nonce, 'nonce'),
          signature: body.signature as Hex,
        });
      }
      return reply.status(201).send(created);
    },
  );

  app.get(
    '/api/datanets/:id/contributions',
    {
      schema: {
        tags: ['datanets'],
        summary:
          "Contributions of a datanet: all of them for its owner and curators, the caller's own otherwise",
        params: Id,
        querystring: Type.Object({
          status: Type.Optional(
            Type.Union([
              Type.Literal('pending'),
              Type.Literal('approved'),
              Type.Literal('rejected'),
            ]),
          ),
        }),
        response: errors(401, 404),
      },
    },
    async (request) => {
      const { id } = request.params as { id: number };
      const { status } = request.query as { status?: 'pending' | 'approved' | 'rejected' };
      const caller = requirePrincipal(request).address;
      const datanets = service(ctx);
      await datanets.get(id);
      const curator = await datanets.isCurator(id, caller);
      const list = await datanets.contributions({
        datanetId: id,
        ...(status ? { status } : {}),
        ...(curator ? {} : { contributor: caller }),
      });
      return { contributions: list.map(({ signature: _, ...c }) => c), curator };
    },
  );

  app.get(
    '/api/contributions/:cid',
    {
      schema: {
        tags: ['datanets'],
        summary:
          'One contribution with its rows and their validation (its contributor, the owner and curators)',
        params: Type.Object({ cid: Uuid }),
        response: errors(401, 403, 404),
      },
    },
    async (request) => {
      const { cid } = request.params as { cid: string };
      const caller = requirePrincipal(request).address;
      const datanets = service(ctx);
      const contribution = await datanets.contribution(cid);
      if (
        getAddress(contribution.contributor) !== caller &&
        !(await datanets.isCurator(contribution.datanetId, caller))
      ) {
        throw new OpenLedgerError(
          'FORBIDDEN',
          'Only its contributor and the datanet owner or curators may see a contribution.',
        );
      }
      return { ...contribution, rows: await datanets.contributionRows(cid) };
    },
  );

  const Batch = Type.Object({ approve: Type.Array(Uuid, { minItems: 1, maxItems: 1000 }) });

  app.post(
    '/api/datanets/:id/versions/plan',
    {
      schema: {
        tags: ['datanets'],
        summary:
          'The version an approval batch would commit (root, row count, manifest id), for the curator to sign as CommitVersion',
        params: Id,
        body: Type.Object({ ...Batch.properties }, { additionalProperties: false }),
        response: errors(400, 401, 403, 404, 409),
      },
    },
    async (request) => {
      const { id } = request.params as { id: number };
      const { approve } = request.body as { approve: string[] };
      const caller = requirePrincipal(request).address;
      const datanets = service(ctx);
      await datanets.assertCurator(id, caller);
      const { manifest: _, ...plan } = await datanets.planVersion({ id, approve });
      const info = await datanets.signingInfo(caller);
      return {
        ...plan,
        committer: caller,
        chainId: info.chainId,
        registry: info.registry,
        nonce: info.nonce.toString(),
      };
    },
  );

  app.post(
    '/api/datanets/:id/versions',
    {
      schema: {
        tags: ['datanets'],
        summary:
          'Approve a batch and commit the new version on-chain (curator; signed CommitVersion of the plan)',
        params: Id,
        body: Type.Object(
          { ...Batch.properties, authorization: AuthorizationBody },
          { additionalProperties: false },
        ),
        response: errors(400, 401, 403, 404, 409),
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: number };
      const body = request.body as {
        approve: string[];
        authorization: Static<typeof AuthorizationBody>;
      };
      const committed = await service(ctx).approve({
        id,
        curator: requirePrincipal(request).address,
        approve: body.approve,
        authorization: authorization(body.authorization),
      });
      // The RAG index follows each version (only the new rows are embedded); a retrieval would
      // also bring it up to date, so a failure here only logs.
      ctx.rag
        ?.ensureIndexed(id)
        .catch((error: unknown) => request.log.warn({ err: error }, 'RAG indexing failed'));
      return reply.status(201).send(committed);
    },
  );

  app.post(
    '/api/datanets/:id/reject',
    {
      schema: {
        tags: ['datanets'],
        summary: 'Reject pending contributions with a reason (owner or curator)',
        params: Id,
        body: Type.Object(
          {
            contributions: Type.Array(Uuid, { minItems: 1, maxItems: 1000 }),
            reason: Type.String({ minLength: 1, maxLength: 1000 }),
          },
          { additionalProperties: false },
        ),
        response: errors(400, 401, 403, 404, 409),
      },
    },
    async (request) => {
      const { id } = request.params as { id: number };
      const body = request.body as { contributions: string[]; reason: string };
      return service(ctx).reject({
        id,
        curator: requirePrincipal(request).address,
        contributions: body.contributions,
        reason: body.reason,
      });
    },
  );

  app.get(
    '/api/datanets/:id/versions',
    {
      schema: {
        tags: ['datanets'],
        summary: 'Version history: root, row count, manifest, transaction',
        params: Id,
        response: errors(404),
      },
    },
    async (request) => ({
      versions: await service(ctx).versions((request.params as { id: number }).id),
    }),
  );

  app.get(
    '/api/datanets/:id/versions/:version/export',
    {
      schema: {
        tags: ['datanets'],
        summary:
          'A version as JSONL for training: one row per line with its hash, contributor, content and chat messages (read access)',
        params: Type.Object({
          id: Type.Integer({ minimum: 1 }),
          version: Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('latest')]),
        }),
        response: errors(401, 403, 404),
      },
    },
    async (request, reply) => {
      const { id, version } = request.params as { id: number; version: number | 'latest' };
      const datanets = service(ctx);
      await datanets.assertCanRead(id, viewer(request));
      const exported = await datanets.exportVersion(id, version);
      reply.header('x-openledger-version', String(exported.version.version));
      reply.header('x-openledger-root', exported.version.root);
      return reply
        .type('application/x-ndjson')
        .send(exported.rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    },
  );

  app.get(
    '/api/datanets/:id/versions/:version/proof',
    {
      schema: {
        tags: ['datanets'],
        summary: "A row's Merkle inclusion proof in a version (read access)",
        params: Type.Object({
          id: Type.Integer({ minimum: 1 }),
          version: Type.Integer({ minimum: 1 }),
        }),
        querystring: Type.Object({
          rowHash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
          contributionId: Type.Optional(Uuid),
        }),
        response: errors(401, 403, 404),
      },
    },
    async (request) => {
      const { id, version } = request.params as { id: number; version: number };
      const { rowHash, contributionId } = request.query as {
        rowHash: string;
        contributionId?: string;
      };
      const datanets = service(ctx);
      await datanets.assertCanRead(id, viewer(request));
      return datanets.proof(id, version, rowHash, contributionId);
    },
  );

  app.get(
    '/api/datanets/:id/versions/:version/diff',
    {
      schema: {
        tags: ['datanets'],
        summary:
          'What a version added: row hashes and contributors, and the previous root (read access)',
        params: Type.Object({
          id: Type.Integer({ minimum: 1 }),
          version: Type.Integer({ minimum: 1 }),
        }),
        response: errors(404),
      },
    },
    async (request) => {
      const { id, version } = request.params as { id: number; version: number };
      const datanets = service(ctx);
      await datanets.assertCanRead(id, viewer(request));
      return datanets.versionDiff(id, version);
    },
  );

  app.get(
    '/api/contributors/:address',
    {
      schema: {
        tags: ['datanets'],
        summary:
          "A contributor's record across datanets: contributions, accepted rows, acceptance ratio, scores",
        params: Type.Object({ address: Address }),
      },
    },
    async (request) =>
      service(ctx).contributorProfile(getAddress((request.params as { address: string }).address)),
  );

  app.get(
    '/api/datanets/:id/leaderboard',
    {
      schema: {
        tags: ['datanets'],
        summary: 'Per-contributor rows, approvals and mean validation score',
        params: Id,
        response: errors(404),
      },
    },
    async (request) => ({
      contributors: await service(ctx).leaderboard((request.params as { id: number }).id),
    }),
  );

  app.post(
    '/api/datanets/:id/access-requests',
    {
      schema: {
        tags: ['datanets'],
        summary:
          'Request access to a permissioned datanet with a purpose (signed RequestAccess over sha256(purpose))',
        params: Id,
        body: Type.Object(
          {
            purpose: Type.String({ minLength: 1, maxLength: 2000 }),
            authorization: AuthorizationBody,
          },
          { additionalProperties: false },
        ),
        response: errors(400, 401, 404, 409),
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: number };
      const body = request.body as {
        purpose: string;
        authorization: Static<typeof AuthorizationBody>;
      };
      const created = await service(ctx).requestAccess({
        id,
        account: requirePrincipal(request).address,
        purpose: body.purpose,
        authorization: authorization(body.authorization),
      });
      return reply.status(201).send(created);
    },
  );

  app.get(
    '/api/datanets/:id/access-requests',
    {
      schema: {
        tags: ['datanets'],
        summary:
          "Access requests of a datanet: all of them for its owner and curators, the caller's own otherwise",
        params: Id,
        response: errors(401, 404),
      },
    },
    async (request) => {
      const { id } = request.params as { id: number };
      const caller = requirePrincipal(request).address;
      const datanets = service(ctx);
      const curator = await datanets.isCurator(id, caller);
      return { requests: await datanets.accessRequests(id, curator ? undefined : caller), curator };
    },
  );

  app.post(
    '/api/datanets/:id/access',
    {
      schema: {
        tags: ['datanets'],
        summary:
          'Grant, deny or revoke an account’s access (owner; signed GrantAccess, DenyAccess or RevokeAccess)',
        params: Id,
        body: Type.Object(
          {
            account: Address,
            decision: Type.Union([
              Type.Literal('grant'),
              Type.Literal('deny'),
              Type.Literal('revoke'),
            ]),
            reason: Type.Optional(Type.String({ maxLength: 1000 })),
            authorization: AuthorizationBody,
          },
          { additionalProperties: false },
        ),
        response: errors(400, 401, 403, 404, 409),
      },
    },
    async (request) => {
      const { id } = request.params as { id: number };
      const body = request.body as {
        account: string;
        decision: 'grant' | 'deny' | 'revoke';
        reason?: string;
        authorization: Static<typeof AuthorizationBody>;
      };
      return service(ctx).decideAccess({
        id,
        owner: requirePrincipal(request).address,
        account: getAddress(body.account),
        decision: body.decision,
        ...(body.reason ? { reason: body.reason } : {}),
        authorization: authorization(body.authorization),
      });
    },
  );

  app.get(
    '/api/datanets/:id/access/:address',
    {
      schema: {
        tags: ['datanets'],
        summary: 'Whether an address may read the datanet (as the chain says)',
        params: Type.Object({ id: Type.Integer({ minimum: 1 }), address: Address }),
        response: {
          200: Type.Object({ id: Type.Integer(), address: Address, canRead: Type.Boolean() }),
          ...errors(404),
        },
      },
    },
    async (request) => {
      const { id, address } = request.params as { id: number; address: string };
      return {
        id,
        address: getAddress(address),
        canRead: await service(ctx).canRead(id, getAddress(address)),
      };
    },
  );
}

function parseUint(value: string, field: string): bigint {
  if (!/^[0-9]{1,78}$/.test(value))
    throw new OpenLedgerError('VALIDATION_FAILED', `${field} must be an unsigned integer.`);
  return BigInt(value);
}
