// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @notice The view of the AttributionSettlement these votes are minted from.
interface IClaimedRewards {
    function claimed(address account) external view returns (uint256);
}

/// @title Contribution votes
/// @notice Non-transferable voting power earned by contributing: one vote per OPEN wei an
/// account has claimed from the AttributionSettlement, that is, per wei of attribution rewards it
/// earned as a data contributor, a model owner or a model staker (Proof of Attribution's payouts).
/// The protocol treasury's platform share earns none.
///
/// Nobody mints at will: `sync(account)` mints the difference between what the settlement says
/// the account has claimed and what it has already been credited, so anyone can bring any
/// account up to date, and the settlement's own Merkle-proved claims are the only source.
/// Votes are checkpointed by timestamp and delegable like gOPEN's; an account is delegated to
/// itself when its first votes arrive.
contract ContributionVotes is ERC20, EIP712, ERC20Votes {
    /// @notice The settlement whose `claimed` totals back the votes.
    IClaimedRewards public immutable settlement;
    /// @notice The address that receives the platform share (earns no votes).
    address public immutable treasury;

    /// @notice How much of each account's claimed rewards has been turned into votes.
    mapping(address account => uint256) public credited;

    /// @notice `account` was credited `amount` votes for rewards it claimed.
    event Synced(address indexed account, uint256 amount, uint256 credited);

    /// @notice Contribution votes cannot be transferred (only minted by `sync`).
    error NonTransferable();
    /// @notice The treasury's platform share earns no votes.
    error TreasuryEarnsNoVotes();
    /// @notice The zero address cannot be used here.
    error ZeroAddress();

    constructor(IClaimedRewards settlement_, address treasury_)
        ERC20("OpenLedger Contribution Votes", "cVOTE")
        EIP712("OpenLedger Contribution Votes", "1")
    {
        if (address(settlement_) == address(0) || treasury_ == address(0)) revert ZeroAddress();
        settlement = settlement_;
        treasury = treasury_;
    }

    /// @notice Mints `account` the votes for rewards it claimed since its last sync.
    /// @return minted the votes minted now (zero when already up to date)
    function sync(address account) external returns (uint256 minted) {
        if (account == address(0)) revert ZeroAddress();
        if (account == treasury) revert TreasuryEarnsNoVotes();
        uint256 earned = settlement.claimed(account);
        uint256 done = credited[account];
        if (earned <= done) return 0;
        minted = earned - done;
        credited[account] = earned;
        _mint(account, minted);
        emit Synced(account, minted, earned);
    }

    /// @notice Votes that `sync(account)` would mint now.
    function pending(address account) external view returns (uint256) {
        if (account == treasury) return 0;
        uint256 earned = settlement.claimed(account);
        uint256 done = credited[account];
        return earned > done ? earned - done : 0;
    }

    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        if (from != address(0) && to != address(0)) revert NonTransferable();
        super._update(from, to, value);
        if (to != address(0) && value != 0 && delegates(to) == address(0)) _delegate(to, to);
    }

    /// @dev Allowances are meaningless for a token that cannot move.
    function _approve(address, address, uint256, bool) internal pure override {
        revert NonTransferable();
    }
}
