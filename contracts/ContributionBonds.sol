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

/// @notice The part of DatanetRegistry this contract reads: owners, curators and row proofs.
interface IDatanetRegistryRows {
    /// @dev `policy` is DatanetRegistry's `Policy` enum, ABI-encoded as a uint8.
    struct Datanet {
        address owner;
        uint8 policy;
        bytes32 metadataHash;
    }

    function datanet(uint256 id) external view returns (Datanet memory);
    function isCurator(uint256 id, address account) external view returns (bool);
    function verifyRow(
        uint256 id,
        uint256 version_,
        bytes32 rowHash,
        address contributor,
        bytes32 contributionId,
        bytes32[] calldata proof
    ) external view returns (bool);
}

/// @title Contribution bonds and data-quality penalties
/// @notice Contributors may bond OPEN on a contribution to a datanet; a contribution found bad
/// costs its contributor the bond and adds to a penalty score, and an account whose score reaches
/// `penaltyThreshold` gets no contributor share of future fees (`rewardsCut`).
///
/// Two ways a contribution is found bad:
/// - Malicious (`slashMalicious`): the datanet's owner or one of its curators rejects it. This is
///   a judgement, not a proof, so it needs a bond: the bond is the contributor's own on-chain
///   statement that it made the contribution, which stops a curator from penalizing arbitrary
///   accounts. The whole bond goes to the treasury, not to the curator, so that slashing never
///   pays the one who decides it.
/// - Duplicate (`slashDuplicate`): anyone proves, with two DatanetRegistry row proofs, that the
///   same row (same row hash) was already in an EARLIER committed version under a different
///   contribution id, i.e. the later contribution re-uploaded an existing row (one's own or
///   someone else's). The proof is objective, so it needs no bond: the penalty applies either
///   way, and a bond, if any, is slashed with `reporterShareBps` to the reporter (who paid the
///   gas and found it) and the rest to the treasury. Versions are ordered by number; two
///   contributions holding the same row within one version cannot be ordered and each can be
///   proven against the other only once either appears in a later version (the node's ingest
///   deduplicates rows, so its own versions do not hold such pairs).
///
/// A contribution is `(datanetId, contributionId, contributor)`, as in a row's Merkle leaf. Each
/// is slashed at most once. Bonds leave only through `requestUnbond` then, `unbondDelay` seconds
/// later, `unbond`: a bond cannot vanish right before a slash, which stays possible during the
/// delay. Scores only grow; the parameters (governance later) are held by `PARAMS_ROLE`.
///
/// Every action a wallet takes also has a relayed form, so a node can submit it and pay the gas:
/// `bondWithPermit` (an ERC-2612 permit of OPEN instead of an approval), `requestUnbondWithSig`
/// and `slashMaliciousWithSig` (EIP-712 signatures with per-signer nonces, as the registries),
/// and `unbond`, which anyone may call for a contributor since the bond only ever goes back to it.
contract ContributionBonds is AccessControl, ReentrancyGuard, EIP712, Nonces {
    using SafeERC20 for IERC20;

    /// @notice Sets the penalty parameters, the reporter share, the unbond delay and the treasury.
    bytes32 public constant PARAMS_ROLE = keccak256("PARAMS_ROLE");
    /// @notice Basis points in a whole.
    uint16 public constant BPS = 10_000;
    /// @notice EIP-712 type of a relayed `requestUnbond`.
    bytes32 public constant REQUEST_UNBOND_TYPEHASH = keccak256(
        "RequestUnbond(address contributor,uint256 datanetId,bytes32 contributionId,uint256 nonce,uint256 deadline)"
    );
    /// @notice EIP-712 type of a relayed `slashMalicious`.
    bytes32 public constant SLASH_MALICIOUS_TYPEHASH = keccak256(
        "SlashMalicious(address curator,uint256 datanetId,bytes32 contributionId,address contributor,bytes32 reasonHash,uint256 nonce,uint256 deadline)"
    );

    /// @notice A contributor's bond on one contribution.
    /// @param amount OPEN wei bonded
    /// @param unlockAt when `unbond` may take it (zero while no unbond is requested)
    struct Bond {
        uint256 amount;
        uint64 unlockAt;
    }

    /// @notice One side of a duplicate proof: a row's leaf in a committed version and its proof.
    struct RowProof {
        uint256 version;
        address contributor;
        bytes32 contributionId;
        bytes32[] proof;
    }

    /// @notice The token bonds are held in (OPEN).
    IERC20 public immutable token;
    /// @notice The registry whose owners, curators and version roots decide slashes.
    IDatanetRegistryRows public immutable registry;

    /// @notice Score added to a contributor per slashed contribution.
    uint64 public penaltyPerSlash;
    /// @notice Score at which a contributor's future contributor share is cut (never zero).
    uint64 public penaltyThreshold;
    /// @notice Share of a duplicate's slashed bond paid to the reporter, in basis points.
    uint16 public reporterShareBps;
    /// @notice Seconds between `requestUnbond` and `unbond`.
    uint64 public unbondDelay;
    /// @notice Receives slashed bonds (all of a malicious one, the non-reporter part of a duplicate's).
    address public treasury;

    mapping(uint256 datanetId => mapping(bytes32 contributionId => mapping(address contributor => Bond)))
        private _bonds;
    mapping(uint256 datanetId => mapping(bytes32 contributionId => mapping(address contributor => bool)))
        private _slashed;
    /// @notice Each contributor's penalty score.
    mapping(address contributor => uint256) public penaltyScore;

    event Bonded(
        uint256 indexed datanetId, bytes32 indexed contributionId, address indexed contributor, uint256 amount, uint256 bond
    );
    event UnbondRequested(
        uint256 indexed datanetId, bytes32 indexed contributionId, address indexed contributor, uint64 unlockAt
    );
    event Unbonded(
        uint256 indexed datanetId, bytes32 indexed contributionId, address indexed contributor, uint256 amount
    );
    /// @notice The datanet's owner or a curator rejected the contribution as malicious.
    event SlashedMalicious(
        uint256 indexed datanetId,
        bytes32 indexed contributionId,
        address indexed contributor,
        address curator,
        bytes32 reasonHash,
        uint256 slashed,
        uint256 penaltyScore
    );
    /// @notice `reporter` proved the contribution re-uploaded `rowHash`, which `earlierContributionId`
    /// held in `earlierVersion`.
    event SlashedDuplicate(
        uint256 indexed datanetId,
        bytes32 indexed contributionId,
        address indexed contributor,
        address reporter,
        bytes32 rowHash,
        uint256 earlierVersion,
        bytes32 earlierContributionId,
        uint256 slashed,
        uint256 toReporter,
        uint256 penaltyScore
    );
    event ParametersSet(
        uint64 penaltyPerSlash, uint64 penaltyThreshold, uint16 reporterShareBps, uint64 unbondDelay, address treasury
    );

    error ZeroAddress();
    error ZeroAmount();
    error InvalidParameters();
    error NotOwnerOrCurator(uint256 datanetId, address account);
    error NotBonded(uint256 datanetId, bytes32 contributionId, address contributor);
    error AlreadySlashed(uint256 datanetId, bytes32 contributionId, address contributor);
    error UnbondNotRequested(uint256 datanetId, bytes32 contributionId, address contributor);
    error BondLocked(uint256 datanetId, bytes32 contributionId, address contributor, uint64 unlockAt);
    error NotLater(uint256 laterVersion, uint256 earlierVersion);
    error SameContribution(bytes32 contributionId);
    error InvalidRowProof(uint256 datanetId, uint256 version);
    error ExpiredSignature(uint256 deadline);
    error InvalidSignature(address signer);

    /// @param token_ the OPEN token
    /// @param registry_ the DatanetRegistry
    /// @param admin grants and revokes roles (and holds `PARAMS_ROLE` to begin with)
    /// @param treasury_ receives slashed bonds
    /// @param penaltyPerSlash_ score added per slash
    /// @param penaltyThreshold_ score at which rewards are cut (not zero: that would cut everyone)
    /// @param reporterShareBps_ reporter's share of a duplicate's slashed bond (at most `BPS`)
    /// @param unbondDelay_ seconds from an unbond request to the unbond
    constructor(
        IERC20 token_,
        IDatanetRegistryRows registry_,
        address admin,
        address treasury_,
        uint64 penaltyPerSlash_,
        uint64 penaltyThreshold_,
        uint16 reporterShareBps_,
        uint64 unbondDelay_
    ) EIP712("OpenLedger ContributionBonds", "1") {
        if (address(token_) == address(0) || address(registry_) == address(0) || admin == address(0)) {
            revert ZeroAddress();
        }
        token = token_;
        registry = registry_;
        _setParameters(penaltyPerSlash_, penaltyThreshold_, reporterShareBps_, unbondDelay_, treasury_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMS_ROLE, admin);
    }

    // ---------------------------------------------------------------------------------------------
    // Bonds
    // ---------------------------------------------------------------------------------------------

    /// @notice Adds `amount` of the caller's OPEN (approved to this contract first) to its bond on
    /// contribution `contributionId` to datanet `datanetId`. Adding cancels a pending unbond
    /// request: the bond is meant to stay.
    function bond(uint256 datanetId, bytes32 contributionId, uint256 amount) external nonReentrant {
        _bond(msg.sender, datanetId, contributionId, amount);
    }

    /// @notice `bond` for `contributor`, who signed an ERC-2612 permit of `amount` OPEN to this
    /// contract instead of approving it. A permit that fails (e.g. someone submitted it first) is
    /// ignored: the transfer then needs the allowance to be there already, and fails without it.
    function bondWithPermit(
        address contributor,
        uint256 datanetId,
        bytes32 contributionId,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant {
        try IERC20Permit(address(token)).permit(contributor, address(this), amount, deadline, v, r, s) {} catch {}
        _bond(contributor, datanetId, contributionId, amount);
    }

    /// @notice Starts the delay after which the caller may take its whole bond on the contribution back.
    function requestUnbond(uint256 datanetId, bytes32 contributionId) external {
        _requestUnbond(msg.sender, datanetId, contributionId);
    }

    /// @notice `requestUnbond` on behalf of `contributor`, who signed `RequestUnbond`.
    function requestUnbondWithSig(
        address contributor,
        uint256 datanetId,
        bytes32 contributionId,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkSignature(
            contributor,
            keccak256(
                abi.encode(
                    REQUEST_UNBOND_TYPEHASH, contributor, datanetId, contributionId, _useNonce(contributor), deadline
                )
            ),
            deadline,
            signature
        );
        _requestUnbond(contributor, datanetId, contributionId);
    }

    /// @notice Pays `contributor` its whole bond on the contribution once the requested delay has
    /// passed. Anyone may call it: the bond only ever goes to `contributor`.
    function unbond(uint256 datanetId, bytes32 contributionId, address contributor) external nonReentrant {
        Bond storage b = _bonds[datanetId][contributionId][contributor];
        uint256 amount = b.amount;
        if (amount == 0) revert NotBonded(datanetId, contributionId, contributor);
        uint64 unlockAt = b.unlockAt;
        if (unlockAt == 0) revert UnbondNotRequested(datanetId, contributionId, contributor);
        if (block.timestamp < unlockAt) revert BondLocked(datanetId, contributionId, contributor, unlockAt);
        delete _bonds[datanetId][contributionId][contributor];
        emit Unbonded(datanetId, contributionId, contributor, amount);
        token.safeTransfer(contributor, amount);
    }

    // ---------------------------------------------------------------------------------------------
    // Slashes
    // ---------------------------------------------------------------------------------------------

    /// @notice Rejects a bonded contribution as malicious: its whole bond goes to the treasury and
    /// the contributor's score grows by `penaltyPerSlash`. The datanet's owner or a curator only.
    /// @param reasonHash hash of the off-chain reason (e.g. the review note)
    function slashMalicious(uint256 datanetId, bytes32 contributionId, address contributor, bytes32 reasonHash)
        external
        nonReentrant
    {
        _slashMalicious(msg.sender, datanetId, contributionId, contributor, reasonHash);
    }

    /// @notice `slashMalicious` decided by `curator` (the datanet's owner or a curator), who signed
    /// `SlashMalicious`.
    function slashMaliciousWithSig(
        address curator,
        uint256 datanetId,
        bytes32 contributionId,
        address contributor,
        bytes32 reasonHash,
        uint256 deadline,
        bytes calldata signature
    ) external nonReentrant {
        _checkSignature(
            curator,
            _slashMaliciousHash(curator, datanetId, contributionId, contributor, reasonHash, deadline),
            deadline,
            signature
        );
        _slashMalicious(curator, datanetId, contributionId, contributor, reasonHash);
    }

    /// @notice Proves that the `later` contribution re-uploaded row `rowHash`, which the `earlier`
    /// contribution already held in an earlier version of datanet `datanetId`. Anyone may call:
    /// the later contributor's score grows by `penaltyPerSlash` and its bond on that contribution,
    /// if any, is slashed (`reporterShareBps` to the caller, the rest to the treasury).
    function slashDuplicate(uint256 datanetId, bytes32 rowHash, RowProof calldata later, RowProof calldata earlier)
        external
        nonReentrant
    {
        if (later.version <= earlier.version) revert NotLater(later.version, earlier.version);
        if (later.contributionId == earlier.contributionId) revert SameContribution(later.contributionId);
        _checkRow(datanetId, rowHash, later);
        _checkRow(datanetId, rowHash, earlier);
        (uint256 slashed, uint256 score) = _slash(datanetId, later.contributionId, later.contributor);
        uint256 toReporter = slashed * reporterShareBps / BPS;
        emit SlashedDuplicate(
            datanetId,
            later.contributionId,
            later.contributor,
            msg.sender,
            rowHash,
            earlier.version,
            earlier.contributionId,
            slashed,
            toReporter,
            score
        );
        if (toReporter != 0) token.safeTransfer(msg.sender, toReporter);
        if (slashed != toReporter) token.safeTransfer(treasury, slashed - toReporter);
    }

    // ---------------------------------------------------------------------------------------------
    // Parameters
    // ---------------------------------------------------------------------------------------------

    /// @notice Replaces every parameter. `PARAMS_ROLE` only. A new `unbondDelay` applies to
    /// requests made after it; a new threshold applies at once to every score.
    function setParameters(
        uint64 penaltyPerSlash_,
        uint64 penaltyThreshold_,
        uint16 reporterShareBps_,
        uint64 unbondDelay_,
        address treasury_
    ) external onlyRole(PARAMS_ROLE) {
        _setParameters(penaltyPerSlash_, penaltyThreshold_, reporterShareBps_, unbondDelay_, treasury_);
    }

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @notice `contributor`'s bond on contribution `contributionId` to datanet `datanetId`.
    function bondOf(uint256 datanetId, bytes32 contributionId, address contributor)
        external
        view
        returns (Bond memory)
    {
        return _bonds[datanetId][contributionId][contributor];
    }

    /// @notice Whether the contribution was slashed (it then cannot be bonded or slashed again).
    function slashed(uint256 datanetId, bytes32 contributionId, address contributor) external view returns (bool) {
        return _slashed[datanetId][contributionId][contributor];
    }

    /// @notice Whether `contributor`'s score has reached the threshold: the fee split then gives it
    /// no contributor share, which goes to the other contributors.
    function rewardsCut(address contributor) external view returns (bool) {
        return penaltyScore[contributor] >= penaltyThreshold;
    }

    // ---------------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------------

    function _bond(address contributor, uint256 datanetId, bytes32 contributionId, uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        if (_slashed[datanetId][contributionId][contributor]) {
            revert AlreadySlashed(datanetId, contributionId, contributor);
        }
        Bond storage b = _bonds[datanetId][contributionId][contributor];
        b.amount += amount;
        b.unlockAt = 0;
        emit Bonded(datanetId, contributionId, contributor, amount, b.amount);
        token.safeTransferFrom(contributor, address(this), amount);
    }

    function _requestUnbond(address contributor, uint256 datanetId, bytes32 contributionId) private {
        Bond storage b = _bonds[datanetId][contributionId][contributor];
        if (b.amount == 0) revert NotBonded(datanetId, contributionId, contributor);
        uint64 unlockAt = uint64(block.timestamp) + unbondDelay;
        b.unlockAt = unlockAt;
        emit UnbondRequested(datanetId, contributionId, contributor, unlockAt);
    }

    function _slashMalicious(
        address curator,
        uint256 datanetId,
        bytes32 contributionId,
        address contributor,
        bytes32 reasonHash
    ) private {
        if (registry.datanet(datanetId).owner != curator && !registry.isCurator(datanetId, curator)) {
            revert NotOwnerOrCurator(datanetId, curator);
        }
        if (_bonds[datanetId][contributionId][contributor].amount == 0) {
            revert NotBonded(datanetId, contributionId, contributor);
        }
        (uint256 slashed, uint256 score) = _slash(datanetId, contributionId, contributor);
        emit SlashedMalicious(datanetId, contributionId, contributor, curator, reasonHash, slashed, score);
        token.safeTransfer(treasury, slashed);
    }

    /// @dev Split from `slashMaliciousWithSig`, whose arguments alone fill most of the stack.
    function _slashMaliciousHash(
        address curator,
        uint256 datanetId,
        bytes32 contributionId,
        address contributor,
        bytes32 reasonHash,
        uint256 deadline
    ) private returns (bytes32) {
        return keccak256(
            abi.encode(
                SLASH_MALICIOUS_TYPEHASH,
                curator,
                datanetId,
                contributionId,
                contributor,
                reasonHash,
                _useNonce(curator),
                deadline
            )
        );
    }

    /// @dev `signature` must be `signer`'s (ECDSA for an EOA, ERC-1271 for a contract) over the
    /// struct hash, which already consumed `signer`'s nonce (so a signature works once).
    function _checkSignature(address signer, bytes32 structHash, uint256 deadline, bytes calldata signature)
        private
        view
    {
        if (signer == address(0)) revert ZeroAddress();
        if (block.timestamp > deadline) revert ExpiredSignature(deadline);
        if (!SignatureChecker.isValidSignatureNowCalldata(signer, _hashTypedDataV4(structHash), signature)) {
            revert InvalidSignature(signer);
        }
    }

    /// @dev Marks the contribution slashed, takes its whole bond and raises the contributor's score.
    function _slash(uint256 datanetId, bytes32 contributionId, address contributor)
        private
        returns (uint256 amount, uint256 score)
    {
        if (_slashed[datanetId][contributionId][contributor]) {
            revert AlreadySlashed(datanetId, contributionId, contributor);
        }
        _slashed[datanetId][contributionId][contributor] = true;
        amount = _bonds[datanetId][contributionId][contributor].amount;
        delete _bonds[datanetId][contributionId][contributor];
        score = penaltyScore[contributor] + penaltyPerSlash;
        penaltyScore[contributor] = score;
    }

    function _checkRow(uint256 datanetId, bytes32 rowHash, RowProof calldata row) private view {
        if (!registry.verifyRow(datanetId, row.version, rowHash, row.contributor, row.contributionId, row.proof)) {
            revert InvalidRowProof(datanetId, row.version);
        }
    }

    function _setParameters(
        uint64 penaltyPerSlash_,
        uint64 penaltyThreshold_,
        uint16 reporterShareBps_,
        uint64 unbondDelay_,
        address treasury_
    ) private {
        if (treasury_ == address(0)) revert ZeroAddress();
        if (penaltyPerSlash_ == 0 || penaltyThreshold_ == 0 || reporterShareBps_ > BPS || unbondDelay_ == 0) {
            revert InvalidParameters();
        }
        penaltyPerSlash = penaltyPerSlash_;
        penaltyThreshold = penaltyThreshold_;
        reporterShareBps = reporterShareBps_;
        unbondDelay = unbondDelay_;
        treasury = treasury_;
        emit ParametersSet(penaltyPerSlash_, penaltyThreshold_, reporterShareBps_, unbondDelay_, treasury_);
    }
}
