// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {ERC20Wrapper} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Wrapper.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title gOPEN, OPEN staked for governance
/// @notice Deposit OPEN, receive gOPEN one for one; withdraw burns gOPEN and returns the OPEN.
/// gOPEN carries ERC-20 votes with delegation, checkpointed by timestamp, so the Governor counts
/// each account's stake as it was at a proposal's snapshot: tokens bought, deposited or received
/// after the snapshot do not vote on that proposal, and moving them after voting does not let
/// them vote again.
///
/// ERC-20 votes only count delegated balances, and holders rarely delegate: an account that
/// receives gOPEN while it has no delegate is delegated to itself, so a deposit votes at once.
/// Delegating to someone else (or back) is always one `delegate` call away.
contract StakedOpen is ERC20, ERC20Permit, ERC20Votes, ERC20Wrapper {
    /// @param open the OPEN token
    constructor(IERC20 open) ERC20("Governance OPEN", "gOPEN") ERC20Permit("Governance OPEN") ERC20Wrapper(open) {}

    /// @notice Votes are checkpointed by timestamp (EIP-6372), as the Governor's periods are.
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice EIP-6372 clock description.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    function decimals() public view override(ERC20, ERC20Wrapper) returns (uint8) {
        return super.decimals();
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
        if (to != address(0) && value != 0 && delegates(to) == address(0)) _delegate(to, to);
    }
}
