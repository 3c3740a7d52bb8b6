import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import {
  getAddress,
  keccak256,
  parseEventLogs,
  parseSignature,
  parseUnits,
  stringToHex,
  zeroAddress,
  zeroHash,
  type Abi,
  type Address,
  type Hex,
  type TransactionReceipt,
} from 'viem';
import {
  ContributionBondsAbi,
  ContributionBondsBytecode,
  DatanetRegistryBytecode,
  OpenTokenBytecode,
} from '../src/chain/generated/contracts.ts';
import {
  DatanetRegistryAbi,
  OpenTokenAbi,
  contributionBondParameters,
  deployContracts,
  devAccount,
  ensureDeployment,
  writeDeployment,
  type ChainConnection,
} from '../src/chain/index.ts';
import {
  requestUnbondTypedData,
  slashMaliciousTypedData,
} from '../src/datanets/bonds-typed-data.ts';
import { permitTypedData } from '../src/payments/typed-data.ts';
import {
  contractCalls,
  expectDeployRevert,
  expectRevert,
  startTestChain,
} from './helpers/chain.ts';

const admin = devAccount(0); // deploys; holds PARAMS_ROLE
const owner = devAccount(1); // the datanet's owner
const curator = devAccount(2);
const alice = devAccount(3); // a contributor
const bob = devAccount(4); // a contributor who re-uploads alice's row
const mallory = devAccount(5); // a stranger, and the duplicate reporter
const treasury = devAccount(8);
const OPEN = (n: string) => parseUnits(n, 18);
const DELAY = 3600n;
const PER_SLASH = 10n;
const THRESHOLD = 20n;
const REPORTER_BPS = 2_500;
const hash = (text: string) => keccak256(stringToHex(text));
const PARAMS_ROLE = hash('PARAMS_ROLE');

type Row = [Hex, Address, Hex]; // (rowHash, contributor, contributionId), as DatanetRegistry's leaves
const ENCODING = ['bytes32', 'address', 'bytes32'];

describe('ContributionBonds on a local chain', () => {
  let env: Awaited<ReturnType<typeof startTestChain>>;
  let conn: ChainConnection;
  let token: Address;
  let registry: Address;
  let bonds: Address;
  const datanet = 1n;

  // The registry's errors bubble up through the contract's calls to it.
  const bondsAbi = [
    ...ContributionBondsAbi,
    ...DatanetRegistryAbi.filter((item) => item.type === 'error'),
    ...OpenTokenAbi.filter((item) => item.type === 'error'),
  ];
  const abiOf = (address: Address): Abi =>
    (address === bonds
      ? bondsAbi
      : address === registry
        ? DatanetRegistryAbi
        : OpenTokenAbi) as Abi;
  const deploy = async (abi: unknown, bytecode: Hex, args: unknown[] = []) => {
    const hash = await conn.walletFor(admin).deployContract({ abi, bytecode, args } as never);
    const receipt = await conn.publicClient.waitForTransactionReceipt({ hash });
    return getAddress(receipt.contractAddress!);
  };
  const { simulate, send, read } = contractCalls(
    () => conn,
    abiOf,
    () => bonds,
  );
  const balance = (who: Address) => read<bigint>('balanceOf', [who], token);
  const bondOf = (contributionId: Hex, who: Address) =>
    read<{ amount: bigint; unlockAt: bigint }>('bondOf', [datanet, contributionId, who]);
  const events = (receipt: TransactionReceipt, eventName: string) =>
    parseEventLogs({ abi: ContributionBondsAbi, logs: receipt.logs, eventName } as never).map(
      (log) => (log as unknown as { args: Record<string, unknown> }).args,
    );
  const warp = async (seconds: bigint) => {
    await conn.publicClient.request({
      method: 'evm_increaseTime' as never,
      params: [Number(seconds)] as never,
    });
    await conn.publicClient.request({ method: 'evm_mine' as never, params: [] as never });
  };

  // Version 1 holds alice's and carol's rows; version 2 adds bob's contribution, whose first row
  // is alice's row again (a re-upload) and whose second is new.
  const aliceContribution = hash('contribution alice');
  const bobContribution = hash('contribution bob');
  const dupRow = hash('row: the sky is blue');
  const v1Rows: Row[] = [
    [dupRow, alice.address, aliceContribution],
    [hash('row: water is wet'), alice.address, aliceContribution],
    [hash('row: grass is green'), devAccount(6).address, hash('contribution carol')],
  ];
  const v2Rows: Row[] = [
    ...v1Rows,
    [dupRow, bob.address, bobContribution],
    [hash('row: fire is hot'), bob.address, bobContribution],
  ];
  const v1 = StandardMerkleTree.of(v1Rows, ENCODING);
  const v2 = StandardMerkleTree.of(v2Rows, ENCODING);
  const rowProof = (tree: StandardMerkleTree<Row>, version: bigint, index: number) => {
    const [, contributor, contributionId] = tree.at(index)!;
    return { version, contributor, contributionId, proof: tree.getProof(index) as Hex[] };
  };
  const bobDup = () => rowProof(v2, 2n, 3);
  const aliceOriginal = () => rowProof(v1, 1n, 0);

  before(async () => {
    env = await startTestChain();
    conn = env.conn;
    token = await deploy(OpenTokenAbi, OpenTokenBytecode, [
      admin.address,
      OPEN('1000000'),
      zeroAddress,
      zeroAddress,
    ]);
    registry = await deploy(DatanetRegistryAbi, DatanetRegistryBytecode);
    bonds = await deploy(ContributionBondsAbi, ContributionBondsBytecode, [
      token,
      registry,
      admin.address,
      treasury.address,
      PER_SLASH,
      THRESHOLD,
      REPORTER_BPS,
      DELAY,
    ]);
    await send(owner, 'createDatanet', [hash('metadata'), 0], registry);
    await send(owner, 'setCurator', [datanet, curator.address, true], registry);
    await send(owner, 'commitVersion', [datanet, v1.root, 3n, hash('manifest 1')], registry);
    await send(curator, 'commitVersion', [datanet, v2.root, 5n, hash('manifest 2')], registry);
    for (const who of [alice, bob]) {
      await send(admin, 'transfer', [who.address, OPEN('100')], token);
      await send(who, 'approve', [bonds, OPEN('100')], token);
    }
  });
  after(async () => env?.close());

  it('is deployed with its parameters, and refuses bad ones', async () => {
    assert.equal(await read('token'), token);
    assert.equal(await read('registry'), registry);
    assert.equal(await read('treasury'), treasury.address);
    assert.equal(await read('penaltyPerSlash'), PER_SLASH);
    assert.equal(await read('penaltyThreshold'), THRESHOLD);
    assert.equal(await read('reporterShareBps'), REPORTER_BPS);
    assert.equal(await read('unbondDelay'), DELAY);
    assert.equal(await read('hasRole', [PARAMS_ROLE, admin.address]), true);
    const contract = { abi: ContributionBondsAbi as Abi, bytecode: ContributionBondsBytecode };
    const args = [token, registry, admin.address, treasury.address, 1n, 1n, 0, 1n];
    for (const [index, value, error] of [
      [1, zeroAddress, 'ZeroAddress'],
      [3, zeroAddress, 'ZeroAddress'],
      [5, 0n, 'InvalidParameters'], // a zero threshold would cut everyone
      [6, 10_001, 'InvalidParameters'],
      [7, 0n, 'InvalidParameters'],
    ] as const) {
      await expectDeployRevert(
        conn,
        admin.address,
        { ...contract, args: args.with(index, value) },
        error,
      );
    }
  });

  it('bonds, and unbonds only after a requested delay', async () => {
    const id = hash('contribution alice, later withdrawn');
    const before = await balance(alice.address);
    await expectRevert(simulate(alice, 'bond', [datanet, id, 0n]), 'ZeroAmount');
    await expectRevert(simulate(alice, 'requestUnbond', [datanet, id]), 'NotBonded');
    const bonded = await send(alice, 'bond', [datanet, id, OPEN('3')]);
    await send(alice, 'bond', [datanet, id, OPEN('2')]);
    assert.deepEqual(events(bonded, 'Bonded')[0], {
      datanetId: datanet,
      contributionId: id,
      contributor: alice.address,
      amount: OPEN('3'),
      bond: OPEN('3'),
    });
    assert.equal((await bondOf(id, alice.address)).amount, OPEN('5'));
    assert.equal(await balance(bonds), OPEN('5'));

    await expectRevert(
      simulate(alice, 'unbond', [datanet, id, alice.address]),
      'UnbondNotRequested',
    );
    await send(alice, 'requestUnbond', [datanet, id]);
    const { unlockAt } = await bondOf(id, alice.address);
    const now = (await conn.publicClient.getBlock()).timestamp;
    assert.equal(unlockAt, now + DELAY);
    await expectRevert(simulate(alice, 'unbond', [datanet, id, alice.address]), 'BondLocked');
    // Adding to the bond cancels the request: the delay starts again from a new request.
    await send(alice, 'bond', [datanet, id, OPEN('1')]);
    assert.equal((await bondOf(id, alice.address)).unlockAt, 0n);
    await send(alice, 'requestUnbond', [datanet, id]);
    await warp(DELAY - 5n);
    await expectRevert(simulate(alice, 'unbond', [datanet, id, alice.address]), 'BondLocked');
    await warp(5n);
    await send(alice, 'unbond', [datanet, id, alice.address]);
    assert.equal(await balance(alice.address), before);
    assert.equal((await bondOf(id, alice.address)).amount, 0n);
    await expectRevert(simulate(alice, 'unbond', [datanet, id, alice.address]), 'NotBonded');
  });

  it('lets only the owner or a curator slash a bonded contribution as malicious', async () => {
    const id = hash('contribution alice, spam');
    const reason = hash('spam rows');
    await expectRevert(
      simulate(curator, 'slashMalicious', [datanet, id, alice.address, reason]),
      'NotBonded', // no bond: the curator cannot penalize an account that claimed nothing
    );
    await send(alice, 'bond', [datanet, id, OPEN('4')]);
    await send(alice, 'requestUnbond', [datanet, id]); // a pending unbond does not escape a slash
    for (const who of [mallory, alice]) {
      await expectRevert(
        simulate(who, 'slashMalicious', [datanet, id, alice.address, reason]),
        'NotOwnerOrCurator',
      );
    }
    await expectRevert(
      simulate(curator, 'slashMalicious', [2n, id, alice.address, reason]),
      'UnknownDatanet',
    );
    const treasuryBefore = await balance(treasury.address);
    const receipt = await send(curator, 'slashMalicious', [datanet, id, alice.address, reason]);
    assert.deepEqual(events(receipt, 'SlashedMalicious')[0], {
      datanetId: datanet,
      contributionId: id,
      contributor: alice.address,
      curator: curator.address,
      reasonHash: reason,
      slashed: OPEN('4'),
      penaltyScore: PER_SLASH,
    });
    // The whole bond goes to the treasury: slashing never pays the one who decides it.
    assert.equal(await balance(treasury.address), treasuryBefore + OPEN('4'));
    assert.equal(await read('penaltyScore', [alice.address]), PER_SLASH);
    assert.equal(await read('slashed', [datanet, id, alice.address]), true);
    await expectRevert(
      simulate(owner, 'slashMalicious', [datanet, id, alice.address, reason]),
      'NotBonded',
    );
    await expectRevert(simulate(alice, 'bond', [datanet, id, OPEN('1')]), 'AlreadySlashed');
    await expectRevert(simulate(alice, 'unbond', [datanet, id, alice.address]), 'NotBonded');
  });

  it('slashes a re-uploaded row proven against an earlier version, once', async () => {
    await send(bob, 'bond', [datanet, bobContribution, OPEN('8')]);
    // Forged or mismatched proofs are refused.
    const forged = { ...bobDup(), proof: rowProof(v2, 2n, 4).proof };
    await expectRevert(
      simulate(mallory, 'slashDuplicate', [datanet, dupRow, forged, aliceOriginal()]),
      'InvalidRowProof',
    );
    await expectRevert(
      simulate(mallory, 'slashDuplicate', [
        datanet,
        hash('row: fire is hot'), // bob's own new row: not in version 1
        rowProof(v2, 2n, 4),
        { ...aliceOriginal(), proof: v1.getProof(1) as Hex[] },
      ]),
      'InvalidRowProof',
    );
    // The original cannot be proven a duplicate of the re-upload: bob's row is not in version 1.
    await expectRevert(
      simulate(mallory, 'slashDuplicate', [
        datanet,
        dupRow,
        rowProof(v2, 2n, 0),
        { ...bobDup(), version: 1n },
      ]),
      'InvalidRowProof',
    );
    await expectRevert(
      simulate(mallory, 'slashDuplicate', [datanet, dupRow, aliceOriginal(), bobDup()]),
      'NotLater',
    );
    await expectRevert(
      simulate(mallory, 'slashDuplicate', [datanet, dupRow, rowProof(v2, 2n, 0), aliceOriginal()]),
      'SameContribution', // a row carried into the next version is no re-upload
    );

    const treasuryBefore = await balance(treasury.address);
    const receipt = await send(mallory, 'slashDuplicate', [
      datanet,
      dupRow,
      bobDup(),
      aliceOriginal(),
    ]);
    const toReporter = (OPEN('8') * BigInt(REPORTER_BPS)) / 10_000n;
    assert.deepEqual(events(receipt, 'SlashedDuplicate')[0], {
      datanetId: datanet,
      contributionId: bobContribution,
      contributor: bob.address,
      reporter: mallory.address,
      rowHash: dupRow,
      earlierVersion: 1n,
      earlierContributionId: aliceContribution,
      slashed: OPEN('8'),
      toReporter,
      penaltyScore: PER_SLASH,
    });
    assert.equal(await balance(mallory.address), toReporter);
    assert.equal(await balance(treasury.address), treasuryBefore + OPEN('8') - toReporter);
    assert.equal(await balance(bonds), 0n);
    assert.equal(await read('penaltyScore', [bob.address]), PER_SLASH);
    await expectRevert(
      simulate(mallory, 'slashDuplicate', [datanet, dupRow, bobDup(), aliceOriginal()]),
      'AlreadySlashed',
    );
  });

  it('cuts rewards once the score reaches the threshold, and penalizes unbonded duplicates', async () => {
    assert.equal(await read('rewardsCut', [alice.address]), false); // 10 < 20
    assert.equal(await read('rewardsCut', [mallory.address]), false);
    // Alice re-uploads her own row in a third version under a new contribution, without a bond:
    // the proof still costs her the penalty.
    const again = hash('contribution alice, again');
    const v3 = StandardMerkleTree.of<Row>([...v2Rows, [dupRow, alice.address, again]], ENCODING);
    await send(curator, 'commitVersion', [datanet, v3.root, 6n, hash('manifest 3')], registry);
    const receipt = await send(mallory, 'slashDuplicate', [
      datanet,
      dupRow,
      rowProof(v3, 3n, 5),
      aliceOriginal(),
    ]);
    assert.equal(events(receipt, 'SlashedDuplicate')[0]!.slashed, 0n);
    assert.equal(await read('penaltyScore', [alice.address]), 2n * PER_SLASH);
    assert.equal(await read('rewardsCut', [alice.address]), true);
    assert.equal(await read('rewardsCut', [bob.address]), false);
  });

  it('relays a permit bond, a signed unbond request and a signed slash, each signature once', async () => {
    const id = hash('contribution bob, relayed');
    const chainId = conn.chain.id;
    const deadline = (await conn.publicClient.getBlock()).timestamp + 600n;
    const nonceOf = (who: Address) => read<bigint>('nonces', [who]);
    const tokenNonce = (who: Address) => read<bigint>('nonces', [who], token);
    await send(bob, 'approve', [bonds, 0n], token); // only the permit may allow the transfer
    const permit = async (value: bigint, signer = bob) =>
      parseSignature(
        await signer.signTypedData(
          permitTypedData({
            chainId,
            token,
            escrow: bonds,
            owner: bob.address,
            value,
            nonce: await tokenNonce(bob.address),
            deadline,
          }),
        ),
      );
    const bondArgs = (sig: { v?: bigint; r: Hex; s: Hex }, value: bigint) =>
      [bob.address, datanet, id, value, deadline, Number(sig.v), sig.r, sig.s] as const;
    // A permit signed by someone else allows nothing: the transfer fails on the allowance.
    await expectRevert(
      simulate(mallory, 'bondWithPermit', bondArgs(await permit(OPEN('2'), mallory), OPEN('2'))),
      'ERC20InsufficientAllowance',
    );
    const good = await permit(OPEN('2'));
    // Someone submits the permit first: the relayed bond still goes through on its allowance.
    await send(
      mallory,
      'permit',
      [bob.address, bonds, OPEN('2'), deadline, Number(good.v), good.r, good.s],
      token,
    );
    await send(mallory, 'bondWithPermit', bondArgs(good, OPEN('2')));
    assert.equal((await bondOf(id, bob.address)).amount, OPEN('2'));
    await expectRevert(
      simulate(mallory, 'bondWithPermit', bondArgs(good, OPEN('2'))), // replayed: allowance used
      'ERC20InsufficientAllowance',
    );

    const unbondSig = async (signer: typeof bob, nonce: bigint, until = deadline) =>
      signer.signTypedData(
        requestUnbondTypedData(
          { chainId, bonds, nonce, deadline: until },
          { contributor: bob.address, datanetId: datanet, contributionId: id },
        ),
      );
    const nonce = await nonceOf(bob.address);
    await expectRevert(
      simulate(mallory, 'requestUnbondWithSig', [
        bob.address,
        datanet,
        id,
        deadline,
        await unbondSig(mallory, nonce),
      ]),
      'InvalidSignature',
    );
    const past = (await conn.publicClient.getBlock()).timestamp - 1n;
    await expectRevert(
      simulate(mallory, 'requestUnbondWithSig', [
        bob.address,
        datanet,
        id,
        past,
        await unbondSig(bob, nonce, past),
      ]),
      'ExpiredSignature',
    );
    const signed = await unbondSig(bob, nonce);
    await send(mallory, 'requestUnbondWithSig', [bob.address, datanet, id, deadline, signed]);
    assert.notEqual((await bondOf(id, bob.address)).unlockAt, 0n);
    assert.equal(await nonceOf(bob.address), nonce + 1n);
    await expectRevert(
      simulate(mallory, 'requestUnbondWithSig', [bob.address, datanet, id, deadline, signed]),
      'InvalidSignature', // the nonce moved on
    );
    await expectRevert(simulate(mallory, 'unbond', [datanet, id, bob.address]), 'BondLocked');

    const reason = hash('relayed spam');
    const slashSig = async (signer: typeof curator, as: Address) =>
      signer.signTypedData(
        slashMaliciousTypedData(
          { chainId, bonds, nonce: await nonceOf(as), deadline },
          {
            curator: as,
            datanetId: datanet,
            contributionId: id,
            contributor: bob.address,
            reasonHash: reason,
          },
        ),
      );
    const slashArgs = (as: Address, signature: Hex) =>
      [as, datanet, id, bob.address, reason, deadline, signature] as const;
    await expectRevert(
      simulate(
        admin,
        'slashMaliciousWithSig',
        slashArgs(curator.address, await slashSig(mallory, curator.address)),
      ),
      'InvalidSignature',
    );
    await expectRevert(
      simulate(
        admin,
        'slashMaliciousWithSig',
        slashArgs(mallory.address, await slashSig(mallory, mallory.address)),
      ),
      'NotOwnerOrCurator', // a valid signature, but not a curator's
    );
    const bySig = await slashSig(curator, curator.address);
    const receipt = await send(mallory, 'slashMaliciousWithSig', slashArgs(curator.address, bySig));
    assert.equal(events(receipt, 'SlashedMalicious')[0]!.curator, curator.address);
    assert.equal(await read('slashed', [datanet, id, bob.address]), true);
    await expectRevert(
      simulate(mallory, 'slashMaliciousWithSig', slashArgs(curator.address, bySig)),
      'InvalidSignature',
    );
    await send(bob, 'approve', [bonds, OPEN('100')], token);
  });

  it('pays an unlocked bond to its contributor whoever calls unbond', async () => {
    const id = hash('contribution alice, unbonded by a stranger');
    await send(alice, 'bond', [datanet, id, OPEN('1')]);
    await send(alice, 'requestUnbond', [datanet, id]);
    await warp(DELAY);
    const [aliceBefore, malloryBefore] = [
      await balance(alice.address),
      await balance(mallory.address),
    ];
    await send(mallory, 'unbond', [datanet, id, alice.address]);
    assert.equal(await balance(alice.address), aliceBefore + OPEN('1'));
    assert.equal(await balance(mallory.address), malloryBefore);
  });

  it('lets only PARAMS_ROLE change the parameters', async () => {
    const next = [PER_SLASH, 10n, 5_000, DELAY, treasury.address] as const;
    await expectRevert(
      simulate(mallory, 'setParameters', [...next]),
      'AccessControlUnauthorizedAccount',
    );
    await expectRevert(
      simulate(admin, 'setParameters', [PER_SLASH, 10n, 10_001, DELAY, treasury.address]),
      'InvalidParameters',
    );
    await send(admin, 'grantRole', [PARAMS_ROLE, mallory.address]);
    await send(mallory, 'setParameters', [...next]);
    await send(admin, 'revokeRole', [PARAMS_ROLE, mallory.address]);
    assert.equal(await read('penaltyThreshold'), 10n);
    assert.equal(await read('reporterShareBps'), 5_000);
    // A lower threshold applies at once to existing scores.
    assert.equal(await read('rewardsCut', [bob.address]), true);
    await expectRevert(
      simulate(mallory, 'setParameters', [...next]),
      'AccessControlUnauthorizedAccount',
    );
  });

  it('is deployed with the suite, and added to a record written before it', async () => {
    const suite = await deployContracts(conn, { signer: admin, treasury: treasury.address });
    const deployed = suite.contracts.ContributionBonds!;
    const at = (address: Address, functionName: string, args: readonly unknown[] = []) =>
      conn.publicClient.readContract({
        address,
        abi: ContributionBondsAbi,
        functionName,
        args,
      } as never) as Promise<unknown>;
    const params = contributionBondParameters(conn.chain.id);
    assert.deepEqual(
      await Promise.all(
        ['token', 'registry', 'treasury', 'penaltyPerSlash', 'penaltyThreshold'].map((f) =>
          at(deployed, f),
        ),
      ),
      [
        suite.contracts.OpenToken,
        suite.contracts.DatanetRegistry,
        treasury.address,
        params.penaltyPerSlash,
        params.penaltyThreshold,
      ],
    );
    assert.equal(await at(deployed, 'reporterShareBps'), params.reporterShareBps);
    assert.equal(await at(deployed, 'unbondDelay'), params.unbondDelaySeconds);
    // The penalties are governance's: the Timelock holds both roles, the deployer neither.
    const timelock = suite.contracts.OpenLedgerTimelock!;
    for (const role of [PARAMS_ROLE, zeroHash]) {
      assert.equal(await at(deployed, 'hasRole', [role, timelock]), true);
      assert.equal(await at(deployed, 'hasRole', [role, admin.address]), false);
    }

    // A record from before the bonds: the deployer adds them next to the live registries.
    const { ContributionBonds: _, ...older } = suite.contracts;
    await writeDeployment(env.dataDir, { ...suite, contracts: older });
    const elsewhere = await ensureDeployment(conn, { dataDir: env.dataDir, signer: mallory });
    assert.equal(elsewhere.deployment.contracts.ContributionBonds, undefined, 'not the admin');
    const added = await ensureDeployment(conn, { dataDir: env.dataDir, signer: admin });
    assert.equal(added.deployedNow, false);
    const { ContributionBonds: bondsNow, ...rest } = added.deployment.contracts;
    assert.deepEqual(rest, older);
    assert.match(bondsNow!, /^0x[0-9a-fA-F]{40}$/);
    assert.notEqual(bondsNow, deployed);
    assert.equal(await at(bondsNow!, 'registry'), suite.contracts.DatanetRegistry);
    assert.equal(await at(bondsNow!, 'treasury'), treasury.address);
  });
});
