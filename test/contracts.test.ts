import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  parseEventLogs,
  parseUnits,
  toFunctionSelector,
  zeroAddress,
  type Address,
  type Hex,
} from 'viem';
import {
  DevFaucetAbi,
  FAUCET_DRIP,
  FAUCET_FUNDING,
  OPEN_TOTAL_SUPPLY,
  OpenTokenAbi,
  deployContracts,
  devAccount,
  ensureDeployment,
  isDeploymentLive,
  type ChainConnection,
  type Deployment,
} from '../src/chain/index.ts';
import { DevFaucetBytecode, OpenTokenBytecode } from '../src/chain/generated/contracts.ts';
import type { OpenLedgerError } from '../src/errors.ts';
import { expectDeployRevert, expectRevert, startTestChain } from './helpers/chain.ts';

const deployer = devAccount(0);
const alice = devAccount(1);
const bob = devAccount(2);
const bridge = devAccount(3);

/** ERC-165 id of an interface: the XOR of its function selectors. */
function interfaceId(signatures: string[]): Hex {
  const id = signatures
    .map((s) => parseInt(toFunctionSelector(s).slice(2), 16))
    .reduce((a, b) => (a ^ b) >>> 0, 0);
  return `0x${id.toString(16).padStart(8, '0')}`;
}

describe('contracts on a local chain', () => {
  let env: Awaited<ReturnType<typeof startTestChain>>;
  let conn: ChainConnection;
  let deployment: Deployment;
  let token: Address;
  let faucet: Address;

  before(async () => {
    env = await startTestChain();
    conn = env.conn;
    deployment = await deployContracts(conn, { signer: deployer });
    token = deployment.contracts.OpenToken;
    faucet = deployment.contracts.DevFaucet!;
  });
  after(() => env.close());

  const send = async (
    account: typeof alice,
    request: Parameters<ChainConnection['publicClient']['simulateContract']>[0],
  ) => {
    const { request: simulated } = await conn.publicClient.simulateContract({
      ...request,
      account,
    } as never);
    const hash = await conn.walletFor(account).writeContract(simulated as never);
    const receipt = await conn.publicClient.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, 'success');
    return receipt;
  };

  describe('OPEN token', () => {
    it('mints the fixed supply once, to the treasury, less what funds the faucet', async () => {
      const c = conn.publicClient;
      assert.equal(
        await c.readContract({ address: token, abi: OpenTokenAbi, functionName: 'name' }),
        'OpenLedger',
      );
      assert.equal(
        await c.readContract({ address: token, abi: OpenTokenAbi, functionName: 'symbol' }),
        'OPEN',
      );
      assert.equal(
        await c.readContract({ address: token, abi: OpenTokenAbi, functionName: 'decimals' }),
        18,
      );
      assert.equal(
        await c.readContract({ address: token, abi: OpenTokenAbi, functionName: 'totalSupply' }),
        OPEN_TOTAL_SUPPLY,
      );
      assert.equal(
        await c.readContract({
          address: token,
          abi: OpenTokenAbi,
          functionName: 'balanceOf',
          args: [deployer.address],
        }),
        OPEN_TOTAL_SUPPLY - FAUCET_FUNDING.open,
      );
    });

    it('lets nobody mint on the home chain, the deployer included', async () => {
      await expectRevert(
        send(deployer, {
          address: token,
          abi: OpenTokenAbi,
          functionName: 'mint',
          args: [deployer.address, 1n],
        }),
        'OnlyBridge',
      );
      await expectRevert(
        send(alice, {
          address: token,
          abi: OpenTokenAbi,
          functionName: 'burn',
          args: [deployer.address, 1n],
        }),
        'OnlyBridge',
      );
    });

    it('refuses transfers beyond the balance', async () => {
      await expectRevert(
        send(alice, {
          address: token,
          abi: OpenTokenAbi,
          functionName: 'transfer',
          args: [bob.address, parseUnits('1', 36)],
        }),
        'ERC20InsufficientBalance',
      );
    });

    it('burns: holders burn their own tokens; burnFrom needs an allowance', async () => {
      const amount = parseUnits('5', 18);
      await send(deployer, {
        address: token,
        abi: OpenTokenAbi,
        functionName: 'transfer',
        args: [alice.address, amount],
      });
      await send(alice, {
        address: token,
        abi: OpenTokenAbi,
        functionName: 'burn',
        args: [parseUnits('2', 18)],
      });
      assert.equal(
        await conn.publicClient.readContract({
          address: token,
          abi: OpenTokenAbi,
          functionName: 'totalSupply',
        }),
        OPEN_TOTAL_SUPPLY - parseUnits('2', 18),
      );
      await expectRevert(
        send(bob, {
          address: token,
          abi: OpenTokenAbi,
          functionName: 'burnFrom',
          args: [alice.address, 1n],
        }),
        'ERC20InsufficientAllowance',
      );
    });

    it('accepts an EIP-2612 permit signed by the owner, and refuses a forged or expired one', async () => {
      const c = conn.publicClient;
      const value = parseUnits('1', 18);
      const nonce = await c.readContract({
        address: token,
        abi: OpenTokenAbi,
        functionName: 'nonces',
        args: [alice.address],
      });
      const block = await c.getBlock();
      const permit = async (signer: typeof alice, deadline: bigint) => {
        const signature = await signer.signTypedData({
          domain: {
            name: 'OpenLedger',
            version: '1',
            chainId: conn.chain.id,
            verifyingContract: token,
          },
          types: {
            Permit: [
              { name: 'owner', type: 'address' },
              { name: 'spender', type: 'address' },
              { name: 'value', type: 'uint256' },
              { name: 'nonce', type: 'uint256' },
              { name: 'deadline', type: 'uint256' },
            ],
          },
          primaryType: 'Permit',
          message: { owner: alice.address, spender: bob.address, value, nonce, deadline },
        });
        const r = signature.slice(0, 66) as Hex;
        const s = `0x${signature.slice(66, 130)}` as Hex;
        const v = parseInt(signature.slice(130, 132), 16);
        return send(bob, {
          address: token,
          abi: OpenTokenAbi,
          functionName: 'permit',
          args: [alice.address, bob.address, value, deadline, v, r, s],
        });
      };
      await expectRevert(permit(bob, block.timestamp + 3600n), 'ERC2612InvalidSigner');
      await expectRevert(permit(alice, block.timestamp - 1n), 'ERC2612ExpiredSignature');
      await permit(alice, block.timestamp + 3600n);
      assert.equal(
        await c.readContract({
          address: token,
          abi: OpenTokenAbi,
          functionName: 'allowance',
          args: [alice.address, bob.address],
        }),
        value,
      );
      await send(bob, {
        address: token,
        abi: OpenTokenAbi,
        functionName: 'transferFrom',
        args: [alice.address, bob.address, value],
      });
      assert.equal(
        await c.readContract({
          address: token,
          abi: OpenTokenAbi,
          functionName: 'balanceOf',
          args: [bob.address],
        }),
        value,
      );
    });

    it("implements the OP Stack bridge's mintable-token interfaces (ERC-165 ids as Optimism defines them)", async () => {
      const optimismMintable = interfaceId([
        'remoteToken()',
        'bridge()',
        'mint(address,uint256)',
        'burn(address,uint256)',
      ]);
      const legacyMintable = interfaceId([
        'l1Token()',
        'mint(address,uint256)',
        'burn(address,uint256)',
      ]);
      assert.equal(optimismMintable, '0xec4fc8e3');
      assert.equal(legacyMintable, '0x1d1d8b63');
      for (const id of [optimismMintable, legacyMintable, '0x01ffc9a7'] as const) {
        assert.equal(
          await conn.publicClient.readContract({
            address: token,
            abi: OpenTokenAbi,
            functionName: 'supportsInterface',
            args: [id],
          }),
          true,
        );
      }
      assert.equal(
        await conn.publicClient.readContract({
          address: token,
          abi: OpenTokenAbi,
          functionName: 'supportsInterface',
          args: ['0xffffffff'],
        }),
        false,
      );
    });

    it('as a bridged representation: only the bridge mints and burns, and it starts with no supply', async () => {
      const wallet = conn.walletFor(deployer);
      const openToken = { abi: OpenTokenAbi, bytecode: OpenTokenBytecode };
      await expectDeployRevert(
        conn,
        deployer.address,
        { ...openToken, args: [deployer.address, 1n, token, bridge.address] },
        'BridgedTokenWithSupply',
      );
      await expectDeployRevert(
        conn,
        deployer.address,
        { ...openToken, args: [zeroAddress, 1n, zeroAddress, zeroAddress] },
        'ZeroTreasury',
      );
      const hash = await wallet.deployContract({
        abi: OpenTokenAbi,
        bytecode: OpenTokenBytecode,
        args: [zeroAddress, 0n, token, bridge.address],
      });
      const l2 = (await conn.publicClient.waitForTransactionReceipt({ hash })).contractAddress!;
      const c = conn.publicClient;
      assert.equal(
        await c.readContract({ address: l2, abi: OpenTokenAbi, functionName: 'totalSupply' }),
        0n,
      );
      assert.equal(
        (
          await c.readContract({ address: l2, abi: OpenTokenAbi, functionName: 'remoteToken' })
        ).toLowerCase(),
        token.toLowerCase(),
      );
      assert.equal(
        await c.readContract({ address: l2, abi: OpenTokenAbi, functionName: 'bridge' }),
        bridge.address,
      );
      const minted = await send(bridge, {
        address: l2,
        abi: OpenTokenAbi,
        functionName: 'mint',
        args: [alice.address, 7n],
      });
      assert.deepEqual(
        parseEventLogs({ abi: OpenTokenAbi, logs: minted.logs, eventName: 'Mint' })[0]?.args,
        { account: alice.address, amount: 7n },
      );
      await expectRevert(
        send(alice, {
          address: l2,
          abi: OpenTokenAbi,
          functionName: 'mint',
          args: [alice.address, 1n],
        }),
        'OnlyBridge',
      );
      await send(bridge, {
        address: l2,
        abi: OpenTokenAbi,
        functionName: 'burn',
        args: [alice.address, 3n],
      });
      assert.equal(
        await c.readContract({
          address: l2,
          abi: OpenTokenAbi,
          functionName: 'balanceOf',
          args: [alice.address],
        }),
        4n,
      );
    });
  });

  describe('DevFaucet', () => {
    it('drips OPEN and gas money once per cooldown', async () => {
      const fresh = '0x000000000000000000000000000000000000dEaD' as Address;
      const receipt = await send(bob, {
        address: faucet,
        abi: DevFaucetAbi,
        functionName: 'drip',
        args: [fresh],
      });
      const [event] = parseEventLogs({
        abi: DevFaucetAbi,
        logs: receipt.logs,
        eventName: 'Dripped',
      });
      assert.deepEqual(event?.args, {
        to: fresh,
        tokenAmount: FAUCET_DRIP.open,
        ethAmount: FAUCET_DRIP.eth,
      });
      assert.equal(
        (await conn.publicClient.getBalance({ address: fresh })) >= FAUCET_DRIP.eth,
        true,
      );
      await expectRevert(
        send(bob, { address: faucet, abi: DevFaucetAbi, functionName: 'drip', args: [fresh] }),
        'CooldownActive',
      );
      await conn.publicClient.request({
        method: 'evm_increaseTime' as never,
        params: [Number(FAUCET_DRIP.cooldownSeconds)] as never,
      });
      await conn.publicClient.request({ method: 'evm_mine' as never, params: [] as never });
      await send(bob, { address: faucet, abi: DevFaucetAbi, functionName: 'drip', args: [fresh] });
    });

    it('lets only its owner change parameters or withdraw, and says when it is empty', async () => {
      await expectRevert(
        send(alice, {
          address: faucet,
          abi: DevFaucetAbi,
          functionName: 'setParameters',
          args: [1n, 1n, 1n],
        }),
        'OwnableUnauthorizedAccount',
      );
      await expectRevert(
        send(alice, {
          address: faucet,
          abi: DevFaucetAbi,
          functionName: 'withdraw',
          args: [alice.address],
        }),
        'OwnableUnauthorizedAccount',
      );
      await send(deployer, {
        address: faucet,
        abi: DevFaucetAbi,
        functionName: 'withdraw',
        args: [deployer.address],
      });
      await expectRevert(
        send(bob, {
          address: faucet,
          abi: DevFaucetAbi,
          functionName: 'drip',
          args: [bob.address],
        }),
        'FaucetEmpty',
      );
    });

    it('cannot be deployed on any chain but the local one', async () => {
      const other = await startTestChain({ chainId: 10 });
      try {
        await expectDeployRevert(
          other.conn,
          deployer.address,
          { abi: DevFaucetAbi, bytecode: DevFaucetBytecode, args: [token, 1n, 1n, 1n] },
          'NotLocalChain',
        );
        // And the suite deployed there has no faucet.
        const suite = await deployContracts(other.conn, { signer: deployer });
        assert.equal(suite.contracts.DevFaucet, undefined);
      } finally {
        await other.close();
      }
    });
  });

  describe('deployment record', () => {
    it('re-uses a recorded live deployment and redeploys when the chain no longer has it', async () => {
      const first = await ensureDeployment(conn, { dataDir: env.dataDir, signer: deployer });
      assert.equal(first.deployedNow, true);
      const again = await ensureDeployment(conn, { dataDir: env.dataDir, signer: deployer });
      assert.equal(again.deployedNow, false);
      assert.deepEqual(again.deployment.contracts, first.deployment.contracts);
      const gone = {
        ...first.deployment,
        contracts: {
          ...first.deployment.contracts,
          OpenToken: '0x00000000000000000000000000000000000000aa' as Address,
        },
      };
      assert.equal(await isDeploymentLive(conn, gone), false);
      await assert.rejects(
        ensureDeployment(conn, { dataDir: `${env.dataDir}/elsewhere`, signer: undefined }),
        (error: OpenLedgerError) => error.code === 'NOT_DEPLOYED',
      );
    });
  });
});
