// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC5805} from "@openzeppelin/contracts/interfaces/IERC5805.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
import {GovernorVotesQuorumFraction} from
    "@openzeppelin/contracts/governance/extensions/GovernorVotesQuorumFraction.sol";
import {GovernorTimelockControl} from "@openzeppelin/contracts/governance/extensions/GovernorTimelockControl.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title The OpenLedger Governor
/// @notice OpenZeppelin's Governor with a Timelock: proposals are made, voted For / Against /
/// Abstain, queued in the Timelock and executed by it once its delay has passed; the Timelock
/// holds the protocol's parameter roles.
///
/// Voting power is the sum of two checkpointed tokens read at the proposal's snapshot: staked
/// OPEN (gOPEN, which capital buys) and contribution votes (cVOTE, which only attribution rewards
/// earn), so that the people whose data and models earn the protocol its fees weigh in, not only
/// capital. The quorum is a fraction of both supplies together. Both tokens keep time by
/// timestamp, and so does the Governor: the voting delay and period are in seconds.
contract OpenLedgerGovernor is
    Governor,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorVotes,
    GovernorVotesQuorumFraction,
    GovernorTimelockControl
{
    /// @notice The non-transferable contribution votes added to each account's staked votes.
    IVotes public immutable contributionVotes;

    /// @notice The two vote tokens must keep the same clock.
    error ClockMismatch();

    /// @param stakedOpen gOPEN (its clock is the Governor's)
    /// @param contributionVotes_ cVOTE
    /// @param timelock executes what passes
    /// @param votingDelay seconds between a proposal and the start of its vote (the snapshot)
    /// @param votingPeriod seconds the vote lasts
    /// @param proposalThreshold votes (gOPEN + cVOTE, in wei) needed to propose
    /// @param quorumPercent percentage of all votes (both supplies) that must vote For or Abstain
    constructor(
        IERC5805 stakedOpen,
        IERC5805 contributionVotes_,
        TimelockController timelock,
        uint48 votingDelay,
        uint32 votingPeriod,
        uint256 proposalThreshold,
        uint256 quorumPercent
    )
        Governor("OpenLedger Governor")
        GovernorSettings(votingDelay, votingPeriod, proposalThreshold)
        GovernorVotes(stakedOpen)
        GovernorVotesQuorumFraction(quorumPercent)
        GovernorTimelockControl(timelock)
    {
        if (keccak256(bytes(contributionVotes_.CLOCK_MODE())) != keccak256(bytes(stakedOpen.CLOCK_MODE()))) {
            revert ClockMismatch();
        }
        contributionVotes = contributionVotes_;
    }

    /// @notice Staked votes plus contribution votes, both as they were at `timepoint`.
    function _getVotes(address account, uint256 timepoint, bytes memory params)
        internal
        view
        override(Governor, GovernorVotes)
        returns (uint256)
    {
        return super._getVotes(account, timepoint, params) + contributionVotes.getPastVotes(account, timepoint);
    }

    /// @notice The quorum: `quorumNumerator` percent of gOPEN's and cVOTE's supplies at `timepoint`.
    function quorum(uint256 timepoint) public view override(Governor, GovernorVotesQuorumFraction) returns (uint256) {
        uint256 supply = token().getPastTotalSupply(timepoint) + contributionVotes.getPastTotalSupply(timepoint);
        return (supply * quorumNumerator(timepoint)) / quorumDenominator();
    }

    // The overrides Solidity requires of a Governor with these extensions.

    function state(uint256 proposalId)
        public
        view
        override(Governor, GovernorTimelockControl)
        returns (ProposalState)
    {
        return super.state(proposalId);
    }

    function proposalNeedsQueuing(uint256 proposalId)
        public
        view
        override(Governor, GovernorTimelockControl)
        returns (bool)
    {
        return super.proposalNeedsQueuing(proposalId);
    }

    function proposalThreshold() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.proposalThreshold();
    }

    function _queueOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint48) {
        return super._queueOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) {
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _cancel(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint256) {
        return super._cancel(targets, values, calldatas, descriptionHash);
    }

    function _executor() internal view override(Governor, GovernorTimelockControl) returns (address) {
        return super._executor();
    }
}
