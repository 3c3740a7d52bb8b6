// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title Staked agents
/// @notice An agent is a named composition of models, adapters, retrieval and a prompt, served
/// by nodes as a model of its own. Its specification lives off-chain as canonical JSON; this
/// contract holds its hash, its owner and the OPEN staked behind it. Launching needs at least
/// `minStake`; a node serves only agents whose stake is at least the current minimum.
///
/// The stake answers for the agent's behaviour. A proven failure slashes it: an evaluation
/// challenge upheld by the arbiter (the challenger posts a bond, gets it back with a share of the
/// slash when upheld, loses it to the agent's owner when rejected) or a governance decision (the
/// Timelock holds `SLASHER_ROLE`). Slashed OPEN goes to the treasury.
///
/// Unstaking takes an unbonding period, during which the amount is still slashable and cannot be
/// withdrawn while a challenge is open, so that an owner cannot pull the stake out from under a
/// challenge or a vote.
contract AgentStaking is AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant PARAMS_ROLE = keccak256("PARAMS_ROLE");
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    uint16 public constant BPS = 10_000;

    struct Agent {
        address owner;
        /// sha256 of the canonical JSON specification
        bytes32 specHash;
        /// staked, earning the right to be served, slashable
        uint256 stake;
        /// requested back, still slashable, withdrawable from `releaseAt`
        uint256 unbonding;
        uint64 releaseAt;
        uint64 launchedAt;
        uint32 openChallenges;
        /// the owner unbonded everything: no longer served, the name stays taken
        bool retired;
        string name;
    }

    struct Challenge {
        uint256 agentId;
        address challenger;
        bytes32 evidenceHash;
        uint256 bond;
        bool open;
    }

    IERC20 public immutable token;
    address public immutable treasury;

    uint256 public minStake;
    uint64 public unbondingPeriod;
    uint256 public challengeBond;
    /// @notice The part of an agent's stake (and unbonding amount) an upheld challenge slashes.
    uint16 public challengeSlashBps;
    /// @notice The challenger's part of what an upheld challenge slashes.
    uint16 public reporterShareBps;

    uint256 public agentCount;
    uint256 public challengeCount;
    mapping(uint256 agentId => Agent) private _agents;
    mapping(uint256 challengeId => Challenge) private _challenges;
    /// @notice The agent with a given name (keccak256 of it), 0 when none.
    mapping(bytes32 nameHash => uint256 agentId) public agentOfName;

    event AgentLaunched(uint256 indexed agentId, address indexed owner, string name, bytes32 specHash, uint256 stake);
    event SpecUpdated(uint256 indexed agentId, bytes32 specHash);
    event StakeAdded(uint256 indexed agentId, address indexed from, uint256 amount, uint256 stake);
    event UnbondRequested(uint256 indexed agentId, uint256 amount, uint256 stake, uint64 releaseAt);
    event Withdrawn(uint256 indexed agentId, address indexed to, uint256 amount);
    event Slashed(uint256 indexed agentId, uint256 amount, bytes32 reasonHash, address indexed by);
    event Challenged(uint256 indexed challengeId, uint256 indexed agentId, address indexed challenger, bytes32 evidenceHash);
    event ChallengeResolved(uint256 indexed challengeId, uint256 indexed agentId, bool upheld, uint256 slashed);
    event ParametersSet(
        uint256 minStake, uint64 unbondingPeriod, uint256 challengeBond, uint16 challengeSlashBps, uint16 reporterShareBps
    );

    error ZeroAddress();
    error ZeroAmount();
    error InvalidName(string name);
    error NameTaken(string name, uint256 agentId);
    error UnknownAgent(uint256 agentId);
    error NotAgentOwner(uint256 agentId, address account);
    error BelowMinimumStake(uint256 stake, uint256 minStake);
    error InsufficientStake(uint256 stake, uint256 wanted);
    error AgentRetired(uint256 agentId);
    error NothingToWithdraw(uint256 agentId);
    error StillUnbonding(uint64 releaseAt);
    error ChallengeOpen(uint256 agentId, uint32 openChallenges);
    error UnknownChallenge(uint256 challengeId);
    error ChallengeClosed(uint256 challengeId);
    error InvalidParameters();

    /// @param governor administers the roles and holds PARAMS_ROLE and SLASHER_ROLE (the Timelock)
    /// @param arbiter resolves evaluation challenges (ARBITER_ROLE)
    constructor(
        IERC20 token_,
        address treasury_,
        address governor,
        address arbiter,
        uint256 minStake_,
        uint64 unbondingPeriod_,
        uint256 challengeBond_,
        uint16 challengeSlashBps_,
        uint16 reporterShareBps_
    ) {
        if (address(token_) == address(0) || treasury_ == address(0) || governor == address(0)) revert ZeroAddress();
        token = token_;
        treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, governor);
        _grantRole(PARAMS_ROLE, governor);
        _grantRole(SLASHER_ROLE, governor);
        if (arbiter != address(0)) _grantRole(ARBITER_ROLE, arbiter);
        _setParameters(minStake_, unbondingPeriod_, challengeBond_, challengeSlashBps_, reporterShareBps_);
    }

    // ---------------------------------------------------------------------------------------------
    // Owners
    // ---------------------------------------------------------------------------------------------

    /// @notice Launches an agent named `name` (lower-case letters, digits and '-', 3 to 48
    /// characters, unique) with `amount` OPEN (approved to this contract) at stake.
    function launch(string calldata name, bytes32 specHash, uint256 amount) external nonReentrant returns (uint256 id) {
        _checkName(name);
        bytes32 nameHash = keccak256(bytes(name));
        if (agentOfName[nameHash] != 0) revert NameTaken(name, agentOfName[nameHash]);
        if (amount < minStake || amount == 0) revert BelowMinimumStake(amount, minStake);
        id = ++agentCount;
        agentOfName[nameHash] = id;
        Agent storage a = _agents[id];
        a.owner = msg.sender;
        a.specHash = specHash;
        a.stake = amount;
        a.launchedAt = uint64(block.timestamp);
        a.name = name;
        emit AgentLaunched(id, msg.sender, name, specHash, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Points the agent at a new specification. Its owner only.
    function updateSpec(uint256 agentId, bytes32 specHash) external {
        Agent storage a = _owned(agentId);
        if (a.retired) revert AgentRetired(agentId);
        a.specHash = specHash;
        emit SpecUpdated(agentId, specHash);
    }

    /// @notice Adds `amount` OPEN to a live agent's stake (anyone may back an agent; only its
    /// owner can take stake out).
    function addStake(uint256 agentId, uint256 amount) external nonReentrant {
        Agent storage a = _existing(agentId);
        if (a.retired) revert AgentRetired(agentId);
        if (amount == 0) revert ZeroAmount();
        a.stake += amount;
        emit StakeAdded(agentId, msg.sender, amount, a.stake);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Starts unbonding `amount` of the stake. What stays must be at least `minStake`, or
    /// nothing: unbonding everything retires the agent. A second request adds to the first and
    /// restarts the period.
    function requestUnbond(uint256 agentId, uint256 amount) external {
        Agent storage a = _owned(agentId);
        if (amount == 0) revert ZeroAmount();
        if (amount > a.stake) revert InsufficientStake(a.stake, amount);
        uint256 left = a.stake - amount;
        if (left != 0 && left < minStake) revert BelowMinimumStake(left, minStake);
        a.stake = left;
        a.unbonding += amount;
        a.releaseAt = uint64(block.timestamp) + unbondingPeriod;
        if (left == 0) a.retired = true;
        emit UnbondRequested(agentId, amount, left, a.releaseAt);
    }

    /// @notice Pays the unbonded amount to the owner once the period has passed and no challenge
    /// is open.
    function withdraw(uint256 agentId) external nonReentrant {
        Agent storage a = _owned(agentId);
        uint256 amount = a.unbonding;
        if (amount == 0) revert NothingToWithdraw(agentId);
        if (block.timestamp < a.releaseAt) revert StillUnbonding(a.releaseAt);
        if (a.openChallenges != 0) revert ChallengeOpen(agentId, a.openChallenges);
        a.unbonding = 0;
        emit Withdrawn(agentId, msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------------------------------------
    // Proven failures
    // ---------------------------------------------------------------------------------------------

    /// @notice Slashes up to `amount` of the agent's stake, then of its unbonding amount, to the
    /// treasury. SLASHER_ROLE (the Timelock: a governance decision) only.
    function slash(uint256 agentId, uint256 amount, bytes32 reasonHash)
        external
        onlyRole(SLASHER_ROLE)
        nonReentrant
        returns (uint256 slashed)
    {
        _existing(agentId);
        if (amount == 0) revert ZeroAmount();
        slashed = _take(agentId, amount);
        emit Slashed(agentId, slashed, reasonHash, msg.sender);
        if (slashed != 0) token.safeTransfer(treasury, slashed);
    }

    /// @notice Challenges an agent's behaviour with `challengeBond` OPEN (approved to this
    /// contract); `evidenceHash` names the evidence (e.g. the sha256 of an evaluation report).
    function challenge(uint256 agentId, bytes32 evidenceHash) external nonReentrant returns (uint256 id) {
        Agent storage a = _existing(agentId);
        id = ++challengeCount;
        _challenges[id] = Challenge(agentId, msg.sender, evidenceHash, challengeBond, true);
        a.openChallenges += 1;
        emit Challenged(id, agentId, msg.sender, evidenceHash);
        if (challengeBond != 0) token.safeTransferFrom(msg.sender, address(this), challengeBond);
    }

    /// @notice Resolves a challenge. Upheld: `challengeSlashBps` of the agent's stake and
    /// unbonding amount is slashed, the challenger gets the bond back and `reporterShareBps` of
    /// the slash, the treasury the rest. Rejected: the bond goes to the agent's owner.
    /// ARBITER_ROLE only.
    function resolveChallenge(uint256 challengeId, bool upheld)
        external
        onlyRole(ARBITER_ROLE)
        nonReentrant
        returns (uint256 slashed)
    {
        Challenge storage c = _challenges[challengeId];
        if (c.challenger == address(0)) revert UnknownChallenge(challengeId);
        if (!c.open) revert ChallengeClosed(challengeId);
        c.open = false;
        Agent storage a = _agents[c.agentId];
        a.openChallenges -= 1;
        uint256 bond = c.bond;
        if (upheld) {
            slashed = _take(c.agentId, ((a.stake + a.unbonding) * challengeSlashBps) / BPS);
            uint256 reward = (slashed * reporterShareBps) / BPS;
            emit Slashed(c.agentId, slashed, c.evidenceHash, msg.sender);
            emit ChallengeResolved(challengeId, c.agentId, true, slashed);
            if (bond + reward != 0) token.safeTransfer(c.challenger, bond + reward);
            if (slashed - reward != 0) token.safeTransfer(treasury, slashed - reward);
        } else {
            emit ChallengeResolved(challengeId, c.agentId, false, 0);
            if (bond != 0) token.safeTransfer(a.owner, bond);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Governance
    // ---------------------------------------------------------------------------------------------

    /// @notice Sets the minimum stake, the unbonding period (for requests from now on), the
    /// challenge bond and the slashing shares. PARAMS_ROLE (the Timelock) only.
    function setParameters(
        uint256 minStake_,
        uint64 unbondingPeriod_,
        uint256 challengeBond_,
        uint16 challengeSlashBps_,
        uint16 reporterShareBps_
    ) external onlyRole(PARAMS_ROLE) {
        _setParameters(minStake_, unbondingPeriod_, challengeBond_, challengeSlashBps_, reporterShareBps_);
    }

    /// @notice Sets only the minimum stake. PARAMS_ROLE (the Timelock) only.
    function setMinStake(uint256 minStake_) external onlyRole(PARAMS_ROLE) {
        _setParameters(minStake_, unbondingPeriod, challengeBond, challengeSlashBps, reporterShareBps);
    }

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    function agent(uint256 agentId) external view returns (Agent memory) {
        return _agents[agentId];
    }

    function challengeOf(uint256 challengeId) external view returns (Challenge memory) {
        return _challenges[challengeId];
    }

    /// @notice Whether nodes may serve the agent: not retired and staked at least `minStake`.
    function isActive(uint256 agentId) external view returns (bool) {
        Agent storage a = _agents[agentId];
        return a.owner != address(0) && !a.retired && a.stake >= minStake && a.stake != 0;
    }

    // ---------------------------------------------------------------------------------------------

    function _take(uint256 agentId, uint256 amount) private returns (uint256 taken) {
        Agent storage a = _agents[agentId];
        uint256 fromStake = amount < a.stake ? amount : a.stake;
        a.stake -= fromStake;
        uint256 rest = amount - fromStake;
        uint256 fromUnbonding = rest < a.unbonding ? rest : a.unbonding;
        a.unbonding -= fromUnbonding;
        return fromStake + fromUnbonding;
    }

    function _existing(uint256 agentId) private view returns (Agent storage a) {
        a = _agents[agentId];
        if (a.owner == address(0)) revert UnknownAgent(agentId);
    }

    function _owned(uint256 agentId) private view returns (Agent storage a) {
        a = _existing(agentId);
        if (a.owner != msg.sender) revert NotAgentOwner(agentId, msg.sender);
    }

    function _setParameters(
        uint256 minStake_,
        uint64 unbondingPeriod_,
        uint256 challengeBond_,
        uint16 challengeSlashBps_,
        uint16 reporterShareBps_
    ) private {
        if (minStake_ == 0 || challengeSlashBps_ > BPS || reporterShareBps_ > BPS) revert InvalidParameters();
        minStake = minStake_;
        unbondingPeriod = unbondingPeriod_;
        challengeBond = challengeBond_;
        challengeSlashBps = challengeSlashBps_;
        reporterShareBps = reporterShareBps_;
        emit ParametersSet(minStake_, unbondingPeriod_, challengeBond_, challengeSlashBps_, reporterShareBps_);
    }

    function _checkName(string calldata name) private pure {
        bytes calldata b = bytes(name);
        if (b.length < 3 || b.length > 48) revert InvalidName(name);
        for (uint256 i = 0; i < b.length; ++i) {
            bytes1 c = b[i];
            bool ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || (c == 0x2d && i != 0 && i != b.length - 1);
            if (!ok) revert InvalidName(name);
        }
    }
}
