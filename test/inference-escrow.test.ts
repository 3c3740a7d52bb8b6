import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  getAddress,
  keccak256,
  parseEventLogs,
  parseSignature,
  parseUnits,
  stringToHex,
  zeroAddress,
  type Abi,
  type Address,
  type Hex,
  type LocalAccount,
  type TransactionReceipt,
} from 'viem';
import { compileContracts } from '../src/chain/compile.ts';
import { InferenceEscrowBytecode, OpenTokenBytecode } from '../src/chain/generated/contracts.ts';
import {
  InferenceEscrowAbi,
  OpenTokenAbi,
  devAccount,
  type ChainConnection,
} from '../src/chain/index.ts';
import { permitTypedData, requestWithdrawalTypedData } from '../src/payments/typed-data.ts';
import { expectDeployRevert, expectRevert, startTestChain } from './helpers/chain.ts';

const admin = devAccount(0);
const alice = devAccount(1); // a caller
const bob = devAccount(2); // a caller
const mallory = devAccount(3); // a stranger
const settler = devAccount(9); // the node
const OPEN = (n: string) => parseUnits(n, 18);
const DELAY = 600n;
const EPOCH = 3600n;
const SETTLER_ROLE = keccak256(stringToHex('SETTLER_ROLE'));
const DISTRIBUTOR_ROLE = keccak256(stringToHex('DISTRIBUTOR_ROLE'));
const root = (label: string) => keccak256(stringToHex(label));

describe('InferenceEscrow on a local chain', () => {
  let env: Awaited<ReturnType<typeof startTestChain>>;
  let conn: ChainConnection;
  let token: Address;
  let escrow: Address;

  const deploy = async (abi: unknown, bytecode: Hex, args: unknown[] = []) => {
    const hash = await conn.walletFor(admin).deployContract({ abi, bytecode, args } as never);
    const receipt = await conn.publicClient.waitForTransactionReceipt({ hash });
    return getAddress(receipt.contractAddress!);
  };
  const send = async (
    account: LocalAccount,
    functionName: string,
    args: readonly unknown[],
    address: Address = escrow,
    abi: unknown = InferenceEscrowAbi,
  ): Promise<TransactionReceipt> => {
    const { request } = await conn.publicClient.simulateContract({
      address,
      abi,
      functionName,
      args,
      account,
    } as never);
    const hash = await conn.walletFor(account).writeContract(request as never);
    const receipt = await conn.publicClient.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, 'success');
    return receipt;
  };
  const read = <T>(functionName: string, args: readonly unknown[] = [], address = escrow) =>
    conn.publicClient.readContract({
      address,
      abi: address === escrow ? InferenceEscrowAbi : OpenTokenAbi,
      functionName,
      args,
    } as never) as Promise<T>;
  const events = (receipt: TransactionReceipt, eventName: string) =>
    parseEventLogs({ abi: InferenceEscrowAbi, logs: receipt.logs, eventName } as never).map(
      (log) => (log as unknown as { args: Record<string, unknown> }).args,
    );
  const warp = async (seconds: bigint) => {
    await conn.publicClient.request({
      method: 'evm_increaseTime' as never,
      params: [Number(seconds)] as never,
    });
    await conn.publicClient.request({ method: 'evm_mine' as never, params: [] as never });
  };
  const deposit = async (who: LocalAccount, amount: bigint) => {
    await send(who, 'approve', [escrow, amount], token, OpenTokenAbi);
    return send(who, 'deposit', [amount]);
  };

  before(async () => {
    env = await startTestChain();
    conn = env.conn;
    token = await deploy(OpenTokenAbi, OpenTokenBytecode, [
      admin.address,
      OPEN('1000000'),
      zeroAddress,
      zeroAddress,
    ]);
    escrow = await deploy(InferenceEscrowAbi, InferenceEscrowBytecode, [
      token,
      admin.address,
      DELAY,
      EPOCH,
    ]);
    await send(admin, 'grantRole', [SETTLER_ROLE, settler.address]);
    // Start at the beginning of an epoch, so that every batch below (less than an hour of chain
    // time apart) lands in the same one.
    const now = (await conn.publicClient.getBlock()).timestamp;
    await warp(EPOCH - (now % EPOCH) + 1n);
    for (const who of [alice, bob, mallory]) {
      await send(admin, 'transfer', [who.address, OPEN('1000')], token, OpenTokenAbi);
    }
  });
  after(async () => env?.close());

  it('refuses a zero token, zero admin or zero parameters at deployment', async () => {
    const contract = { abi: InferenceEscrowAbi as Abi, bytecode: InferenceEscrowBytecode };
    await expectDeployRevert(
      conn,
      admin.address,
      { ...contract, args: [zeroAddress, admin.address, DELAY, EPOCH] },
      'ZeroAddress',
    );
    await expectDeployRevert(
      conn,
      admin.address,
      { ...contract, args: [token, admin.address, 0n, EPOCH] },
      'InvalidParameters',
    );
  });

  it('credits deposits, by approve + deposit and by a relayed permit', async () => {
    const receipt = await deposit(alice, OPEN('100'));
    assert.deepEqual(events(receipt, 'Deposited'), [
      { caller: alice.address, from: alice.address, amount: OPEN('100') },
    ]);
    assert.equal(await read('balanceOf', [alice.address]), OPEN('100'));

    // Bob signs a permit; the node (settler account, paying gas) submits it.
    const deadline = (await conn.publicClient.getBlock()).timestamp + 3600n;
    const nonce = await read<bigint>('nonces', [bob.address], token);
    const signature = await bob.signTypedData(
      permitTypedData({
        chainId: conn.chain.id,
        token,
        escrow,
        owner: bob.address,
        value: OPEN('50'),
        nonce,
        deadline,
      }),
    );
    const { v, r, s } = parseSignature(signature);
    await send(settler, 'depositWithPermit', [bob.address, OPEN('50'), deadline, Number(v), r, s]);
    assert.equal(await read('balanceOf', [bob.address]), OPEN('50'));
    assert.equal(await read('totalBalances'), OPEN('150'));
    assert.equal(await read('balanceOf', [escrow], token), OPEN('150'));

    // Replaying the used permit: the permit fails (nonce used) and no allowance is left, so the
    // transfer reverts (the token's ERC20InsufficientAllowance); nobody can move Bob's tokens
    // twice with one signature.
    await assert.rejects(
      conn.publicClient.simulateContract({
        address: escrow,
        abi: [...InferenceEscrowAbi, ...OpenTokenAbi],
        functionName: 'depositWithPermit',
        args: [bob.address, OPEN('50'), deadline, Number(v), r, s],
        account: mallory,
      }),
      /ERC20InsufficientAllowance/,
    );
    await expectRevert(
      conn.publicClient.simulateContract({
        address: escrow,
        abi: InferenceEscrowAbi,
        functionName: 'deposit',
        args: [0n],
        account: alice,
      }),
      'ZeroAmount',
    );
  });

  it('lets only a settler charge, once per receipts root, into the current epoch', async () => {
    const args = [root('batch 1'), [alice.address, bob.address], [OPEN('3'), OPEN('2')]] as const;
    await expectRevert(
      conn.publicClient.simulateContract({
        address: escrow,
        abi: InferenceEscrowAbi,
        functionName: 'charge',
        args,
        account: mallory,
      }),
      'AccessControlUnauthorizedAccount',
    );
    const receipt = await send(settler, 'charge', args);
    const epoch = await read<bigint>('currentEpoch');
    assert.deepEqual(events(receipt, 'BatchSettled'), [
      {
        receiptsRoot: root('batch 1'),
        settler: settler.address,
        epoch,
        callers: 2n,
        total: OPEN('5'),
      },
    ]);
    assert.equal(events(receipt, 'Charged').length, 2);
    assert.equal(await read('balanceOf', [alice.address]), OPEN('97'));
    assert.equal(await read('balanceOf', [bob.address]), OPEN('48'));
    assert.equal(await read('epochFees', [epoch]), OPEN('5'));
    assert.equal(await read('totalBalances'), OPEN('145'));
    // The tokens stay in the escrow: balances + fees account for every wei it holds.
    assert.equal(await read('balanceOf', [escrow], token), OPEN('150'));

    // Replay of the same batch.
    await expectRevert(
      conn.publicClient.simulateContract({
        address: escrow,
        abi: InferenceEscrowAbi,
        functionName: 'charge',
        args,
        account: settler,
      }),
      'BatchAlreadySettled',
    );
    // Malformed batches.
    for (const bad of [
      [root('x'), [alice.address], []],
      [`0x${'00'.repeat(32)}`, [alice.address], [1n]],
      [root('y'), [], []],
    ] as const) {
      await expectRevert(
        conn.publicClient.simulateContract({
          address: escrow,
          abi: InferenceEscrowAbi,
          functionName: 'charge',
          args: bad as never,
          account: settler,
        }),
        'InvalidBatch',
      );
    }
  });

  it('caps an overdrawn charge at the balance and says so, without blocking the batch', async () => {
    const receipt = await send(settler, 'charge', [
      root('batch 2'),
      [mallory.address, alice.address],
      [OPEN('1'), OPEN('7')],
    ]);
    assert.deepEqual(events(receipt, 'ChargeShortfall'), [
      { receiptsRoot: root('batch 2'), caller: mallory.address, owed: OPEN('1'), charged: 0n },
    ]);
    assert.equal(await read('balanceOf', [alice.address]), OPEN('90'));
    assert.equal(await read('balanceOf', [mallory.address]), 0n);
  });

  it('delays withdrawals, lets charges reach the pending amount, and pays what is left', async () => {
    await expectRevert(
      conn.publicClient.simulateContract({
        address: escrow,
        abi: InferenceEscrowAbi,
        functionName: 'requestWithdrawal',
        args: [OPEN('91')],
        account: alice,
      }),
      'InsufficientBalance',
    );
    await send(alice, 'requestWithdrawal', [OPEN('90')]);
    assert.equal(await read('available', [alice.address]), 0n);
    const [amount, unlockAt] = await read<[bigint, bigint]>('withdrawalOf', [alice.address]);
    assert.equal(amount, OPEN('90'));
    // Withdrawing during the delay.
    await expectRevert(
      conn.publicClient.simulateContract({
        address: escrow,
        abi: InferenceEscrowAbi,
        functionName: 'withdraw',
        args: [alice.address],
        account: alice,
      }),
      'WithdrawalLocked',
    );
    // The node settles calls served before the request, during the delay.
    await send(settler, 'charge', [root('batch 3'), [alice.address], [OPEN('4')]]);
    await warp(DELAY);
    assert.ok((await conn.publicClient.getBlock()).timestamp >= unlockAt);
    const before = await read<bigint>('balanceOf', [alice.address], token);
    // Anyone may trigger it; the money goes to Alice.
    const receipt = await send(mallory, 'withdraw', [alice.address]);
    assert.deepEqual(events(receipt, 'Withdrawn'), [{ caller: alice.address, amount: OPEN('86') }]);
    assert.equal((await read<bigint>('balanceOf', [alice.address], token)) - before, OPEN('86'));
    assert.equal(await read('balanceOf', [alice.address]), 0n);
    await expectRevert(
      conn.publicClient.simulateContract({
        address: escrow,
        abi: InferenceEscrowAbi,
        functionName: 'withdraw',
        args: [alice.address],
        account: alice,
      }),
      'NoWithdrawalRequested',
    );
  });

  it('relays a signed withdrawal request once (nonce), and rejects a forged one', async () => {
    const deadline = (await conn.publicClient.getBlock()).timestamp + 3600n;
    const nonce = await read<bigint>('nonces', [bob.address]);
    const typed = requestWithdrawalTypedData({
      chainId: conn.chain.id,
      escrow,
      owner: bob.address,
      amount: OPEN('10'),
      nonce,
      deadline,
    });
    const forged = await mallory.signTypedData(typed);
    await expectRevert(
      conn.publicClient.simulateContract({
        address: escrow,
        abi: InferenceEscrowAbi,
        functionName: 'requestWithdrawalWithSig',
        args: [bob.address, OPEN('10'), deadline, forged],
        account: settler,
      }),
      'InvalidSignature',
    );
    const signature = await bob.signTypedData(typed);
    await send(settler, 'requestWithdrawalWithSig', [bob.address, OPEN('10'), deadline, signature]);
    const [amount] = await read<[bigint, bigint]>('withdrawalOf', [bob.address]);
    assert.equal(amount, OPEN('10'));
    assert.equal(await read('available', [bob.address]), OPEN('38'));
    await expectRevert(
      conn.publicClient.simulateContract({
        address: escrow,
        abi: InferenceEscrowAbi,
        functionName: 'requestWithdrawalWithSig',
        args: [bob.address, OPEN('10'), deadline, signature],
        account: settler,
      }),
      'InvalidSignature',
    );
    // Cancelling.
    await send(bob, 'requestWithdrawal', [0n]);
    assert.equal(await read('available', [bob.address]), OPEN('48'));
  });

  it('releases only closed epochs, only to a distributor, never more than they hold', async () => {
    const epoch = await read<bigint>('currentEpoch');
    const fees = await read<bigint>('epochFees', [epoch]);
    assert.equal(fees, OPEN('16')); // batches 1 (5), 2 (7) and 3 (4)
    await send(admin, 'grantRole', [DISTRIBUTOR_ROLE, admin.address]);
    const release = (account: LocalAccount, e: bigint, amount: bigint) =>
      conn.publicClient.simulateContract({
        address: escrow,
        abi: InferenceEscrowAbi,
        functionName: 'releaseEpochFees',
        args: [e, mallory.address, amount],
        account,
      });
    await expectRevert(release(mallory, epoch, 1n), 'AccessControlUnauthorizedAccount');
    await expectRevert(release(admin, epoch, 1n), 'EpochNotClosed');
    await warp(EPOCH);
    await expectRevert(release(admin, epoch, fees + 1n), 'ExceedsEpochFees');
    await send(admin, 'releaseEpochFees', [epoch, mallory.address, fees]);
    assert.equal(await read('epochReleased', [epoch]), fees);
    await expectRevert(release(admin, epoch, 1n), 'ExceedsEpochFees');
  });

  it('changes the epoch length at the next boundary, numbering on, by PARAMS_ROLE only', async () => {
    const PARAMS_ROLE = keccak256(stringToHex('PARAMS_ROLE'));
    const set = (account: LocalAccount, length: bigint) =>
      conn.publicClient.simulateContract({
        address: escrow,
        abi: InferenceEscrowAbi,
        functionName: 'setEpochLength',
        args: [length],
        account,
      });
    await expectRevert(set(admin, EPOCH * 2n), 'AccessControlUnauthorizedAccount');
    await send(admin, 'grantRole', [PARAMS_ROLE, admin.address]);
    await expectRevert(set(admin, 0n), 'InvalidParameters');
    const now = async () => (await conn.publicClient.getBlock()).timestamp;
    const before = await read<bigint>('currentEpoch');
    const boundary = (before + 1n) * EPOCH; // where the current epoch was to end
    const scheduled = await send(admin, 'setEpochLength', [EPOCH * 2n]);
    assert.deepEqual(events(scheduled, 'EpochLengthScheduled')[0], {
      fromEpoch: before + 1n,
      start: boundary,
      length: EPOCH * 2n,
    });
    // Until the boundary nothing changes: the same epoch, the old length.
    assert.equal(await read('currentEpoch'), before);
    assert.equal(await read('epochLength'), EPOCH);
    const [, next] =
      await read<[unknown, { start: bigint; length: bigint; firstEpoch: bigint }]>('epochSchedule');
    assert.deepEqual(next, { start: boundary, length: EPOCH * 2n, firstEpoch: before + 1n });
    await warp(boundary - (await now()));
    assert.equal(await read('currentEpoch'), before + 1n);
    assert.equal(await read('epochLength'), EPOCH * 2n);
    // The new epochs last twice as long, and the numbers go on.
    await warp(EPOCH + 5n);
    assert.equal(await read('currentEpoch'), before + 1n);
    await warp(EPOCH);
    assert.equal(await read('currentEpoch'), before + 2n);
    await send(admin, 'revokeRole', [PARAMS_ROLE, admin.address]);
  });

  it('cannot be re-entered through the token', async () => {
    // A token that calls back into the escrow from `transfer`: the guard must stop a second
    // withdrawal inside the first (the state is also cleared before the transfer).
    const dir = await mkdtemp(path.join(tmpdir(), 'openledger-reentrant-'));
    try {
      await writeFile(
        path.join(dir, 'ReentrantToken.sol'),
        `// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
interface IEscrow { function withdraw(address owner) external returns (uint256); }
contract ReentrantToken is ERC20 {
    address public target;
    address public victim;
    constructor() ERC20("Evil", "EVIL") { _mint(msg.sender, 1e24); }
    function arm(address target_, address victim_) external { target = target_; victim = victim_; }
    function transfer(address to, uint256 value) public override returns (bool) {
        bool ok = super.transfer(to, value);
        if (target != address(0) && msg.sender == target) IEscrow(target).withdraw(victim);
        return ok;
    }
}
`,
      );
      const compiled = await compileContracts(dir);
      const evil = compiled.contracts.ReentrantToken!;
      const evilToken = await deploy(evil.abi, evil.bytecode);
      const evilEscrow = await deploy(InferenceEscrowAbi, InferenceEscrowBytecode, [
        evilToken,
        admin.address,
        1n,
        EPOCH,
      ]);
      await send(admin, 'approve', [evilEscrow, OPEN('10')], evilToken, evil.abi);
      await send(admin, 'deposit', [OPEN('10')], evilEscrow);
      await send(admin, 'requestWithdrawal', [OPEN('5')], evilEscrow);
      await warp(2n);
      await send(admin, 'arm', [evilEscrow, admin.address], evilToken, evil.abi);
      await expectRevert(
        conn.publicClient.simulateContract({
          address: evilEscrow,
          abi: InferenceEscrowAbi,
          functionName: 'withdraw',
          args: [admin.address],
          account: admin,
        }),
        'ReentrancyGuardReentrantCall',
      );
      assert.equal(
        await conn.publicClient.readContract({
          address: evilEscrow,
          abi: InferenceEscrowAbi,
          functionName: 'balanceOf',
          args: [admin.address],
        }),
        OPEN('10'),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
