// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title Prepaid OPEN escrow for inference
/// @notice Callers deposit OPEN here; serving nodes (accounts holding `SETTLER_ROLE`) debit it in
/// batches for the calls they served, each batch committing to the receipts it charges for by a
/// root that can never be charged twice. What is debited stays in this contract, credited to the
/// epoch in which it was charged (`epochFees`), until the attribution settlement (an account
/// holding `DISTRIBUTOR_ROLE`) releases a closed epoch's fees to pay model owners, stakers and
/// data contributors.
///
/// Withdrawals are two-step: `requestWithdrawal` names an amount, which becomes withdrawable
/// `withdrawalDelay` seconds later. Without the delay a caller could be served, then empty the
/// escrow before the node's next settlement: the delay gives the node that long to settle, and
/// charges may still debit an amount whose withdrawal is pending (what leaves is what is left of
/// the request). Nodes serve only against `available` (the balance less any pending request).
///
/// As in the registries, actions that move a caller's money have a direct form and a relayed form
/// (`...WithSig`, or ERC-2612 `permit` for deposits) that anyone, typically the node, may submit
/// with the caller's signature.
contract InferenceEscrow is AccessControl, ReentrancyGuard, EIP712, Nonces {
    using SafeERC20 for IERC20;

    /// @notice May debit callers' balances (the serving nodes).
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    /// @notice May release closed epochs' fees (the attribution settlement).
    bytes32 public constant DISTRIBUTOR_ROLE = keccak256("DISTRIBUTOR_ROLE");
    /// @notice May change the epoch length (governance's Timelock).
    bytes32 public constant PARAMS_ROLE = keccak256("PARAMS_ROLE");
    /// @notice Most callers in one `charge` batch (bounds its gas).
    uint256 public constant MAX_BATCH = 256;
    bytes32 public constant REQUEST_WITHDRAWAL_TYPEHASH =
        keccak256("RequestWithdrawal(address owner,uint256 amount,uint256 nonce,uint256 deadline)");

    /// @notice A run of epochs of one length: epoch `firstEpoch` starts at `start`, each lasts
    /// `length` seconds.
    struct EpochSchedule {
        uint64 start;
        uint64 length;
        uint256 firstEpoch;
    }

    /// @notice A pending withdrawal: `amount` OPEN wei, withdrawable from `unlockAt`.
    struct Withdrawal {
        uint256 amount;
        uint64 unlockAt;
    }

    /// @notice The OPEN token.
    IERC20 public immutable token;
    /// @notice Seconds between a withdrawal request and the moment it can be withdrawn.
    uint64 public immutable withdrawalDelay;
    /// @dev The schedule in effect, and the one that replaces it at its `start` (length 0: none).
    EpochSchedule private _schedule;
    EpochSchedule private _nextSchedule;

    /// @notice Each caller's balance, in OPEN wei (pending withdrawals included).
    mapping(address caller => uint256) public balanceOf;
    /// @notice Each caller's pending withdrawal (amount 0 when none).
    mapping(address caller => Withdrawal) public withdrawalOf;
    /// @notice Receipt roots already charged (a batch is charged once).
    mapping(bytes32 receiptsRoot => bool) public settled;
    /// @notice OPEN wei charged during each epoch, and how much of it has been released.
    mapping(uint256 epoch => uint256) public epochFees;
    mapping(uint256 epoch => uint256) public epochReleased;
    /// @notice Sum of all balances (the rest of this contract's OPEN is charged fees).
    uint256 public totalBalances;

    event Deposited(address indexed caller, address indexed from, uint256 amount);
    event WithdrawalRequested(address indexed caller, uint256 amount, uint64 unlockAt);
    event Withdrawn(address indexed caller, uint256 amount);
    /// @notice `caller` was debited `amount` in the batch `receiptsRoot`.
    event Charged(bytes32 indexed receiptsRoot, address indexed caller, uint256 amount);
    /// @notice `caller` owed `owed` in the batch but held only `charged` (all of it was taken).
    event ChargeShortfall(bytes32 indexed receiptsRoot, address indexed caller, uint256 owed, uint256 charged);
    /// @notice A batch was settled by `settler`: `total` OPEN wei moved into `epoch`'s fees.
    event BatchSettled(
        bytes32 indexed receiptsRoot, address indexed settler, uint256 indexed epoch, uint256 callers, uint256 total
    );
    /// @notice From epoch `fromEpoch`, starting at `start`, epochs last `length` seconds.
    event EpochLengthScheduled(uint256 indexed fromEpoch, uint64 start, uint64 length);
    /// @notice Fees of a closed epoch were released to `to` (the distribution hook).
    event EpochFeesReleased(uint256 indexed epoch, address indexed to, uint256 amount);

    error ZeroAmount();
    error ZeroAddress();
    error InvalidParameters();
    error InsufficientBalance(address caller, uint256 available, uint256 wanted);
    error NoWithdrawalRequested(address caller);
    error WithdrawalLocked(address caller, uint64 unlockAt);
    error BatchAlreadySettled(bytes32 receiptsRoot);
    error InvalidBatch();
    error EpochNotClosed(uint256 epoch);
    error ExceedsEpochFees(uint256 epoch, uint256 remaining, uint256 wanted);
    error InvalidSignature(address signer);
    error ExpiredSignature(uint256 deadline);

    /// @param token_ the OPEN token
    /// @param admin grants and revokes the settler and distributor roles
    /// @param withdrawalDelay_ seconds a withdrawal request waits
    /// @param epochLength_ seconds per fee epoch
    constructor(IERC20 token_, address admin, uint64 withdrawalDelay_, uint64 epochLength_)
        EIP712("OpenLedger InferenceEscrow", "1")
    {
        if (address(token_) == address(0) || admin == address(0)) revert ZeroAddress();
        if (withdrawalDelay_ == 0 || epochLength_ == 0) revert InvalidParameters();
        token = token_;
        withdrawalDelay = withdrawalDelay_;
        _schedule = EpochSchedule(0, epochLength_, 0);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ---------------------------------------------------------------------------------------------
    // Deposits
    // ---------------------------------------------------------------------------------------------

    /// @notice Deposits `amount` of the caller's OPEN (approved to this contract first).
    function deposit(uint256 amount) external nonReentrant {
        _deposit(msg.sender, msg.sender, amount);
    }

    /// @notice Deposits `amount` of `owner`'s OPEN to `owner`'s balance with `owner`'s ERC-2612
    /// permit, so that anyone (the node) can submit it. A permit already used (front-run) is
    /// ignored when the allowance is there anyway; the money can only ever go to `owner`.
    function depositWithPermit(address owner, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
    {
        try IERC20Permit(address(token)).permit(owner, address(this), amount, deadline, v, r, s) {} catch {}
        _deposit(owner, owner, amount);
    }

    // ---------------------------------------------------------------------------------------------
    // Withdrawals
    // ---------------------------------------------------------------------------------------------

    /// @notice Asks to withdraw `amount` (replacing any earlier request and restarting the delay;
    /// 0 cancels the request).
    function requestWithdrawal(uint256 amount) external {
        _requestWithdrawal(msg.sender, amount);
    }

    /// @notice `requestWithdrawal` on behalf of `owner`, who signed `RequestWithdrawal`.
    function requestWithdrawalWithSig(address owner, uint256 amount, uint256 deadline, bytes calldata signature)
        external
    {
        if (owner == address(0)) revert ZeroAddress();
        if (block.timestamp > deadline) revert ExpiredSignature(deadline);
        bytes32 structHash =
            keccak256(abi.encode(REQUEST_WITHDRAWAL_TYPEHASH, owner, amount, _useNonce(owner), deadline));
        if (!SignatureChecker.isValidSignatureNowCalldata(owner, _hashTypedDataV4(structHash), signature)) {
            revert InvalidSignature(owner);
        }
        _requestWithdrawal(owner, amount);
    }

    /// @notice Pays `owner` its unlocked withdrawal (what charges left of it). Anyone may call it:
    /// the money only ever goes to `owner`.
    function withdraw(address owner) external nonReentrant returns (uint256 amount) {
        Withdrawal memory request = withdrawalOf[owner];
        if (request.amount == 0) revert NoWithdrawalRequested(owner);
        if (block.timestamp < request.unlockAt) revert WithdrawalLocked(owner, request.unlockAt);
        uint256 balance = balanceOf[owner];
        amount = request.amount < balance ? request.amount : balance;
        // Effects before the transfer (checks-effects-interactions, besides the guard).
        delete withdrawalOf[owner];
        balanceOf[owner] = balance - amount;
        totalBalances -= amount;
        emit Withdrawn(owner, amount);
        if (amount != 0) token.safeTransfer(owner, amount);
    }

    // ---------------------------------------------------------------------------------------------
    // Settlement (serving nodes) and the distribution hook (attribution)
    // ---------------------------------------------------------------------------------------------

    /// @notice Debits each `callers[i]` by `amounts[i]` for the receipts committed to by
    /// `receiptsRoot`, moving the total into the current epoch's fees. A caller holding less than
    /// owed is debited all it holds (`ChargeShortfall`), so one caller cannot block a batch.
    /// @return total what was actually debited
    function charge(bytes32 receiptsRoot, address[] calldata callers, uint256[] calldata amounts)
        external
        onlyRole(SETTLER_ROLE)
        nonReentrant
        returns (uint256 total)
    {
        uint256 n = callers.length;
        if (receiptsRoot == bytes32(0) || n == 0 || n > MAX_BATCH || amounts.length != n) revert InvalidBatch();
        if (settled[receiptsRoot]) revert BatchAlreadySettled(receiptsRoot);
        settled[receiptsRoot] = true;
        for (uint256 i = 0; i < n; i++) {
            address caller = callers[i];
            uint256 owed = amounts[i];
            if (owed == 0) revert ZeroAmount();
            uint256 balance = balanceOf[caller];
            uint256 debit = owed < balance ? owed : balance;
            balanceOf[caller] = balance - debit;
            total += debit;
            emit Charged(receiptsRoot, caller, debit);
            if (debit < owed) emit ChargeShortfall(receiptsRoot, caller, owed, debit);
        }
        totalBalances -= total;
        uint256 epoch = currentEpoch();
        epochFees[epoch] += total;
        emit BatchSettled(receiptsRoot, msg.sender, epoch, n, total);
    }

    /// @notice Releases `amount` of a closed epoch's fees to `to`. The hook for the attribution
    /// settlement, which pays owners, stakers and contributors from it.
    function releaseEpochFees(uint256 epoch, address to, uint256 amount)
        external
        onlyRole(DISTRIBUTOR_ROLE)
        nonReentrant
    {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (epoch >= currentEpoch()) revert EpochNotClosed(epoch);
        uint256 remaining = epochFees[epoch] - epochReleased[epoch];
        if (amount > remaining) revert ExceedsEpochFees(epoch, remaining, amount);
        epochReleased[epoch] += amount;
        emit EpochFeesReleased(epoch, to, amount);
        token.safeTransfer(to, amount);
    }

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @notice What a node may serve `caller` against: the balance less any pending withdrawal.
    function available(address caller) public view returns (uint256) {
        uint256 balance = balanceOf[caller];
        uint256 leaving = withdrawalOf[caller].amount;
        return leaving >= balance ? 0 : balance - leaving;
    }

    /// @notice The fee epoch now: epochs are numbered on from the deployment's length
    /// (epoch = block.timestamp / length) through every change of length.
    function currentEpoch() public view returns (uint256) {
        EpochSchedule memory s = _activeSchedule();
        return s.firstEpoch + (block.timestamp - s.start) / s.length;
    }

    /// @notice Seconds per fee epoch now.
    function epochLength() external view returns (uint64) {
        return _activeSchedule().length;
    }

    /// @notice The schedule in effect, and a scheduled change (length 0 when none is pending).
    function epochSchedule() external view returns (EpochSchedule memory current, EpochSchedule memory next) {
        current = _activeSchedule();
        if (_nextSchedule.length != 0 && block.timestamp < _nextSchedule.start) next = _nextSchedule;
    }

    /// @notice Sets the epoch length from the next epoch boundary on: the current epoch ends when
    /// it was to end (its fees and their settlement are untouched) and the numbers go on from it.
    /// A later call before that boundary replaces the pending change. PARAMS_ROLE only.
    function setEpochLength(uint64 length) external onlyRole(PARAMS_ROLE) {
        if (length == 0) revert InvalidParameters();
        EpochSchedule memory s = _activeSchedule();
        _schedule = s;
        uint256 passed = (block.timestamp - s.start) / s.length;
        _nextSchedule = EpochSchedule(uint64(s.start + (passed + 1) * s.length), length, s.firstEpoch + passed + 1);
        emit EpochLengthScheduled(_nextSchedule.firstEpoch, _nextSchedule.start, length);
    }

    function _activeSchedule() private view returns (EpochSchedule memory) {
        return _nextSchedule.length != 0 && block.timestamp >= _nextSchedule.start ? _nextSchedule : _schedule;
    }

    /// @notice The EIP-712 domain separator signatures are made under.
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------------

    function _deposit(address to, address from, uint256 amount) private {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        // Credited by what actually arrived, so a token taking a fee on transfer cannot inflate
        // balances (OPEN takes none; the check costs one balance read).
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(from, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        balanceOf[to] += received;
        totalBalances += received;
        emit Deposited(to, from, received);
    }

    function _requestWithdrawal(address owner, uint256 amount) private {
        uint256 balance = balanceOf[owner];
        if (amount > balance) revert InsufficientBalance(owner, balance, amount);
        uint64 unlockAt = amount == 0 ? 0 : uint64(block.timestamp) + withdrawalDelay;
        withdrawalOf[owner] = Withdrawal({amount: amount, unlockAt: unlockAt});
        emit WithdrawalRequested(owner, amount, unlockAt);
    }
}
