// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title A hostile ERC-20, for tests only
/// @notice An ERC-20 whose `transfer` calls back into the contract paying it out: armed with
/// `arm(target, data, bubble)`, the next `transfer` sent by `target` first calls `target` with
/// `data` (once). The token doubles as the attacker's account: `execute` makes it call anything
/// (approve, launch an agent, stake, fund), so the re-entrant call comes from the very account the
/// paying contract owes, as a hostile contract account's would. When the re-entry reverts, the
/// token records the revert data (`lastRevert`) and, with `bubble`, reverts the whole transfer
/// with it; otherwise the payment goes on and the test checks that no extra funds moved.
contract ReentrantToken is ERC20 {
    address public target;
    bytes public attack;
    bool public bubble;
    /// @notice How many re-entrant calls were made, and how many of them succeeded.
    uint256 public attempts;
    uint256 public successes;
    bytes public lastRevert;

    constructor() ERC20("Hostile", "HOST") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function arm(address target_, bytes calldata attack_, bool bubble_) external {
        target = target_;
        attack = attack_;
        bubble = bubble_;
    }

    /// @notice Makes this contract call `to` with `data` (it acts as the attacker's account).
    function execute(address to, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory ret) = to.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    function transfer(address to, uint256 value) public override returns (bool) {
        if (target != address(0) && msg.sender == target) {
            address t = target;
            target = address(0);
            attempts += 1;
            (bool ok, bytes memory ret) = t.call(attack);
            if (ok) {
                successes += 1;
            } else {
                lastRevert = ret;
                if (bubble) {
                    assembly {
                        revert(add(ret, 32), mload(ret))
                    }
                }
            }
        }
        return super.transfer(to, value);
    }
}
