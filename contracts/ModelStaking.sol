// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @notice The view of the ModelRegistry this contract checks model ids against.
interface IModelCount {
    function modelCount() external view returns (uint256);
}

/// @title Stakes on models
/// @notice Anyone may stake OPEN on a published model. A model's `Split.stakers` share of every
/// paid call goes to the accounts staked on it when the call is attributed, in proportion to
/// their stakes: Proof of Attribution reads `stakesOf(modelId)` at the block its receipt names
/// (so every verifier sees the same stakers) and the AttributionSettlement pays them with the
/// other payouts of the epoch.
///
/// Unstaking is in two steps: `requestUnstake` stops the amount earning at once and starts its
/// unbonding period; `withdraw` returns it after the period. A stake therefore cannot be parked
/// on a model for one large call and taken straight back. A model holds at most `maxStakers`
/// stakers (bounding every receipt) and each holds at least `minStake`. When a model's places are
/// full, a newcomer who stakes more than the smallest stake takes its place: the smallest is moved
/// into unbonding (as if its holder had asked), so that nobody can close a model to others by
/// filling its places with minimum stakes.
contract ModelStaking is Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;


    struct Unbonding {
        uint256 amount;
        uint64 releaseAt;
    }

    IERC20 public immutable token;
    IModelCount public immutable modelRegistry;
    /// @notice The most stakers one model may have (bounds each attribution receipt).
    uint256 public immutable maxStakers;

    /// @notice The smallest stake an account may hold on a model (a partial unstake must leave
    /// at least this much or nothing).
    uint256 public minStake;
    /// @notice Seconds between `requestUnstake` and `withdraw`.
    uint64 public unbondingPeriod;

    mapping(uint256 modelId => address[]) private _stakers;
    mapping(uint256 modelId => mapping(address account => uint256)) public stakeOf;
    mapping(uint256 modelId => mapping(address account => uint256)) private _position; // index + 1
    mapping(uint256 modelId => uint256) public totalStakeOf;
    mapping(uint256 modelId => mapping(address account => Unbonding)) public unbondingOf;

    event Staked(uint256 indexed modelId, address indexed account, uint256 amount, uint256 stake);
    event UnstakeRequested(
        uint256 indexed modelId, address indexed account, uint256 amount, uint256 stake, uint64 releaseAt
    );
    event Withdrawn(uint256 indexed modelId, address indexed account, uint256 amount);
    /// @notice A full model's smallest staker was moved into unbonding to make room for `by`.
    event Evicted(uint256 indexed modelId, address indexed account, uint256 amount, address indexed by);
    event ParametersSet(uint256 minStake, uint64 unbondingPeriod);

    error UnknownModel(uint256 modelId);
    error ZeroAmount();
    error BelowMinimumStake(uint256 stake, uint256 minStake);
    /// @notice The model's places are full and the stake does not exceed the smallest one.
    error TooManyStakers(uint256 modelId, uint256 smallestStake);
    error InsufficientStake(uint256 stake, uint256 wanted);
    error NothingToWithdraw(uint256 modelId, address account);
    error StillUnbonding(uint64 releaseAt);
    error ZeroAddress();
    error InvalidParameters();

    /// @param governor sets the parameters (the Timelock)
    /// @param maxStakers_ the most stakers a model may have
    constructor(
        IERC20 token_,
        IModelCount modelRegistry_,
        address governor,
        uint256 maxStakers_,
        uint256 minStake_,
        uint64 unbondingPeriod_
    ) Ownable(governor) {
        if (address(token_) == address(0) || address(modelRegistry_) == address(0)) revert ZeroAddress();
        if (maxStakers_ == 0) revert InvalidParameters();
        token = token_;
        modelRegistry = modelRegistry_;
        maxStakers = maxStakers_;
        _setParameters(minStake_, unbondingPeriod_);
    }

    /// @notice Stakes `amount` OPEN (approved to this contract) on `modelId`.
    function stake(uint256 modelId, uint256 amount) external nonReentrant {
        if (modelId == 0 || modelId > modelRegistry.modelCount()) revert UnknownModel(modelId);
        if (amount == 0) revert ZeroAmount();
        uint256 next = stakeOf[modelId][msg.sender] + amount;
        if (next < minStake) revert BelowMinimumStake(next, minStake);
        if (_position[modelId][msg.sender] == 0) {
            if (_stakers[modelId].length >= maxStakers) _evictSmallest(modelId, next);
            _stakers[modelId].push(msg.sender);
            _position[modelId][msg.sender] = _stakers[modelId].length;
        }
        stakeOf[modelId][msg.sender] = next;
        totalStakeOf[modelId] += amount;
        emit Staked(modelId, msg.sender, amount, next);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Stops `amount` of the caller's stake on `modelId` earning and starts its unbonding;
    /// a second request adds to the first and restarts the period.
    function requestUnstake(uint256 modelId, uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 current = stakeOf[modelId][msg.sender];
        if (amount > current) revert InsufficientStake(current, amount);
        uint256 left = current - amount;
        if (left != 0 && left < minStake) revert BelowMinimumStake(left, minStake);
        stakeOf[modelId][msg.sender] = left;
        totalStakeOf[modelId] -= amount;
        if (left == 0) _removeStaker(modelId, msg.sender);
        Unbonding storage u = unbondingOf[modelId][msg.sender];
        u.amount += amount;
        u.releaseAt = uint64(block.timestamp) + unbondingPeriod;
        emit UnstakeRequested(modelId, msg.sender, amount, left, u.releaseAt);
    }

    /// @notice Returns the caller's unbonded OPEN on `modelId` once its period has passed.
    function withdraw(uint256 modelId) external nonReentrant {
        Unbonding memory u = unbondingOf[modelId][msg.sender];
        if (u.amount == 0) revert NothingToWithdraw(modelId, msg.sender);
        if (block.timestamp < u.releaseAt) revert StillUnbonding(u.releaseAt);
        delete unbondingOf[modelId][msg.sender];
        emit Withdrawn(modelId, msg.sender, u.amount);
        token.safeTransfer(msg.sender, u.amount);
    }

    /// @notice The accounts staked on `modelId` and their stakes (what the stakers' share is
    /// divided by), in no particular order.
    function stakesOf(uint256 modelId) external view returns (address[] memory accounts, uint256[] memory amounts) {
        accounts = _stakers[modelId];
        amounts = new uint256[](accounts.length);
        for (uint256 i = 0; i < accounts.length; ++i) {
            amounts[i] = stakeOf[modelId][accounts[i]];
        }
    }

    /// @notice Sets the minimum stake and the unbonding period (for requests made from now on).
    /// The owner (the Timelock) only.
    function setParameters(uint256 minStake_, uint64 unbondingPeriod_) external onlyOwner {
        _setParameters(minStake_, unbondingPeriod_);
    }

    function _setParameters(uint256 minStake_, uint64 unbondingPeriod_) private {
        minStake = minStake_;
        unbondingPeriod = unbondingPeriod_;
        emit ParametersSet(minStake_, unbondingPeriod_);
    }

    /// @dev Moves the smallest stake of a full model into unbonding, if `incoming` exceeds it.
    function _evictSmallest(uint256 modelId, uint256 incoming) private {
        address[] storage list = _stakers[modelId];
        address smallest = list[0];
        uint256 least = stakeOf[modelId][smallest];
        for (uint256 i = 1; i < list.length; ++i) {
            uint256 amount = stakeOf[modelId][list[i]];
            if (amount < least) (smallest, least) = (list[i], amount);
        }
        if (incoming <= least) revert TooManyStakers(modelId, least);
        stakeOf[modelId][smallest] = 0;
        totalStakeOf[modelId] -= least;
        _removeStaker(modelId, smallest);
        Unbonding storage u = unbondingOf[modelId][smallest];
        u.amount += least;
        u.releaseAt = uint64(block.timestamp) + unbondingPeriod;
        emit Evicted(modelId, smallest, least, msg.sender);
    }

    function _removeStaker(uint256 modelId, address account) private {
        address[] storage list = _stakers[modelId];
        uint256 index = _position[modelId][account] - 1;
        address last = list[list.length - 1];
        list[index] = last;
        _position[modelId][last] = index + 1;
        list.pop();
        delete _position[modelId][account];
    }
}
