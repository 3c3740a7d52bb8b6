// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title Development faucet for OPEN and gas money
/// @notice Hands out a fixed amount of OPEN (and a little ETH for gas, while it holds some) to any
/// address, at most once per cooldown. It refuses to exist anywhere but the local development
/// chain, so a faucet can never be deployed by mistake next to real money.
contract DevFaucet is Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice The chain id of the local development chain (anvil's default).
    uint256 public constant LOCAL_CHAIN_ID = 31337;

    IERC20 public immutable TOKEN;
    uint256 public tokenAmount;
    uint256 public ethAmount;
    uint256 public cooldown;
    mapping(address => uint256) public lastDrip;

    event Dripped(address indexed to, uint256 tokenAmount, uint256 ethAmount);
    event ParametersChanged(uint256 tokenAmount, uint256 ethAmount, uint256 cooldown);
    event Withdrawn(address indexed to, uint256 tokenAmount, uint256 ethAmount);

    error NotLocalChain(uint256 chainId);
    error CooldownActive(address account, uint256 availableAt);
    error FaucetEmpty();
    error EthTransferFailed();

    constructor(IERC20 token, uint256 tokenAmount_, uint256 ethAmount_, uint256 cooldown_) Ownable(msg.sender) {
        if (block.chainid != LOCAL_CHAIN_ID) revert NotLocalChain(block.chainid);
        TOKEN = token;
        tokenAmount = tokenAmount_;
        ethAmount = ethAmount_;
        cooldown = cooldown_;
        emit ParametersChanged(tokenAmount_, ethAmount_, cooldown_);
    }

    receive() external payable {}

    /// @notice Sends `tokenAmount` OPEN, and `ethAmount` ETH while the faucet holds it, to `to`.
    function drip(address to) external nonReentrant {
        uint256 availableAt = lastDrip[to] == 0 ? 0 : lastDrip[to] + cooldown;
        if (block.timestamp < availableAt) revert CooldownActive(to, availableAt);
        if (TOKEN.balanceOf(address(this)) < tokenAmount) revert FaucetEmpty();
        lastDrip[to] = block.timestamp;
        uint256 eth = address(this).balance >= ethAmount ? ethAmount : 0;
        TOKEN.safeTransfer(to, tokenAmount);
        if (eth != 0) {
            (bool ok,) = to.call{value: eth}("");
            if (!ok) revert EthTransferFailed();
        }
        emit Dripped(to, tokenAmount, eth);
    }

    /// @notice When `account` may next call `drip` (0 if it may now).
    function nextDripAt(address account) external view returns (uint256) {
        uint256 availableAt = lastDrip[account] == 0 ? 0 : lastDrip[account] + cooldown;
        return availableAt <= block.timestamp ? 0 : availableAt;
    }

    function setParameters(uint256 tokenAmount_, uint256 ethAmount_, uint256 cooldown_) external onlyOwner {
        tokenAmount = tokenAmount_;
        ethAmount = ethAmount_;
        cooldown = cooldown_;
        emit ParametersChanged(tokenAmount_, ethAmount_, cooldown_);
    }

    /// @notice Returns all OPEN and ETH to `to`.
    function withdraw(address payable to) external onlyOwner nonReentrant {
        uint256 tokens = TOKEN.balanceOf(address(this));
        uint256 eth = address(this).balance;
        TOKEN.safeTransfer(to, tokens);
        (bool ok,) = to.call{value: eth}("");
        if (!ok) revert EthTransferFailed();
        emit Withdrawn(to, tokens, eth);
    }
}
