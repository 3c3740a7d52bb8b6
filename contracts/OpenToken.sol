// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

/// @notice The interface the OP Stack standard bridge expects of a token it can mint and burn
/// (Optimism's `IOptimismMintableERC20`, declared here so the project does not depend on the
/// Optimism monorepo).
interface IOptimismMintableERC20 is IERC165 {
    function remoteToken() external view returns (address);
    function bridge() external returns (address);
    function mint(address to, uint256 amount) external;
    function burn(address from, uint256 amount) external;
}

/// @notice The legacy interface (`ILegacyMintableERC20`) that older OP bridges check for.
interface ILegacyMintableERC20 is IERC165 {
    function l1Token() external view returns (address);
    function mint(address to, uint256 amount) external;
    function burn(address from, uint256 amount) external;
}

/// @title OPEN, the OpenLedger token
/// @notice ERC-20 with EIP-2612 permit and holder burns. On its home chain the whole fixed supply
/// is minted once, to the treasury, and nothing can ever mint again (`bridge` is zero). Deployed as
/// the L2 representation of a home-chain OPEN (supply zero, `bridge` = the L2 standard bridge,
/// `remoteToken` = the home-chain address), only the bridge mints on deposits and burns on
/// withdrawals, so the total across chains stays fixed.
contract OpenToken is ERC20, ERC20Burnable, ERC20Permit, IOptimismMintableERC20, ILegacyMintableERC20 {
    /// @notice The token this one mirrors on the other side of the bridge (zero on the home chain).
    address public immutable REMOTE_TOKEN;
    /// @notice The only address allowed to mint and burn (zero on the home chain: nobody).
    address public immutable BRIDGE;

    /// @notice Emitted when the bridge mints tokens for a deposit.
    event Mint(address indexed account, uint256 amount);
    /// @notice Emitted when the bridge burns tokens for a withdrawal.
    event Burn(address indexed account, uint256 amount);

    /// @notice The caller is not the bridge.
    error OnlyBridge(address caller);
    /// @notice A home-chain token needs a treasury to receive its supply.
    error ZeroTreasury();
    /// @notice A bridged representation must not mint a supply of its own.
    error BridgedTokenWithSupply();

    /// @param treasury receives `initialSupply` (ignored when zero supply)
    /// @param initialSupply the fixed supply in wei; zero for a bridged representation
    /// @param remoteToken_ the home-chain token when this is a bridged representation, else zero
    /// @param bridge_ the standard bridge when this is a bridged representation, else zero
    constructor(address treasury, uint256 initialSupply, address remoteToken_, address bridge_)
        ERC20("OpenLedger", "OPEN")
        ERC20Permit("OpenLedger")
    {
        if (bridge_ != address(0) && initialSupply != 0) revert BridgedTokenWithSupply();
        if (initialSupply != 0) {
            if (treasury == address(0)) revert ZeroTreasury();
            _mint(treasury, initialSupply);
        }
        REMOTE_TOKEN = remoteToken_;
        BRIDGE = bridge_;
    }

    modifier onlyBridge() {
        if (BRIDGE == address(0) || msg.sender != BRIDGE) revert OnlyBridge(msg.sender);
        _;
    }

    /// @notice Mints for a bridge deposit. Only the bridge.
    function mint(address to, uint256 amount)
        external
        override(IOptimismMintableERC20, ILegacyMintableERC20)
        onlyBridge
    {
        _mint(to, amount);
        emit Mint(to, amount);
    }

    /// @notice Burns for a bridge withdrawal. Only the bridge.
    function burn(address from, uint256 amount)
        external
        override(IOptimismMintableERC20, ILegacyMintableERC20)
        onlyBridge
    {
        _burn(from, amount);
        emit Burn(from, amount);
    }

    /// @inheritdoc IOptimismMintableERC20
    function remoteToken() external view returns (address) {
        return REMOTE_TOKEN;
    }

    /// @inheritdoc IOptimismMintableERC20
    function bridge() external view returns (address) {
        return BRIDGE;
    }

    /// @inheritdoc ILegacyMintableERC20
    function l1Token() external view returns (address) {
        return REMOTE_TOKEN;
    }

    /// @notice Legacy name for the bridge address, kept for the OP legacy interface's callers.
    function l2Bridge() external view returns (address) {
        return BRIDGE;
    }

    /// @notice ERC-165: IERC165, IOptimismMintableERC20 and ILegacyMintableERC20.
    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(IERC165).interfaceId
            || interfaceId == type(IOptimismMintableERC20).interfaceId
            || interfaceId == type(ILegacyMintableERC20).interfaceId;
    }
}
