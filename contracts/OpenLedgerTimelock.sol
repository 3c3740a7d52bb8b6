// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title The OpenLedger Timelock
/// @notice OpenZeppelin's TimelockController, unchanged: what the Governor passes waits here for
/// `minDelay` seconds before anyone may execute it. It holds the protocol's parameter roles, so a
/// parameter changes only through a passed and queued proposal. At deployment the Governor is its
/// only proposer and canceller, anyone may execute, and the deployer renounces the admin role.
contract OpenLedgerTimelock is TimelockController {
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
