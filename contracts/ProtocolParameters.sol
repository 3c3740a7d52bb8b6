// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title Protocol parameters set by governance
/// @notice The protocol-wide defaults that no single contract owns, held by the Timelock so that
/// they change only through a passed, queued and executed governance proposal. Nodes read them:
/// `defaultSplit` is the revenue split a model gets when its publisher names none.
///
/// Parameters that a contract enforces itself stay with that contract, under a role the Timelock
/// holds: the minimum agent stake and unbonding period (AgentStaking), the model stakes' unbonding
/// period (ModelStaking) and the contributor penalty threshold (ContributionBonds).
contract ProtocolParameters is Ownable {
    uint16 public constant BPS = 10_000;

    /// @notice Shares, in basis points, of what is left of a paid call after the platform fee
    /// (the layout of ModelRegistry's `Split`).
    struct Split {
        uint16 owner;
        uint16 stakers;
        uint16 contributors;
    }

    Split private _defaultSplit;

    /// @notice The default split was changed.
    event DefaultSplitSet(uint16 owner, uint16 stakers, uint16 contributors);

    /// @notice The split's parts do not add up to 10,000 basis points.
    error InvalidSplit(uint16 owner, uint16 stakers, uint16 contributors);

    /// @param governor the Timelock (or, on a chain without governance yet, the administrator)
    /// @param split the initial default split
    constructor(address governor, Split memory split) Ownable(governor) {
        _setDefaultSplit(split);
    }

    /// @notice The split a model gets when its publisher names none.
    function defaultSplit() external view returns (Split memory) {
        return _defaultSplit;
    }

    /// @notice Sets the default split. The owner (the Timelock) only.
    function setDefaultSplit(Split calldata split) external onlyOwner {
        _setDefaultSplit(split);
    }

    function _setDefaultSplit(Split memory s) private {
        if (uint256(s.owner) + s.stakers + s.contributors != BPS) revert InvalidSplit(s.owner, s.stakers, s.contributors);
        _defaultSplit = s;
        emit DefaultSplitSet(s.owner, s.stakers, s.contributors);
    }
}
