// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @notice The part of InferenceEscrow this contract uses: its epochs and the distribution hook.
interface IInferenceEscrowEpochs {
    function token() external view returns (IERC20);
    function currentEpoch() external view returns (uint256);
    function epochFees(uint256 epoch) external view returns (uint256);
    function epochReleased(uint256 epoch) external view returns (uint256);
    function releaseEpochFees(uint256 epoch, address to, uint256 amount) external;
}

/// @title Optimistic settlement of attributed inference fees
/// @notice Pays model owners, stakers and data contributors the fees InferenceEscrow collected in
/// a closed epoch. A bonded poster (the node operator, `POSTER_ROLE`) posts per epoch two roots:
/// the receipts root (what was served: the canonical inference receipts the node recorded) and
/// the payouts root, and pulls the epoch's fees from the escrow. The payouts root commits to
/// CUMULATIVE payouts per account over every epoch posted so far, so that an account only ever
/// needs the latest finalized root to claim all it is owed; `claimed` records what was paid.
///
/// Why optimistic and arbitrated: attribution (which datanet rows influenced which output, and
/// each model's split) cannot be recomputed on-chain at any reasonable cost. As in optimistic
/// rollups before fraud proofs, a posting becomes final when `challengeWindow` seconds pass
/// without a challenge; during the window anyone who recomputed the epoch off-chain
/// (`openledger attribution verify`) and found it wrong may challenge by posting
/// `challengeBond`. An account holding `ARBITER_ROLE` (the deployer on a local chain; governance
/// later) decides. Upheld: the poster loses `slashAmount` of its bond (half to the challenger,
/// with the challenger's bond back; the rest to the treasury) and the epoch is voided, its funds
/// kept here for a corrected re-post. Rejected: the challenger's bond goes to the poster. The
/// bond is what makes a wrong posting cost more than it could gain within one epoch; the
/// arbiter is a trusted party, which this contract does not hide.
///
/// Solvency does not rest on the roots being right: claims can never take more in total than
/// finalized epochs funded (`totalClaimed <= totalFunded`).
contract AttributionSettlement is AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice May post epochs (the node operator), given a bond of at least `minBond`.
    bytes32 public constant POSTER_ROLE = keccak256("POSTER_ROLE");
    /// @notice Resolves challenges (the deployer on a local chain; governance later).
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");

    /// @notice Where an epoch stands. `Posted` epochs are final once their window has passed;
    /// `finalize` (or the first claim) records that as `Finalized`.
    enum Status {
        None,
        Posted,
        Challenged,
        Voided,
        Finalized
    }

    /// @notice One epoch's settlement.
    /// @param receiptsRoot commits to the inference receipts the epoch's fees were charged for
    /// @param payoutsRoot Merkle root of (account, cumulative payout) leaves
    /// @param total OPEN wei this posting distributes
    /// @param held OPEN wei pulled from the escrow for this epoch (kept across a void)
    /// @param poster who posted it (and whose bond answers for it)
    /// @param postedAt when it was (last) posted; the challenge window runs from here
    /// @param challenger who challenges it (zero when no challenge is open)
    /// @param evidenceHash what the challenger pointed at (e.g. the hash of a verify report)
    struct Epoch {
        bytes32 receiptsRoot;
        bytes32 payoutsRoot;
        uint256 total;
        uint256 held;
        address poster;
        uint64 postedAt;
        Status status;
        address challenger;
        bytes32 evidenceHash;
    }

    /// @notice The escrow whose epochs are settled here, and its token (OPEN).
    IInferenceEscrowEpochs public immutable escrow;
    IERC20 public immutable token;
    /// @notice Receives the non-challenger half of slashed bonds and what a re-post left unused.
    address public immutable treasury;
    /// @notice The bond a poster must hold to post, the bond a challenge costs, and how much of
    /// the poster's bond an upheld challenge takes (at most `minBond`).
    uint256 public immutable minBond;
    uint256 public immutable challengeBond;
    uint256 public immutable slashAmount;
    /// @notice Seconds after a posting during which it may be challenged.
    uint64 public immutable challengeWindow;

    mapping(uint256 epoch => Epoch) private _epochs;
    /// @notice Each poster's bond, in OPEN wei.
    mapping(address poster => uint256) public bondOf;
    /// @notice Until when a poster's latest posting can be challenged (its bond is locked until then).
    mapping(address poster => uint64) public exposedUntil;
    /// @notice Open challenges against a poster's epochs (its bond is locked while any is open).
    mapping(address poster => uint256) public openChallenges;
    /// @notice Cumulative OPEN wei paid to each account.
    mapping(address account => uint256) public claimed;
    /// @notice OPEN wei distributed by finalized epochs, and claimed from them in total.
    uint256 public totalFunded;
    uint256 public totalClaimed;

    event Bonded(address indexed poster, uint256 amount, uint256 bond);
    event Unbonded(address indexed poster, uint256 amount, uint256 bond);
    event EpochPosted(
        uint256 indexed epoch,
        address indexed poster,
        bytes32 receiptsRoot,
        bytes32 payoutsRoot,
        uint256 total,
        bool repost
    );
    event EpochChallenged(uint256 indexed epoch, address indexed challenger, bytes32 evidenceHash);
    /// @notice The arbiter upheld the challenge: `slashed` of the poster's bond was taken, the
    /// epoch voided.
    event ChallengeUpheld(
        uint256 indexed epoch, address indexed challenger, uint256 slashed, uint256 toChallenger, uint256 toTreasury
    );
    /// @notice The arbiter rejected the challenge: the challenger's bond went to the poster.
    event ChallengeRejected(uint256 indexed epoch, address indexed challenger, uint256 toPoster);
    /// @notice The epoch became final: `total` joined `totalFunded`, `surplus` (what a smaller
    /// re-post left of the held funds) went to the treasury.
    event EpochFinalized(uint256 indexed epoch, uint256 total, uint256 surplus);
    event Claimed(uint256 indexed epoch, address indexed account, uint256 amount, uint256 cumulative);

    error ZeroAddress();
    error ZeroAmount();
    error InvalidParameters();
    error InsufficientBond(address poster, uint256 bond, uint256 required);
    error BondLocked(address poster, uint64 until, uint256 openChallenges);
    error EpochNotClosed(uint256 epoch);
    error AlreadyPosted(uint256 epoch, Status status);
    error ExceedsEpochFees(uint256 epoch, uint256 available, uint256 wanted);
    error NotChallengeable(uint256 epoch, Status status);
    error ChallengeWindowClosed(uint256 epoch, uint64 closedAt);
    error NotChallenged(uint256 epoch);
    error EpochNotFinal(uint256 epoch, Status status);
    error InvalidProof(uint256 epoch, address account, uint256 cumulativeAmount);
    error NothingToClaim(address account, uint256 claimed, uint256 cumulativeAmount);
    error ExceedsFunded(uint256 available, uint256 wanted);

    /// @param escrow_ the InferenceEscrow whose epoch fees are distributed (this contract needs
    /// its DISTRIBUTOR_ROLE)
    /// @param admin grants and revokes the poster and arbiter roles
    /// @param treasury_ receives the treasury's share of slashed bonds
    /// @param minBond_ bond a poster must hold to post
    /// @param challengeBond_ bond a challenger posts
    /// @param slashAmount_ bond taken from the poster on an upheld challenge (at most `minBond_`,
    /// so a bonded poster can always pay it)
    /// @param challengeWindow_ seconds a posting can be challenged
    constructor(
        IInferenceEscrowEpochs escrow_,
        address admin,
        address treasury_,
        uint256 minBond_,
        uint256 challengeBond_,
        uint256 slashAmount_,
        uint64 challengeWindow_
    ) {
        if (address(escrow_) == address(0) || admin == address(0) || treasury_ == address(0)) revert ZeroAddress();
        if (minBond_ == 0 || challengeBond_ == 0 || slashAmount_ == 0 || slashAmount_ > minBond_ || challengeWindow_ == 0)
        {
            revert InvalidParameters();
        }
        escrow = escrow_;
        token = escrow_.token();
        treasury = treasury_;
        minBond = minBond_;
        challengeBond = challengeBond_;
        slashAmount = slashAmount_;
        challengeWindow = challengeWindow_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ---------------------------------------------------------------------------------------------
    // Bonds
    // ---------------------------------------------------------------------------------------------

    /// @notice Adds `amount` of the caller's OPEN (approved to this contract first) to its bond.
    function bond(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 total = bondOf[msg.sender] + amount;
        bondOf[msg.sender] = total;
        emit Bonded(msg.sender, amount, total);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Takes `amount` of the caller's bond back. Refused while any of its postings can
    /// still be challenged or is under challenge: the bond is what answers for them.
    function unbond(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint64 until = exposedUntil[msg.sender];
        uint256 open = openChallenges[msg.sender];
        if (block.timestamp < until || open != 0) revert BondLocked(msg.sender, until, open);
        uint256 current = bondOf[msg.sender];
        if (amount > current) revert InsufficientBond(msg.sender, current, amount);
        bondOf[msg.sender] = current - amount;
        emit Unbonded(msg.sender, amount, current - amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------------------------------------
    // Posting and challenges
    // ---------------------------------------------------------------------------------------------

    /// @notice Posts a closed epoch's roots and pulls `total` of its fees from the escrow (a
    /// fresh posting), or re-posts a voided epoch with `total` at most what is held for it.
    /// @dev O(1) in the number of receipts and payees: only the roots are stored.
    function postEpoch(uint256 epoch, bytes32 receiptsRoot, bytes32 payoutsRoot, uint256 total)
        external
        onlyRole(POSTER_ROLE)
        nonReentrant
    {
        if (receiptsRoot == bytes32(0) || payoutsRoot == bytes32(0)) revert InvalidParameters();
        if (total == 0) revert ZeroAmount();
        uint256 posterBond = bondOf[msg.sender];
        if (posterBond < minBond) revert InsufficientBond(msg.sender, posterBond, minBond);
        if (epoch >= escrow.currentEpoch()) revert EpochNotClosed(epoch);
        Epoch storage e = _epochs[epoch];
        Status status = e.status;
        if (status != Status.None && status != Status.Voided) revert AlreadyPosted(epoch, status);
        bool repost = status == Status.Voided;
        if (repost) {
            // The voided posting's funds are already here; a correction redistributes them.
            if (total > e.held) revert ExceedsEpochFees(epoch, e.held, total);
        } else {
            uint256 available = escrow.epochFees(epoch) - escrow.epochReleased(epoch);
            if (total > available) revert ExceedsEpochFees(epoch, available, total);
            e.held = total;
        }
        uint64 postedAt = uint64(block.timestamp);
        e.receiptsRoot = receiptsRoot;
        e.payoutsRoot = payoutsRoot;
        e.total = total;
        e.poster = msg.sender;
        e.postedAt = postedAt;
        e.status = Status.Posted;
        e.challenger = address(0);
        e.evidenceHash = bytes32(0);
        uint64 until = postedAt + challengeWindow;
        if (until > exposedUntil[msg.sender]) exposedUntil[msg.sender] = until;
        emit EpochPosted(epoch, msg.sender, receiptsRoot, payoutsRoot, total, repost);
        if (!repost) escrow.releaseEpochFees(epoch, address(this), total);
    }

    /// @notice Challenges a posting within its window, posting `challengeBond` (approved to this
    /// contract first). `evidenceHash` names the evidence the arbiter should look at.
    function challenge(uint256 epoch, bytes32 evidenceHash) external nonReentrant {
        Epoch storage e = _epochs[epoch];
        if (e.status != Status.Posted) revert NotChallengeable(epoch, e.status);
        uint64 closesAt = e.postedAt + challengeWindow;
        if (block.timestamp >= closesAt) revert ChallengeWindowClosed(epoch, closesAt);
        e.status = Status.Challenged;
        e.challenger = msg.sender;
        e.evidenceHash = evidenceHash;
        openChallenges[e.poster] += 1;
        emit EpochChallenged(epoch, msg.sender, evidenceHash);
        token.safeTransferFrom(msg.sender, address(this), challengeBond);
    }

    /// @notice Decides an open challenge. Upheld: the poster's bond is slashed (half to the
    /// challenger with its bond back, the rest to the treasury) and the epoch is voided, its
    /// funds kept for a corrected re-post. Rejected: the challenger's bond goes to the poster and
    /// the posting stands (final once its window has passed).
    function resolve(uint256 epoch, bool upheld) external onlyRole(ARBITER_ROLE) nonReentrant {
        Epoch storage e = _epochs[epoch];
        if (e.status != Status.Challenged) revert NotChallenged(epoch);
        address poster = e.poster;
        address challenger = e.challenger;
        openChallenges[poster] -= 1;
        e.challenger = address(0);
        if (upheld) {
            // Several upheld challenges against one poster may find less than `slashAmount` left.
            uint256 posterBond = bondOf[poster];
            uint256 slashed = slashAmount < posterBond ? slashAmount : posterBond;
            bondOf[poster] = posterBond - slashed;
            uint256 reward = slashed / 2;
            uint256 toTreasury = slashed - reward;
            e.status = Status.Voided;
            emit ChallengeUpheld(epoch, challenger, slashed, reward + challengeBond, toTreasury);
            token.safeTransfer(challenger, reward + challengeBond);
            if (toTreasury != 0) token.safeTransfer(treasury, toTreasury);
        } else {
            e.status = Status.Posted;
            emit ChallengeRejected(epoch, challenger, challengeBond);
            token.safeTransfer(poster, challengeBond);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Finality and claims
    // ---------------------------------------------------------------------------------------------

    /// @notice Records that a posting's window passed unchallenged (or its challenge was
    /// rejected), adding its total to what claims may draw on. Anyone may call it; `claim` does
    /// it on the way.
    function finalize(uint256 epoch) external nonReentrant {
        _finalize(epoch);
    }

    /// @notice Pays `account` what the epoch's cumulative payout for it exceeds what it was
    /// already paid. Anyone may submit it (the node, a relayer): the tokens only go to `account`.
    /// @param cumulativeAmount the account's cumulative payout in the epoch's payouts root
    /// @param proof the StandardMerkleTree proof of (account, cumulativeAmount)
    function claim(uint256 epoch, address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        external
        nonReentrant
        returns (uint256 amount)
    {
        if (account == address(0)) revert ZeroAddress();
        Epoch storage e = _epochs[epoch];
        if (e.status != Status.Finalized) _finalize(epoch);
        // Leaf encoding of OpenZeppelin's StandardMerkleTree: the double hash keeps a leaf from
        // ever being read as an inner node (a second-preimage attack).
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))));
        if (!MerkleProof.verifyCalldata(proof, e.payoutsRoot, leaf)) {
            revert InvalidProof(epoch, account, cumulativeAmount);
        }
        uint256 already = claimed[account];
        if (cumulativeAmount <= already) revert NothingToClaim(account, already, cumulativeAmount);
        amount = cumulativeAmount - already;
        uint256 available = totalFunded - totalClaimed;
        if (amount > available) revert ExceedsFunded(available, amount);
        claimed[account] = cumulativeAmount;
        totalClaimed += amount;
        emit Claimed(epoch, account, amount, cumulativeAmount);
        token.safeTransfer(account, amount);
    }

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @notice The epoch's settlement record.
    function epochOf(uint256 epoch) external view returns (Epoch memory) {
        return _epochs[epoch];
    }

    /// @notice True when claims may use the epoch's root (finalized, or posted with its window
    /// passed and no challenge open).
    function isFinal(uint256 epoch) public view returns (bool) {
        Epoch storage e = _epochs[epoch];
        return e.status == Status.Finalized
            || (e.status == Status.Posted && block.timestamp >= e.postedAt + challengeWindow);
    }

    /// @notice What a claim of `cumulativeAmount` would pay `account` (the proof is not checked).
    function claimable(address account, uint256 cumulativeAmount) external view returns (uint256) {
        uint256 already = claimed[account];
        return cumulativeAmount > already ? cumulativeAmount - already : 0;
    }

    // ---------------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------------

    function _finalize(uint256 epoch) private {
        Epoch storage e = _epochs[epoch];
        if (!isFinal(epoch) || e.status == Status.Finalized) revert EpochNotFinal(epoch, e.status);
        e.status = Status.Finalized;
        totalFunded += e.total;
        // A corrected re-post may distribute less than was pulled for the epoch; what it leaves
        // would otherwise be stranded here.
        uint256 surplus = e.held - e.total;
        emit EpochFinalized(epoch, e.total, surplus);
        if (surplus != 0) token.safeTransfer(treasury, surplus);
    }
}
