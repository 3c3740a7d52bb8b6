// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @notice The views of the ModelRegistry a proposal's winning model is checked against.
interface IPublishedModels {
    struct DatanetVersion {
        uint256 datanetId;
        uint256 version;
    }

    function modelCount() external view returns (uint256);
    function ownerOf(uint256 id) external view returns (address);
    function datanetVersionsOf(uint256 id) external view returns (DatanetVersion[] memory);
}

/// @title Model proposals (bounties for models)
/// @notice A proposal asks for a model: a goal (described off-chain, by hash), a datanet the model
/// must be trained on, and an evaluation bar (a metric, named in the description, and a score the
/// model must reach: at least `bar` when `higherIsBetter`, at most `bar` otherwise, in the
/// metric's units × 10^6). Anyone funds it with OPEN until its deadline.
///
/// A builder who publishes a model trained on that datanet asks a node to evaluate it; the node's
/// evaluator (EVALUATOR_ROLE) submits the score and the report's hash. A score that meets the bar
/// opens a challenge window: anyone may dispute the evaluation with a bond, and the arbiter
/// (ARBITER_ROLE) rules. Unchallenged, or with the challenge rejected, the model's holder claims
/// the funds once the window has closed; an upheld challenge voids the submission (and returns
/// the challenger's bond), a rejected one pays the bond to the builder.
///
/// A proposal that ends without a winner (its deadline passed with no submission standing, or it
/// never reached `minFunding`), or that its creator cancels before any submission, refunds every
/// funder what they put in.
contract ModelProposals is AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant EVALUATOR_ROLE = keccak256("EVALUATOR_ROLE");
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");

    enum Status {
        None,
        Open,
        Submitted,
        Challenged,
        Paid,
        Cancelled
    }

    struct Proposal {
        address creator;
        /// sha256 of the canonical JSON description (title, goal, metric, evaluation set)
        bytes32 specHash;
        uint256 datanetId;
        /// the score to reach, in the metric's units × 10^6
        uint256 bar;
        bool higherIsBetter;
        uint64 deadline;
        uint256 minFunding;
        uint256 funded;
        Status status;
        uint256 modelId;
        uint256 score;
        bytes32 reportHash;
        uint64 challengeEndsAt;
        address challenger;
        uint256 challengerBond;
    }

    IERC20 public immutable token;
    IPublishedModels public immutable modelRegistry;
    uint64 public immutable challengeWindow;
    uint256 public immutable challengeBond;

    uint256 public proposalCount;
    mapping(uint256 id => Proposal) private _proposals;
    mapping(uint256 id => mapping(address funder => uint256)) public fundedBy;

    event ProposalCreated(
        uint256 indexed id,
        address indexed creator,
        bytes32 specHash,
        uint256 indexed datanetId,
        uint256 bar,
        bool higherIsBetter,
        uint64 deadline,
        uint256 minFunding
    );
    event Funded(uint256 indexed id, address indexed funder, uint256 amount, uint256 funded);
    event Submitted(uint256 indexed id, uint256 indexed modelId, uint256 score, bytes32 reportHash, uint64 challengeEndsAt);
    event SubmissionChallenged(uint256 indexed id, address indexed challenger, bytes32 evidenceHash);
    event ChallengeResolved(uint256 indexed id, bool upheld);
    event Claimed(uint256 indexed id, uint256 indexed modelId, address indexed builder, uint256 amount);
    event Cancelled(uint256 indexed id);
    event Refunded(uint256 indexed id, address indexed funder, uint256 amount);

    error ZeroAddress();
    error ZeroAmount();
    error InvalidDeadline(uint64 deadline);
    error UnknownProposal(uint256 id);
    error NotOpen(uint256 id, Status status);
    error DeadlinePassed(uint256 id, uint64 deadline);
    error Underfunded(uint256 id, uint256 funded, uint256 minFunding);
    error UnknownModel(uint256 modelId);
    error WrongDatanet(uint256 modelId, uint256 datanetId);
    error BarNotMet(uint256 score, uint256 bar, bool higherIsBetter);
    error ChallengeWindowClosed(uint256 id, uint64 closedAt);
    error ChallengeWindowOpen(uint256 id, uint64 closesAt);
    error NotChallenged(uint256 id);
    error NotSubmitted(uint256 id, Status status);
    error NotCreator(uint256 id, address account);
    error NotRefundable(uint256 id, Status status);
    error NothingToRefund(uint256 id, address funder);

    /// @param admin administers the roles (the Timelock)
    /// @param evaluator the node whose evaluator attests scores (EVALUATOR_ROLE)
    /// @param arbiter rules on challenged evaluations (ARBITER_ROLE)
    constructor(
        IERC20 token_,
        IPublishedModels modelRegistry_,
        address admin,
        address evaluator,
        address arbiter,
        uint64 challengeWindow_,
        uint256 challengeBond_
    ) {
        if (address(token_) == address(0) || address(modelRegistry_) == address(0) || admin == address(0)) {
            revert ZeroAddress();
        }
        token = token_;
        modelRegistry = modelRegistry_;
        challengeWindow = challengeWindow_;
        challengeBond = challengeBond_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (evaluator != address(0)) _grantRole(EVALUATOR_ROLE, evaluator);
        if (arbiter != address(0)) _grantRole(ARBITER_ROLE, arbiter);
    }

    /// @notice Creates a proposal, funded with `initialFunding` OPEN (approved; may be zero).
    function create(
        bytes32 specHash,
        uint256 datanetId,
        uint256 bar,
        bool higherIsBetter,
        uint64 deadline,
        uint256 minFunding,
        uint256 initialFunding
    ) external nonReentrant returns (uint256 id) {
        if (deadline <= block.timestamp) revert InvalidDeadline(deadline);
        id = ++proposalCount;
        Proposal storage p = _proposals[id];
        p.creator = msg.sender;
        p.specHash = specHash;
        p.datanetId = datanetId;
        p.bar = bar;
        p.higherIsBetter = higherIsBetter;
        p.deadline = deadline;
        p.minFunding = minFunding;
        p.status = Status.Open;
        emit ProposalCreated(id, msg.sender, specHash, datanetId, bar, higherIsBetter, deadline, minFunding);
        if (initialFunding != 0) _fund(id, p, initialFunding);
    }

    /// @notice Adds `amount` OPEN (approved) to an open proposal before its deadline.
    function fund(uint256 id, uint256 amount) external nonReentrant {
        Proposal storage p = _existing(id);
        if (p.status != Status.Open) revert NotOpen(id, p.status);
        if (block.timestamp >= p.deadline) revert DeadlinePassed(id, p.deadline);
        if (amount == 0) revert ZeroAmount();
        _fund(id, p, amount);
    }

    /// @notice Records that model `modelId` scored `score` on the proposal's evaluation (report
    /// `reportHash`) and, the bar being met, opens the challenge window. EVALUATOR_ROLE only.
    function submit(uint256 id, uint256 modelId, uint256 score, bytes32 reportHash)
        external
        onlyRole(EVALUATOR_ROLE)
    {
        Proposal storage p = _existing(id);
        if (p.status != Status.Open) revert NotOpen(id, p.status);
        if (block.timestamp >= p.deadline) revert DeadlinePassed(id, p.deadline);
        if (p.funded < p.minFunding || p.funded == 0) revert Underfunded(id, p.funded, p.minFunding);
        if (modelId == 0 || modelId > modelRegistry.modelCount()) revert UnknownModel(modelId);
        if (!_usesDatanet(modelId, p.datanetId)) revert WrongDatanet(modelId, p.datanetId);
        if (p.higherIsBetter ? score < p.bar : score > p.bar) revert BarNotMet(score, p.bar, p.higherIsBetter);
        p.status = Status.Submitted;
        p.modelId = modelId;
        p.score = score;
        p.reportHash = reportHash;
        p.challengeEndsAt = uint64(block.timestamp) + challengeWindow;
        emit Submitted(id, modelId, score, reportHash, p.challengeEndsAt);
    }

    /// @notice Disputes a submitted evaluation with `challengeBond` OPEN (approved), within the window.
    function challenge(uint256 id, bytes32 evidenceHash) external nonReentrant {
        Proposal storage p = _existing(id);
        if (p.status != Status.Submitted) revert NotSubmitted(id, p.status);
        if (block.timestamp >= p.challengeEndsAt) revert ChallengeWindowClosed(id, p.challengeEndsAt);
        p.status = Status.Challenged;
        p.challenger = msg.sender;
        p.challengerBond = challengeBond;
        emit SubmissionChallenged(id, msg.sender, evidenceHash);
        if (challengeBond != 0) token.safeTransferFrom(msg.sender, address(this), challengeBond);
    }

    /// @notice Rules on a challenged evaluation. Upheld: the submission is void, the proposal open
    /// again, the bond returned. Rejected: the submission stands (claimable at once) and the bond
    /// goes to the model's holder. ARBITER_ROLE only.
    function resolve(uint256 id, bool upheld) external onlyRole(ARBITER_ROLE) nonReentrant {
        Proposal storage p = _existing(id);
        if (p.status != Status.Challenged) revert NotChallenged(id);
        address challenger = p.challenger;
        uint256 bond = p.challengerBond;
        p.challenger = address(0);
        p.challengerBond = 0;
        emit ChallengeResolved(id, upheld);
        if (upheld) {
            p.status = Status.Open;
            p.modelId = 0;
            p.score = 0;
            p.reportHash = bytes32(0);
            p.challengeEndsAt = 0;
            if (bond != 0) token.safeTransfer(challenger, bond);
        } else {
            p.status = Status.Submitted;
            p.challengeEndsAt = uint64(block.timestamp);
            if (bond != 0) token.safeTransfer(modelRegistry.ownerOf(p.modelId), bond);
        }
    }

    /// @notice Pays the funds to the holder of the winning model once the challenge window has
    /// closed. Anyone may call it; the funds go to the model's holder.
    function claim(uint256 id) external nonReentrant {
        Proposal storage p = _existing(id);
        if (p.status != Status.Submitted) revert NotSubmitted(id, p.status);
        if (block.timestamp < p.challengeEndsAt) revert ChallengeWindowOpen(id, p.challengeEndsAt);
        p.status = Status.Paid;
        uint256 amount = p.funded;
        address builder = modelRegistry.ownerOf(p.modelId);
        emit Claimed(id, p.modelId, builder, amount);
        token.safeTransfer(builder, amount);
    }

    /// @notice Cancels an open proposal with no standing submission. Its creator only.
    function cancel(uint256 id) external {
        Proposal storage p = _existing(id);
        if (p.creator != msg.sender) revert NotCreator(id, msg.sender);
        if (p.status != Status.Open) revert NotOpen(id, p.status);
        p.status = Status.Cancelled;
        emit Cancelled(id);
    }

    /// @notice Returns the caller's funding of a cancelled proposal, or of one whose deadline has
    /// passed without a submission standing.
    function refund(uint256 id) external nonReentrant {
        Proposal storage p = _existing(id);
        if (!refundable(id)) revert NotRefundable(id, p.status);
        uint256 amount = fundedBy[id][msg.sender];
        if (amount == 0) revert NothingToRefund(id, msg.sender);
        fundedBy[id][msg.sender] = 0;
        p.funded -= amount;
        emit Refunded(id, msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @notice Whether funders may take their funding back.
    function refundable(uint256 id) public view returns (bool) {
        Proposal storage p = _proposals[id];
        return p.status == Status.Cancelled || (p.status == Status.Open && block.timestamp >= p.deadline);
    }

    function proposal(uint256 id) external view returns (Proposal memory) {
        return _proposals[id];
    }

    function _fund(uint256 id, Proposal storage p, uint256 amount) private {
        p.funded += amount;
        fundedBy[id][msg.sender] += amount;
        emit Funded(id, msg.sender, amount, p.funded);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    function _usesDatanet(uint256 modelId, uint256 datanetId) private view returns (bool) {
        IPublishedModels.DatanetVersion[] memory versions = modelRegistry.datanetVersionsOf(modelId);
        for (uint256 i = 0; i < versions.length; ++i) {
            if (versions[i].datanetId == datanetId) return true;
        }
        return false;
    }

    function _existing(uint256 id) private view returns (Proposal storage p) {
        p = _proposals[id];
        if (p.status == Status.None) revert UnknownProposal(id);
    }
}
