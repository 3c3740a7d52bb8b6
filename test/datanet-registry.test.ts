import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import {
  BaseError,
  ContractFunctionRevertedError,
  getAddress,
  domainSeparator,
  keccak256,
  parseEventLogs,
  sha256,
  stringToHex,
  toHex,
  zeroAddress,
  zeroHash,
  type Address,
  type Hex,
  type LocalAccount,
  type TransactionReceipt,
} from 'viem';
import { compileContracts } from '../src/chain/compile.ts';
import { DatanetRegistryBytecode } from '../src/chain/generated/contracts.ts';
import { REGISTRY_TYPES } from '../src/datanets/typed-data.ts';
import {
  DatanetRegistryAbi,
  deployContracts,
  devAccount,
  isDeploymentLive,
  type ChainConnection,
} from '../src/chain/index.ts';
import { expectRevert, startTestChain } from './helpers/chain.ts';

const deployer = devAccount(0);
const alice = devAccount(1); // datanet owner
const bob = devAccount(2); // curator
const carol = devAccount(3); // stranger, access requester
const relayer = devAccount(9); // the node: submits signed actions and pays their gas

const OPEN = 0;
const PERMISSIONED = 1;

/** The EIP-712 types, exactly as the node must sign them. */
// The production types (the CLI and web app sign with these); the test checks them against the
// contract's typehash constants.
const TYPES = REGISTRY_TYPES;
type PrimaryType = keyof typeof TYPES;

/** The EIP-712 type string of a (flat) type, as Solidity's type hash is computed from it. */
const typeString = (primaryType: PrimaryType) =>
  `${primaryType}(${TYPES[primaryType].map((f) => `${f.type} ${f.name}`).join(',')})`;

const hash = (text: string) => sha256(stringToHex(text));

/** Like `expectRevert`, and checks the custom error's arguments too. */
async function expectRevertWith(
  call: Promise<unknown>,
  errorName: string,
  args: readonly unknown[],
): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    const reverted =
      error instanceof BaseError
        ? error.walk((e) => e instanceof ContractFunctionRevertedError)
        : null;
    assert.ok(reverted instanceof ContractFunctionRevertedError, String(error));
    assert.equal(reverted.data?.errorName, errorName);
    assert.deepEqual(reverted.data?.args, args);
    return true;
  });
}

/** A wallet contract that accepts, through ERC-1271, what its owning key signs. */
const SMART_WALLET_SOURCE = `// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

contract TestSmartWallet is IERC1271 {
    address public immutable KEY;

    constructor(address key) {
        KEY = key;
    }

    function isValidSignature(bytes32 digest, bytes calldata signature) external view returns (bytes4) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        return err == ECDSA.RecoverError.NoError && recovered == KEY ? this.isValidSignature.selector : bytes4(0xffffffff);
    }
}
`;

describe('DatanetRegistry on a local chain', () => {
  let env: Awaited<ReturnType<typeof startTestChain>>;
  let conn: ChainConnection;
  let registry: Address;

  const deployRegistry = async (): Promise<Address> => {
    const txHash = await conn
      .walletFor(devAccount(0))
      .deployContract({ abi: DatanetRegistryAbi, bytecode: DatanetRegistryBytecode });
    const receipt = await conn.publicClient.waitForTransactionReceipt({ hash: txHash });
    return getAddress(receipt.contractAddress!);
  };

  before(async () => {
    env = await startTestChain();
    conn = env.conn;
    registry = await deployRegistry();
  });
  after(() => env.close());

  /** Simulates (so a revert surfaces with its custom error), sends and waits for `functionName`. */
  const send = async (
    account: LocalAccount,
    functionName: string,
    args: readonly unknown[],
    address: Address = registry,
  ): Promise<TransactionReceipt> => {
    const { request } = await conn.publicClient.simulateContract({
      address,
      abi: DatanetRegistryAbi,
      functionName,
      args,
      account,
    } as never);
    const txHash = await conn.walletFor(account).writeContract(request as never);
    const receipt = await conn.publicClient.waitForTransactionReceipt({ hash: txHash });
    assert.equal(receipt.status, 'success');
    return receipt;
  };

  const read = (functionName: string, args: readonly unknown[] = [], address = registry) =>
    conn.publicClient.readContract({
      address,
      abi: DatanetRegistryAbi,
      functionName,
      args,
    } as never) as Promise<unknown>;

  const events = (receipt: TransactionReceipt, eventName: string) =>
    parseEventLogs({ abi: DatanetRegistryAbi, logs: receipt.logs, eventName } as never).map(
      (log) => (log as unknown as { args: Record<string, unknown> }).args,
    );

  const now = async () => (await conn.publicClient.getBlock()).timestamp;

  /**
   * Signs `primaryType` with `key` for the acting address (the type's first field), at that
   * address's current nonce unless told otherwise, good for an hour unless told otherwise.
   */
  const sign = async (
    key: LocalAccount,
    primaryType: PrimaryType,
    message: Record<string, unknown>,
    options: { nonce?: bigint; deadline?: bigint; contract?: Address } = {},
  ): Promise<{ deadline: bigint; signature: Hex }> => {
    const contract = options.contract ?? registry;
    const actor = message[TYPES[primaryType][0].name] as Address;
    const nonce = options.nonce ?? ((await read('nonces', [actor], contract)) as bigint);
    const deadline = options.deadline ?? (await now()) + 3600n;
    const signature = await key.signTypedData({
      domain: {
        name: 'OpenLedger DatanetRegistry',
        version: '1',
        chainId: conn.chain.id,
        verifyingContract: contract,
      },
      types: TYPES,
      primaryType,
      message: { ...message, nonce, deadline },
    } as never);
    return { deadline, signature };
  };

  /** Creates a datanet owned by `owner` (directly) and returns its id. */
  const create = async (owner: LocalAccount, policy: number, label = 'datanet') => {
    const receipt = await send(owner, 'createDatanet', [hash(label), policy]);
    return events(receipt, 'DatanetCreated')[0]!.id as bigint;
  };

  describe('signing domain', () => {
    it('publishes the EIP-712 domain and the type hashes the node signs with', async () => {
      const [, name, version, chainId, verifyingContract] = (await read('eip712Domain')) as [
        Hex,
        string,
        string,
        bigint,
        Address,
      ];
      assert.deepEqual(
        [name, version, chainId, verifyingContract],
        ['OpenLedger DatanetRegistry', '1', BigInt(conn.chain.id), registry],
      );
      assert.equal(
        await read('DOMAIN_SEPARATOR'),
        domainSeparator({ domain: { name, version, chainId, verifyingContract } }),
      );
      const constants: Record<PrimaryType, string> = {
        CreateDatanet: 'CREATE_DATANET_TYPEHASH',
        UpdateMetadata: 'UPDATE_METADATA_TYPEHASH',
        SetCurator: 'SET_CURATOR_TYPEHASH',
        CommitVersion: 'COMMIT_VERSION_TYPEHASH',
        RequestAccess: 'REQUEST_ACCESS_TYPEHASH',
        GrantAccess: 'GRANT_ACCESS_TYPEHASH',
        RevokeAccess: 'REVOKE_ACCESS_TYPEHASH',
        DenyAccess: 'DENY_ACCESS_TYPEHASH',
      };
      for (const [primaryType, constant] of Object.entries(constants)) {
        assert.equal(
          await read(constant),
          keccak256(toHex(typeString(primaryType as PrimaryType))),
          primaryType,
        );
      }
      assert.equal(
        typeString('CommitVersion'),
        'CommitVersion(address committer,uint256 id,bytes32 root,uint64 rowCount,bytes32 manifestId,uint256 nonce,uint256 deadline)',
      );
    });
  });

  describe('datanets', () => {
    it('creates datanets with sequential ids, owned by the caller', async () => {
      const before = (await read('datanetCount')) as bigint;
      const receipt = await send(alice, 'createDatanet', [hash('first'), OPEN]);
      assert.deepEqual(events(receipt, 'DatanetCreated'), [
        { id: before + 1n, owner: alice.address, metadataHash: hash('first'), policy: OPEN },
      ]);
      const second = await create(carol, PERMISSIONED, 'second');
      assert.equal(second, before + 2n);
      assert.equal(await read('datanetCount'), before + 2n);
      assert.deepEqual(await read('datanet', [before + 1n]), {
        owner: alice.address,
        policy: OPEN,
        metadataHash: hash('first'),
      });
      assert.deepEqual(await read('datanet', [second]), {
        owner: carol.address,
        policy: PERMISSIONED,
        metadataHash: hash('second'),
      });
      assert.equal(await read('versionCount', [second]), 0n);
    });

    it('creates a datanet from a relayed signature: the signer owns it, the relayer pays', async () => {
      const nonce = (await read('nonces', [alice.address])) as bigint;
      const { deadline, signature } = await sign(alice, 'CreateDatanet', {
        owner: alice.address,
        metadataHash: hash('relayed'),
        policy: PERMISSIONED,
      });
      const relayerBalance = await conn.publicClient.getBalance({ address: relayer.address });
      const aliceBalance = await conn.publicClient.getBalance({ address: alice.address });
      const receipt = await send(relayer, 'createDatanetWithSig', [
        alice.address,
        hash('relayed'),
        PERMISSIONED,
        deadline,
        signature,
      ]);
      assert.equal(receipt.from, relayer.address.toLowerCase());
      const [created] = events(receipt, 'DatanetCreated');
      assert.deepEqual(created, {
        id: created!.id,
        owner: alice.address,
        metadataHash: hash('relayed'),
        policy: PERMISSIONED,
      });
      assert.equal(
        ((await read('datanet', [created!.id])) as { owner: Address }).owner,
        alice.address,
      );
      assert.equal(await read('nonces', [alice.address]), nonce + 1n);
      assert.ok(
        (await conn.publicClient.getBalance({ address: relayer.address })) < relayerBalance,
      );
      assert.equal(await conn.publicClient.getBalance({ address: alice.address }), aliceBalance);
    });

    it('lets only the owner update the metadata, directly or by signature', async () => {
      const id = await create(alice, OPEN);
      const receipt = await send(alice, 'updateMetadata', [id, hash('v2')]);
      assert.deepEqual(events(receipt, 'MetadataUpdated'), [{ id, metadataHash: hash('v2') }]);
      await expectRevertWith(send(carol, 'updateMetadata', [id, hash('mine')]), 'NotOwner', [
        id,
        carol.address,
      ]);

      const signed = await sign(alice, 'UpdateMetadata', {
        owner: alice.address,
        id,
        metadataHash: hash('v3'),
      });
      await send(relayer, 'updateMetadataWithSig', [
        alice.address,
        id,
        hash('v3'),
        signed.deadline,
        signed.signature,
      ]);
      assert.equal(
        ((await read('datanet', [id])) as { metadataHash: Hex }).metadataHash,
        hash('v3'),
      );
      // A stranger's own valid signature does not make it the owner.
      const stranger = await sign(carol, 'UpdateMetadata', {
        owner: carol.address,
        id,
        metadataHash: hash('v4'),
      });
      await expectRevert(
        send(relayer, 'updateMetadataWithSig', [
          carol.address,
          id,
          hash('v4'),
          stranger.deadline,
          stranger.signature,
        ]),
        'NotOwner',
      );
      await expectRevert(send(alice, 'updateMetadata', [999n, hash('x')]), 'UnknownDatanet');
    });

    it('lets the owner add and remove curators, directly or by signature', async () => {
      const id = await create(alice, OPEN);
      assert.equal(await read('isCurator', [id, bob.address]), false);
      const receipt = await send(alice, 'setCurator', [id, bob.address, true]);
      assert.deepEqual(events(receipt, 'CuratorSet'), [
        { id, curator: bob.address, enabled: true },
      ]);
      assert.equal(await read('isCurator', [id, bob.address]), true);
      await expectRevert(send(bob, 'setCurator', [id, carol.address, true]), 'NotOwner');
      await expectRevert(send(alice, 'setCurator', [id, zeroAddress, true]), 'ZeroAddress');

      const signed = await sign(alice, 'SetCurator', {
        owner: alice.address,
        id,
        curator: bob.address,
        enabled: false,
      });
      const removed = await send(relayer, 'setCuratorWithSig', [
        alice.address,
        id,
        bob.address,
        false,
        signed.deadline,
        signed.signature,
      ]);
      assert.deepEqual(events(removed, 'CuratorSet'), [
        { id, curator: bob.address, enabled: false },
      ]);
      assert.equal(await read('isCurator', [id, bob.address]), false);
    });
  });

  describe('versions', () => {
    it('numbers versions from 1 and stores what was committed, by the owner or a curator', async () => {
      const id = await create(alice, OPEN);
      await send(alice, 'setCurator', [id, bob.address, true]);

      const first = await send(alice, 'commitVersion', [id, hash('root1'), 10n, hash('manifest1')]);
      assert.deepEqual(events(first, 'VersionCommitted'), [
        {
          id,
          version: 1n,
          root: hash('root1'),
          rowCount: 10n,
          manifestId: hash('manifest1'),
          committer: alice.address,
        },
      ]);
      const second = await send(bob, 'commitVersion', [id, hash('root2'), 25n, hash('manifest2')]);
      assert.equal(events(second, 'VersionCommitted')[0]!.version, 2n);
      assert.equal(await read('versionCount', [id]), 2n);

      const block = await conn.publicClient.getBlock({ blockNumber: second.blockNumber });
      assert.deepEqual(await read('version', [id, 2n]), {
        root: hash('root2'),
        manifestId: hash('manifest2'),
        rowCount: 25n,
        committedAt: block.timestamp,
        committer: bob.address,
      });
      assert.equal(
        ((await read('version', [id, 1n])) as { committer: Address }).committer,
        alice.address,
      );
    });

    it('refuses commits by strangers or former curators, empty roots and unknown datanets', async () => {
      const id = await create(alice, OPEN);
      await expectRevertWith(
        send(carol, 'commitVersion', [id, hash('root'), 1n, hash('m')]),
        'NotOwnerOrCurator',
        [id, carol.address],
      );
      await send(alice, 'setCurator', [id, bob.address, true]);
      await send(alice, 'setCurator', [id, bob.address, false]);
      await expectRevert(
        send(bob, 'commitVersion', [id, hash('root'), 1n, hash('m')]),
        'NotOwnerOrCurator',
      );
      await expectRevert(send(alice, 'commitVersion', [id, zeroHash, 1n, hash('m')]), 'EmptyRoot');
      await expectRevert(
        send(alice, 'commitVersion', [999n, hash('root'), 1n, hash('m')]),
        'UnknownDatanet',
      );
      assert.equal(await read('versionCount', [id]), 0n);
    });

    it('accepts a curator’s relayed commit, recorded as the curator’s', async () => {
      const id = await create(alice, OPEN);
      await send(alice, 'setCurator', [id, bob.address, true]);
      const message = {
        committer: bob.address,
        id,
        root: hash('root'),
        rowCount: 7n,
        manifestId: hash('manifest'),
      };
      const signed = await sign(bob, 'CommitVersion', message);
      const receipt = await send(relayer, 'commitVersionWithSig', [
        bob.address,
        id,
        hash('root'),
        7n,
        hash('manifest'),
        signed.deadline,
        signed.signature,
      ]);
      assert.deepEqual(events(receipt, 'VersionCommitted'), [{ ...message, version: 1n }]);
      assert.equal(
        ((await read('version', [id, 1n])) as { committer: Address }).committer,
        bob.address,
      );
    });
  });

  describe('signatures', () => {
    it('cannot be replayed: the nonce is consumed', async () => {
      const id = await create(alice, OPEN);
      const signed = await sign(alice, 'UpdateMetadata', {
        owner: alice.address,
        id,
        metadataHash: hash('once'),
      });
      const args = [alice.address, id, hash('once'), signed.deadline, signed.signature];
      await send(relayer, 'updateMetadataWithSig', args);
      await expectRevert(send(relayer, 'updateMetadataWithSig', args), 'InvalidSignature');
      await expectRevert(send(carol, 'updateMetadataWithSig', args), 'InvalidSignature');
    });

    it('must be the acting wallet’s, for its current nonce', async () => {
      const id = await create(alice, OPEN);
      const message = { owner: alice.address, id, metadataHash: hash('forged') };
      const forged = await sign(bob, 'UpdateMetadata', message);
      await expectRevertWith(
        send(relayer, 'updateMetadataWithSig', [
          alice.address,
          id,
          hash('forged'),
          forged.deadline,
          forged.signature,
        ]),
        'InvalidSignature',
        [alice.address],
      );
      const nonce = (await read('nonces', [alice.address])) as bigint;
      const ahead = await sign(alice, 'UpdateMetadata', message, { nonce: nonce + 1n });
      await expectRevert(
        send(relayer, 'updateMetadataWithSig', [
          alice.address,
          id,
          hash('forged'),
          ahead.deadline,
          ahead.signature,
        ]),
        'InvalidSignature',
      );
      await expectRevert(
        send(relayer, 'updateMetadataWithSig', [
          alice.address,
          id,
          hash('forged'),
          ahead.deadline,
          '0x',
        ]),
        'InvalidSignature',
      );
      await expectRevert(
        send(relayer, 'createDatanetWithSig', [zeroAddress, hash('x'), OPEN, ahead.deadline, '0x']),
        'ZeroAddress',
      );
      assert.equal(await read('nonces', [alice.address]), nonce);
    });

    it('expires at its deadline', async () => {
      const deadline = (await now()) - 1n;
      const signed = await sign(
        alice,
        'CreateDatanet',
        { owner: alice.address, metadataHash: hash('late'), policy: OPEN },
        { deadline },
      );
      await expectRevertWith(
        send(relayer, 'createDatanetWithSig', [
          alice.address,
          hash('late'),
          OPEN,
          deadline,
          signed.signature,
        ]),
        'ExpiredSignature',
        [deadline],
      );
    });

    it('binds every field: it cannot serve another datanet, another value, another action or another registry', async () => {
      const id = await create(alice, PERMISSIONED, 'one');
      const other = await create(alice, PERMISSIONED, 'two');
      const grant = await sign(alice, 'GrantAccess', {
        owner: alice.address,
        id,
        account: carol.address,
      });
      // Another datanet of the same owner.
      await expectRevert(
        send(relayer, 'grantAccessWithSig', [
          alice.address,
          other,
          carol.address,
          grant.deadline,
          grant.signature,
        ]),
        'InvalidSignature',
      );
      // Another grantee.
      await expectRevert(
        send(relayer, 'grantAccessWithSig', [
          alice.address,
          id,
          bob.address,
          grant.deadline,
          grant.signature,
        ]),
        'InvalidSignature',
      );
      // A later deadline.
      await expectRevert(
        send(relayer, 'grantAccessWithSig', [
          alice.address,
          id,
          carol.address,
          grant.deadline + 1n,
          grant.signature,
        ]),
        'InvalidSignature',
      );
      // Another action with the same fields.
      await expectRevert(
        send(relayer, 'revokeAccessWithSig', [
          alice.address,
          id,
          carol.address,
          grant.deadline,
          grant.signature,
        ]),
        'InvalidSignature',
      );
      // Another registry (same chain, same nonce): the domain binds the contract.
      const elsewhere = await deployRegistry();
      await send(alice, 'createDatanet', [hash('one'), PERMISSIONED], elsewhere);
      await expectRevert(
        send(
          relayer,
          'grantAccessWithSig',
          [alice.address, id, carol.address, grant.deadline, grant.signature],
          elsewhere,
        ),
        'InvalidSignature',
      );
      // Still good where and for what it was signed.
      await send(relayer, 'grantAccessWithSig', [
        alice.address,
        id,
        carol.address,
        grant.deadline,
        grant.signature,
      ]);
      assert.equal(await read('hasAccess', [id, carol.address]), true);
      assert.equal(await read('hasAccess', [other, carol.address]), false);
    });

    it('works for smart-contract wallets through ERC-1271', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'openledger-wallet-'));
      let compiled;
      try {
        await writeFile(path.join(dir, 'TestSmartWallet.sol'), SMART_WALLET_SOURCE);
        compiled = (await compileContracts(dir)).contracts.TestSmartWallet!;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      const txHash = await conn.walletFor(deployer).deployContract({
        abi: compiled.abi as never,
        bytecode: compiled.bytecode,
        args: [alice.address],
      });
      const wallet = getAddress(
        (await conn.publicClient.waitForTransactionReceipt({ hash: txHash })).contractAddress!,
      );

      const message = { owner: wallet, metadataHash: hash('dao'), policy: OPEN };
      const byOther = await sign(bob, 'CreateDatanet', message);
      await expectRevert(
        send(relayer, 'createDatanetWithSig', [
          wallet,
          hash('dao'),
          OPEN,
          byOther.deadline,
          byOther.signature,
        ]),
        'InvalidSignature',
      );
      const signed = await sign(alice, 'CreateDatanet', message);
      const receipt = await send(relayer, 'createDatanetWithSig', [
        wallet,
        hash('dao'),
        OPEN,
        signed.deadline,
        signed.signature,
      ]);
      const [created] = events(receipt, 'DatanetCreated');
      assert.equal(created!.owner, wallet);
      assert.equal(await read('nonces', [wallet]), 1n);
    });
  });

  describe('access', () => {
    it('lets anyone read an open datanet, where access is neither requested nor granted', async () => {
      const id = await create(alice, OPEN);
      for (const account of [alice, bob, carol]) {
        assert.equal(await read('hasAccess', [id, account.address]), true);
      }
      await expectRevertWith(
        send(carol, 'requestAccess', [id, hash('purpose')]),
        'NotPermissioned',
        [id],
      );
      await expectRevert(send(alice, 'grantAccess', [id, carol.address]), 'NotPermissioned');
      await expectRevert(send(alice, 'revokeAccess', [id, carol.address]), 'NotPermissioned');
      await expectRevert(
        send(alice, 'denyAccess', [id, carol.address, hash('no')]),
        'NotPermissioned',
      );
    });

    it('on a permissioned datanet: request, grant, revoke and deny', async () => {
      const id = await create(alice, PERMISSIONED);
      await send(alice, 'setCurator', [id, bob.address, true]);
      assert.equal(await read('hasAccess', [id, alice.address]), true);
      assert.equal(await read('hasAccess', [id, bob.address]), true);
      assert.equal(await read('hasAccess', [id, carol.address]), false);

      const requested = await send(carol, 'requestAccess', [id, hash('research')]);
      assert.deepEqual(events(requested, 'AccessRequested'), [
        { id, account: carol.address, purposeHash: hash('research') },
      ]);
      assert.equal(await read('hasAccess', [id, carol.address]), false);

      await expectRevert(send(carol, 'grantAccess', [id, carol.address]), 'NotOwner');
      await expectRevert(send(bob, 'grantAccess', [id, carol.address]), 'NotOwner');
      await expectRevert(send(alice, 'grantAccess', [id, zeroAddress]), 'ZeroAddress');
      const granted = await send(alice, 'grantAccess', [id, carol.address]);
      assert.deepEqual(events(granted, 'AccessGranted'), [{ id, account: carol.address }]);
      assert.equal(await read('hasAccess', [id, carol.address]), true);

      await expectRevert(send(carol, 'revokeAccess', [id, carol.address]), 'NotOwner');
      const revoked = await send(alice, 'revokeAccess', [id, carol.address]);
      assert.deepEqual(events(revoked, 'AccessRevoked'), [{ id, account: carol.address }]);
      assert.equal(await read('hasAccess', [id, carol.address]), false);

      await expectRevert(send(bob, 'denyAccess', [id, carol.address, hash('no')]), 'NotOwner');
      const denied = await send(alice, 'denyAccess', [id, carol.address, hash('no')]);
      assert.deepEqual(events(denied, 'AccessDenied'), [
        { id, account: carol.address, reasonHash: hash('no') },
      ]);
      assert.equal(await read('hasAccess', [id, carol.address]), false);
    });

    it('by relayed signatures: the requester asks, the owner grants, revokes and denies', async () => {
      const id = await create(alice, PERMISSIONED);
      const request = await sign(carol, 'RequestAccess', {
        account: carol.address,
        id,
        purposeHash: hash('eval'),
      });
      const requested = await send(relayer, 'requestAccessWithSig', [
        carol.address,
        id,
        hash('eval'),
        request.deadline,
        request.signature,
      ]);
      assert.deepEqual(events(requested, 'AccessRequested'), [
        { id, account: carol.address, purposeHash: hash('eval') },
      ]);

      const deny = await sign(alice, 'DenyAccess', {
        owner: alice.address,
        id,
        account: carol.address,
        reasonHash: hash('not yet'),
      });
      const denied = await send(relayer, 'denyAccessWithSig', [
        alice.address,
        id,
        carol.address,
        hash('not yet'),
        deny.deadline,
        deny.signature,
      ]);
      assert.deepEqual(events(denied, 'AccessDenied'), [
        { id, account: carol.address, reasonHash: hash('not yet') },
      ]);

      const grant = await sign(alice, 'GrantAccess', {
        owner: alice.address,
        id,
        account: carol.address,
      });
      await send(relayer, 'grantAccessWithSig', [
        alice.address,
        id,
        carol.address,
        grant.deadline,
        grant.signature,
      ]);
      assert.equal(await read('hasAccess', [id, carol.address]), true);

      const revoke = await sign(alice, 'RevokeAccess', {
        owner: alice.address,
        id,
        account: carol.address,
      });
      const revoked = await send(relayer, 'revokeAccessWithSig', [
        alice.address,
        id,
        carol.address,
        revoke.deadline,
        revoke.signature,
      ]);
      assert.deepEqual(events(revoked, 'AccessRevoked'), [{ id, account: carol.address }]);
      assert.equal(await read('hasAccess', [id, carol.address]), false);

      // The requester cannot grant itself access with its own signature.
      const self = await sign(carol, 'GrantAccess', {
        owner: carol.address,
        id,
        account: carol.address,
      });
      await expectRevert(
        send(relayer, 'grantAccessWithSig', [
          carol.address,
          id,
          carol.address,
          self.deadline,
          self.signature,
        ]),
        'NotOwner',
      );
    });
  });

  describe('verifyRow', () => {
    const contributors = [alice, bob, carol, devAccount(4), devAccount(5)].map((a) => a.address);
    const rows: [Hex, Address, Hex][] = contributors.map((contributor, i) => [
      hash(`row ${i}`),
      contributor,
      hash(`contribution ${i}`),
    ]);

    it('checks each row of a committed version against its StandardMerkleTree proof', async () => {
      const tree = StandardMerkleTree.of(rows, ['bytes32', 'address', 'bytes32']);
      const id = await create(alice, OPEN);
      await send(alice, 'commitVersion', [id, tree.root, BigInt(rows.length), hash('manifest')]);
      const otherTree = StandardMerkleTree.of(rows.slice(0, 3), ['bytes32', 'address', 'bytes32']);
      await send(alice, 'commitVersion', [id, otherTree.root, 3n, hash('manifest 2')]);

      for (const [i, row] of tree.entries()) {
        const proof = tree.getProof(i);
        assert.equal(await read('verifyRow', [id, 1n, ...row, proof]), true, `row ${i}`);
      }
      const [rowHash, contributor, contributionId] = rows[1]!;
      const proof = tree.getProof(1);
      // A tampered row, contributor or contribution does not verify.
      assert.equal(
        await read('verifyRow', [id, 1n, hash('tampered'), contributor, contributionId, proof]),
        false,
      );
      assert.equal(
        await read('verifyRow', [id, 1n, rowHash, relayer.address, contributionId, proof]),
        false,
      );
      assert.equal(
        await read('verifyRow', [id, 1n, rowHash, contributor, hash('other'), proof]),
        false,
      );
      // Nor does a proof against another version's root, or another row's proof.
      assert.equal(
        await read('verifyRow', [id, 2n, rowHash, contributor, contributionId, proof]),
        false,
      );
      assert.equal(
        await read('verifyRow', [id, 1n, rowHash, contributor, contributionId, tree.getProof(2)]),
        false,
      );
      await expectRevertWith(
        read('verifyRow', [id, 3n, rowHash, contributor, contributionId, proof]),
        'UnknownVersion',
        [id, 3n],
      );
      await expectRevert(
        read('verifyRow', [id, 0n, rowHash, contributor, contributionId, proof]),
        'UnknownVersion',
      );
      await expectRevertWith(
        read('verifyRow', [999n, 1n, rowHash, contributor, contributionId, proof]),
        'UnknownDatanet',
        [999n],
      );
    });

    it('views refuse unknown datanets and versions', async () => {
      const id = await create(alice, OPEN);
      await expectRevert(read('version', [id, 1n]), 'UnknownVersion');
      for (const [functionName, args] of [
        ['datanet', [999n]],
        ['versionCount', [999n]],
        ['version', [999n, 1n]],
        ['isCurator', [999n, alice.address]],
        ['hasAccess', [999n, alice.address]],
        ['datanet', [0n]],
      ] as const) {
        await expectRevert(read(functionName, args), 'UnknownDatanet');
      }
    });
  });

  describe('deployment suite', () => {
    it('deploys the registry with the suite and treats a record without it as stale', async () => {
      const deployment = await deployContracts(conn, { signer: deployer });
      const code = await conn.publicClient.getCode({
        address: deployment.contracts.DatanetRegistry,
      });
      assert.ok(code && code.length > 2);
      assert.equal(await read('datanetCount', [], deployment.contracts.DatanetRegistry), 0n);
      assert.equal(await isDeploymentLive(conn, deployment), true);
      const { DatanetRegistry: _registry, ...older } = deployment.contracts;
      assert.equal(
        await isDeploymentLive(conn, { ...deployment, contracts: older as never }),
        false,
      );
    });
  });
});
