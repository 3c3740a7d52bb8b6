import { randomBytes } from 'node:crypto';
import { sha256, toBytes, type Address, type Hex, type LocalAccount } from 'viem';
import {
  contributionTypedData,
  purposeHash,
  registryTypedData,
  type DatanetMetadataInput,
  type SigningContext,
} from '../../src/datanets/index.ts';
import { canonicalJson, type RowContent } from '../../src/datanets/ingest/index.ts';
import { permitTypedData } from '../../src/payments/typed-data.ts';
import { call, signIn, type Answer } from './http.ts';

/** Drives datanet flows over HTTP as a wallet would: sign in, sign each action, send it. */
export class DatanetActor {
  private token: string | undefined;

  constructor(
    readonly url: string,
    readonly account: LocalAccount,
  ) {}

  async session(): Promise<string> {
    this.token ??= await signIn(this.url, this.account);
    return this.token;
  }

  async call(method: string, path: string, body?: unknown): Promise<Answer> {
    return call(this.url, method, path, {
      token: await this.session(),
      ...(body === undefined ? {} : { body }),
    });
  }

  /**
   * Test OPEN from the faucet, then `amount` of it deposited into the inference escrow with a
   * signed permit (the node relays it): the faucet's and the deposit's answers.
   */
  async fundEscrow(amount: bigint): Promise<{ faucet: Answer; deposit: Answer }> {
    const faucet = await this.call('POST', '/api/faucet', {});
    const info = await this.call('GET', '/api/escrow');
    const deadline = BigInt(Math.floor(Date.now() / 1000) + 3600);
    const signature = await this.account.signTypedData(
      permitTypedData({
        chainId: info.body.chainId,
        token: info.body.token,
        escrow: info.body.escrow,
        owner: this.account.address,
        value: amount,
        nonce: BigInt(info.body.tokenNonce),
        deadline,
      }),
    );
    const deposit = await this.call('POST', '/api/escrow/deposit', {
      owner: this.account.address,
      amount: amount.toString(),
      deadline: deadline.toString(),
      signature,
    });
    return { faucet, deposit };
  }

  async signing(): Promise<SigningContext> {
    const info = (
      await call(this.url, 'GET', `/api/datanets/signing-info?address=${this.account.address}`)
    ).body;
    return {
      chainId: info.chainId,
      registry: info.registry,
      nonce: BigInt(info.nonce),
      deadline: BigInt(Math.floor(Date.now() / 1000) + 3600),
    };
  }

  private auth(signature: Hex, ctx: SigningContext) {
    return { signature, deadline: ctx.deadline.toString() };
  }

  async create(metadata: DatanetMetadataInput): Promise<Answer> {
    const normalized = (
      await call(this.url, 'POST', '/api/datanets/metadata', { body: { metadata } })
    ).body;
    const ctx = await this.signing();
    const signature = await this.account.signTypedData(
      registryTypedData.createDatanet(ctx, {
        owner: this.account.address,
        metadataHash: normalized.metadataHash,
        policy: normalized.metadata.policy,
      }),
    );
    return this.call('POST', '/api/datanets', {
      metadata: normalized.metadata,
      authorization: this.auth(signature, ctx),
    });
  }

  /** Signs a contribution statement; `tamper` lets tests sign something other than what is sent. */
  async statement(
    datanetId: number,
    contentHash: Hex,
    license = 'CC-BY-4.0',
    nonce = randomNonce(),
  ) {
    const status = (await call(this.url, 'GET', '/api/status')).body;
    const signature = await this.account.signTypedData(
      contributionTypedData(status.chainId, status.contracts.DatanetRegistry as Address, {
        datanetId: BigInt(datanetId),
        contentHash,
        license,
        consent: true,
        nonce,
      }),
    );
    return { signature, nonce: nonce.toString(), license, consent: true };
  }

  async contributeRows(
    datanetId: number,
    rows: RowContent[],
    license = 'CC-BY-4.0',
  ): Promise<Answer> {
    const statement = await this.statement(
      datanetId,
      sha256(toBytes(canonicalJson(rows))),
      license,
    );
    return this.call('POST', `/api/datanets/${datanetId}/contributions`, { rows, ...statement });
  }

  async contributeFile(
    datanetId: number,
    fileName: string,
    bytes: Uint8Array,
    statement?: Awaited<ReturnType<DatanetActor['statement']>>,
  ): Promise<Answer> {
    const signed = statement ?? (await this.statement(datanetId, sha256(bytes)));
    const query = new URLSearchParams({
      fileName,
      license: signed.license,
      consent: String(signed.consent),
      nonce: signed.nonce,
      signature: signed.signature,
    });
    return call(this.url, 'POST', `/api/datanets/${datanetId}/contributions?${query}`, {
      token: await this.session(),
      body: bytes,
      headers: { 'content-type': 'application/octet-stream' },
    });
  }

  async approve(datanetId: number, approve: string[]): Promise<Answer> {
    const plan = await this.call('POST', `/api/datanets/${datanetId}/versions/plan`, { approve });
    if (plan.status !== 200) return plan;
    const ctx = await this.signing();
    const signature = await this.account.signTypedData(
      registryTypedData.commitVersion(ctx, {
        committer: this.account.address,
        id: BigInt(datanetId),
        root: plan.body.root,
        rowCount: BigInt(plan.body.rowCount),
        manifestId: plan.body.manifestId,
      }),
    );
    return this.call('POST', `/api/datanets/${datanetId}/versions`, {
      approve,
      authorization: this.auth(signature, ctx),
    });
  }

  async setCurator(datanetId: number, curator: Address, enabled: boolean): Promise<Answer> {
    const ctx = await this.signing();
    const signature = await this.account.signTypedData(
      registryTypedData.setCurator(ctx, {
        owner: this.account.address,
        id: BigInt(datanetId),
        curator,
        enabled,
      }),
    );
    return this.call('POST', `/api/datanets/${datanetId}/curators`, {
      curator,
      enabled,
      authorization: this.auth(signature, ctx),
    });
  }

  async requestAccess(datanetId: number, purpose: string): Promise<Answer> {
    const ctx = await this.signing();
    const signature = await this.account.signTypedData(
      registryTypedData.requestAccess(ctx, {
        account: this.account.address,
        id: BigInt(datanetId),
        purposeHash: purposeHash(purpose),
      }),
    );
    return this.call('POST', `/api/datanets/${datanetId}/access-requests`, {
      purpose,
      authorization: this.auth(signature, ctx),
    });
  }

  async decideAccess(
    datanetId: number,
    account: Address,
    decision: 'grant' | 'revoke',
  ): Promise<Answer> {
    const ctx = await this.signing();
    const message = { owner: this.account.address, id: BigInt(datanetId), account };
    const signature =
      decision === 'grant'
        ? await this.account.signTypedData(registryTypedData.grantAccess(ctx, message))
        : await this.account.signTypedData(registryTypedData.revokeAccess(ctx, message));
    return this.call('POST', `/api/datanets/${datanetId}/access`, {
      account,
      decision,
      authorization: this.auth(signature, ctx),
    });
  }
}

export function randomNonce(): bigint {
  return BigInt(`0x${randomBytes(16).toString('hex')}`);
}
