// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title Registry of Datanets
/// @notice On-chain record of the datanets curated on OpenLedger: who owns each one, the hash of
/// its metadata (the JSON itself lives off-chain), its access policy, its curators, the Merkle
/// root of every committed version of its rows, and who was granted access to it.
///
/// Every action exists in two forms: a direct one, where `msg.sender` acts, and a `...WithSig`
/// one that anyone (typically the node, which pays the gas) may relay with the acting wallet's
/// EIP-712 signature. A signature binds every argument, the wallet's current nonce (so it is good
/// for one use only) and a deadline. Smart-contract wallets sign through ERC-1271.
///
/// A version's rows are the leaves of an OpenZeppelin `StandardMerkleTree` of
/// `(bytes32 rowHash, address contributor, bytes32 contributionId)`, so the off-chain tree is
/// built with OpenZeppelin's `merkle-tree` npm package and `verifyRow` checks its proofs.
contract DatanetRegistry is EIP712, Nonces {
    /// @notice Who may read a datanet: anyone, or only its owner, curators and granted accounts.
    enum Policy {
        Open,
        Permissioned
    }

    /// @notice A datanet as `datanet(id)` returns it.
    struct Datanet {
        address owner;
        Policy policy;
        bytes32 metadataHash;
    }

    /// @notice A committed version of a datanet's rows.
    struct Version {
        bytes32 root;
        bytes32 manifestId;
        uint64 rowCount;
        uint64 committedAt;
        address committer;
    }

    bytes32 public constant CREATE_DATANET_TYPEHASH =
        keccak256("CreateDatanet(address owner,bytes32 metadataHash,uint8 policy,uint256 nonce,uint256 deadline)");
    bytes32 public constant UPDATE_METADATA_TYPEHASH =
        keccak256("UpdateMetadata(address owner,uint256 id,bytes32 metadataHash,uint256 nonce,uint256 deadline)");
    bytes32 public constant SET_CURATOR_TYPEHASH = keccak256(
        "SetCurator(address owner,uint256 id,address curator,bool enabled,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant COMMIT_VERSION_TYPEHASH = keccak256(
        "CommitVersion(address committer,uint256 id,bytes32 root,uint64 rowCount,bytes32 manifestId,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REQUEST_ACCESS_TYPEHASH =
        keccak256("RequestAccess(address account,uint256 id,bytes32 purposeHash,uint256 nonce,uint256 deadline)");
    bytes32 public constant GRANT_ACCESS_TYPEHASH =
        keccak256("GrantAccess(address owner,uint256 id,address account,uint256 nonce,uint256 deadline)");
    bytes32 public constant REVOKE_ACCESS_TYPEHASH =
        keccak256("RevokeAccess(address owner,uint256 id,address account,uint256 nonce,uint256 deadline)");
    bytes32 public constant DENY_ACCESS_TYPEHASH = keccak256(
        "DenyAccess(address owner,uint256 id,address account,bytes32 reasonHash,uint256 nonce,uint256 deadline)"
    );

    /// @notice How many datanets exist; their ids are 1 to `datanetCount`.
    uint256 public datanetCount;

    mapping(uint256 id => Datanet) private _datanets;
    mapping(uint256 id => Version[]) private _versions;
    mapping(uint256 id => mapping(address account => bool)) private _curators;
    mapping(uint256 id => mapping(address account => bool)) private _grants;

    /// @notice A datanet was created.
    event DatanetCreated(uint256 indexed id, address indexed owner, bytes32 metadataHash, Policy policy);
    /// @notice A datanet's metadata hash changed.
    event MetadataUpdated(uint256 indexed id, bytes32 metadataHash);
    /// @notice A curator was added (`enabled`) or removed.
    event CuratorSet(uint256 indexed id, address indexed curator, bool enabled);
    /// @notice A version of a datanet's rows was committed.
    event VersionCommitted(
        uint256 indexed id,
        uint256 indexed version,
        bytes32 root,
        uint64 rowCount,
        bytes32 manifestId,
        address indexed committer
    );
    /// @notice `account` asks for access to a permissioned datanet, for the purpose hashed.
    event AccessRequested(uint256 indexed id, address indexed account, bytes32 purposeHash);
    /// @notice The owner granted `account` access.
    event AccessGranted(uint256 indexed id, address indexed account);
    /// @notice The owner revoked `account`'s access.
    event AccessRevoked(uint256 indexed id, address indexed account);
    /// @notice The owner turned down `account`'s request, for the reason hashed.
    event AccessDenied(uint256 indexed id, address indexed account, bytes32 reasonHash);

    /// @notice There is no datanet `id`.
    error UnknownDatanet(uint256 id);
    /// @notice `account` is not the owner of datanet `id`.
    error NotOwner(uint256 id, address account);
    /// @notice `account` is neither the owner nor a curator of datanet `id`.
    error NotOwnerOrCurator(uint256 id, address account);
    /// @notice Datanet `id` has no version `version`.
    error UnknownVersion(uint256 id, uint256 version);
    /// @notice Datanet `id` is open: access is neither requested nor granted.
    error NotPermissioned(uint256 id);
    /// @notice The signature is not `signer`'s for these arguments and `signer`'s current nonce.
    error InvalidSignature(address signer);
    /// @notice The signature's deadline has passed.
    error ExpiredSignature(uint256 deadline);
    /// @notice A version must have a Merkle root.
    error EmptyRoot();
    /// @notice The zero address cannot act or be given a role.
    error ZeroAddress();

    constructor() EIP712("OpenLedger DatanetRegistry", "1") {}

    // ---------------------------------------------------------------------------------------------
    // Direct actions (msg.sender acts)
    // ---------------------------------------------------------------------------------------------

    /// @notice Creates a datanet owned by the caller.
    /// @param metadataHash sha256 of the datanet's canonical metadata JSON
    /// @param policy whether anyone may read it or only the accounts given access
    /// @return id the new datanet's id (sequential from 1)
    function createDatanet(bytes32 metadataHash, Policy policy) external returns (uint256 id) {
        return _createDatanet(msg.sender, metadataHash, policy);
    }

    /// @notice Replaces a datanet's metadata hash. Owner only.
    function updateMetadata(uint256 id, bytes32 metadataHash) external {
        _updateMetadata(msg.sender, id, metadataHash);
    }

    /// @notice Adds (`enabled`) or removes a curator, who may commit versions. Owner only.
    function setCurator(uint256 id, address curator, bool enabled) external {
        _setCurator(msg.sender, id, curator, enabled);
    }

    /// @notice Commits a new version of a datanet's rows. Owner or curator.
    /// @param root the Merkle root of the version's rows (StandardMerkleTree, see the contract doc)
    /// @param rowCount how many rows the version holds
    /// @param manifestId sha256 of the version's manifest blob
    /// @return newVersion the new version's number (sequential from 1)
    function commitVersion(uint256 id, bytes32 root, uint64 rowCount, bytes32 manifestId)
        external
        returns (uint256 newVersion)
    {
        return _commitVersion(msg.sender, id, root, rowCount, manifestId);
    }

    /// @notice Asks the owner of a permissioned datanet for access (an event; nothing is stored).
    /// @param purposeHash hash of the off-chain statement of why access is wanted
    function requestAccess(uint256 id, bytes32 purposeHash) external {
        _requestAccess(msg.sender, id, purposeHash);
    }

    /// @notice Gives `account` access to a permissioned datanet. Owner only.
    function grantAccess(uint256 id, address account) external {
        _grantAccess(msg.sender, id, account);
    }

    /// @notice Takes `account`'s granted access away. Owner only.
    function revokeAccess(uint256 id, address account) external {
        _revokeAccess(msg.sender, id, account);
    }

    /// @notice Turns down `account`'s request (an event; nothing is stored). Owner only.
    /// @param reasonHash hash of the off-chain reason
    function denyAccess(uint256 id, address account, bytes32 reasonHash) external {
        _denyAccess(msg.sender, id, account, reasonHash);
    }

    // ---------------------------------------------------------------------------------------------
    // Relayed actions (the signer acts; anyone may submit)
    // ---------------------------------------------------------------------------------------------

    /// @notice `createDatanet` on behalf of `owner`, who signed `CreateDatanet`.
    /// @param deadline the last block timestamp at which the signature is good
    /// @param signature `owner`'s EIP-712 signature (65-byte ECDSA, or ERC-1271 for a contract)
    function createDatanetWithSig(
        address owner,
        bytes32 metadataHash,
        Policy policy,
        uint256 deadline,
        bytes calldata signature
    ) external returns (uint256 id) {
        _checkSigner(owner, deadline);
        bytes32 structHash = keccak256(
            abi.encode(CREATE_DATANET_TYPEHASH, owner, metadataHash, policy, _useNonce(owner), deadline)
        );
        _checkSignature(owner, structHash, signature);
        return _createDatanet(owner, metadataHash, policy);
    }

    /// @notice `updateMetadata` on behalf of `owner`, who signed `UpdateMetadata`.
    function updateMetadataWithSig(
        address owner,
        uint256 id,
        bytes32 metadataHash,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkSigner(owner, deadline);
        bytes32 structHash = keccak256(
            abi.encode(UPDATE_METADATA_TYPEHASH, owner, id, metadataHash, _useNonce(owner), deadline)
        );
        _checkSignature(owner, structHash, signature);
        _updateMetadata(owner, id, metadataHash);
    }

    /// @notice `setCurator` on behalf of `owner`, who signed `SetCurator`.
    function setCuratorWithSig(
        address owner,
        uint256 id,
        address curator,
        bool enabled,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkSigner(owner, deadline);
        bytes32 structHash = keccak256(
            abi.encode(SET_CURATOR_TYPEHASH, owner, id, curator, enabled, _useNonce(owner), deadline)
        );
        _checkSignature(owner, structHash, signature);
        _setCurator(owner, id, curator, enabled);
    }

    /// @notice `commitVersion` on behalf of `committer` (owner or curator), who signed `CommitVersion`.
    function commitVersionWithSig(
        address committer,
        uint256 id,
        bytes32 root,
        uint64 rowCount,
        bytes32 manifestId,
        uint256 deadline,
        bytes calldata signature
    ) external returns (uint256 newVersion) {
        _checkSigner(committer, deadline);
        bytes32 structHash = _commitVersionStructHash(committer, id, root, rowCount, manifestId, deadline);
        _checkSignature(committer, structHash, signature);
        return _commitVersion(committer, id, root, rowCount, manifestId);
    }

    /// @notice `requestAccess` on behalf of `account`, who signed `RequestAccess`.
    function requestAccessWithSig(
        address account,
        uint256 id,
        bytes32 purposeHash,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkSigner(account, deadline);
        bytes32 structHash = keccak256(
            abi.encode(REQUEST_ACCESS_TYPEHASH, account, id, purposeHash, _useNonce(account), deadline)
        );
        _checkSignature(account, structHash, signature);
        _requestAccess(account, id, purposeHash);
    }

    /// @notice `grantAccess` on behalf of `owner`, who signed `GrantAccess`.
    function grantAccessWithSig(address owner, uint256 id, address account, uint256 deadline, bytes calldata signature)
        external
    {
        _checkSigner(owner, deadline);
        bytes32 structHash =
            keccak256(abi.encode(GRANT_ACCESS_TYPEHASH, owner, id, account, _useNonce(owner), deadline));
        _checkSignature(owner, structHash, signature);
        _grantAccess(owner, id, account);
    }

    /// @notice `revokeAccess` on behalf of `owner`, who signed `RevokeAccess`.
    function revokeAccessWithSig(address owner, uint256 id, address account, uint256 deadline, bytes calldata signature)
        external
    {
        _checkSigner(owner, deadline);
        bytes32 structHash =
            keccak256(abi.encode(REVOKE_ACCESS_TYPEHASH, owner, id, account, _useNonce(owner), deadline));
        _checkSignature(owner, structHash, signature);
        _revokeAccess(owner, id, account);
    }

    /// @notice `denyAccess` on behalf of `owner`, who signed `DenyAccess`.
    function denyAccessWithSig(
        address owner,
        uint256 id,
        address account,
        bytes32 reasonHash,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkSigner(owner, deadline);
        bytes32 structHash = keccak256(
            abi.encode(DENY_ACCESS_TYPEHASH, owner, id, account, reasonHash, _useNonce(owner), deadline)
        );
        _checkSignature(owner, structHash, signature);
        _denyAccess(owner, id, account, reasonHash);
    }

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @notice Datanet `id`'s owner, policy and metadata hash.
    function datanet(uint256 id) external view returns (Datanet memory) {
        return _existing(id);
    }

    /// @notice How many versions datanet `id` has; they are numbered 1 to `versionCount`.
    function versionCount(uint256 id) external view returns (uint256) {
        _existing(id);
        return _versions[id].length;
    }

    /// @notice Version `version` (from 1) of datanet `id`.
    function version(uint256 id, uint256 version_) external view returns (Version memory) {
        return _version(id, version_);
    }

    /// @notice Whether `account` is a curator of datanet `id` (the owner is not one unless made one).
    function isCurator(uint256 id, address account) external view returns (bool) {
        _existing(id);
        return _curators[id][account];
    }

    /// @notice Whether `account` may read datanet `id`: anyone for an open datanet; for a
    /// permissioned one its owner, its curators and the accounts granted access.
    function hasAccess(uint256 id, address account) external view returns (bool) {
        Datanet storage d = _existing(id);
        return d.policy == Policy.Open || account == d.owner || _curators[id][account] || _grants[id][account];
    }

    /// @notice Whether the row `(rowHash, contributor, contributionId)` is in version `version_` of
    /// datanet `id`, given its StandardMerkleTree proof.
    function verifyRow(
        uint256 id,
        uint256 version_,
        bytes32 rowHash,
        address contributor,
        bytes32 contributionId,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 root = _version(id, version_).root;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(rowHash, contributor, contributionId))));
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @notice The EIP-712 domain separator signatures are made under.
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------------------------------------
    // Internals: each action, for an already authenticated `actor`
    // ---------------------------------------------------------------------------------------------

    function _createDatanet(address owner, bytes32 metadataHash, Policy policy) private returns (uint256 id) {
        id = ++datanetCount;
        _datanets[id] = Datanet({owner: owner, policy: policy, metadataHash: metadataHash});
        emit DatanetCreated(id, owner, metadataHash, policy);
    }

    function _updateMetadata(address actor, uint256 id, bytes32 metadataHash) private {
        _onlyOwner(actor, id).metadataHash = metadataHash;
        emit MetadataUpdated(id, metadataHash);
    }

    function _setCurator(address actor, uint256 id, address curator, bool enabled) private {
        _onlyOwner(actor, id);
        if (curator == address(0)) revert ZeroAddress();
        _curators[id][curator] = enabled;
        emit CuratorSet(id, curator, enabled);
    }

    function _commitVersion(address actor, uint256 id, bytes32 root, uint64 rowCount, bytes32 manifestId)
        private
        returns (uint256 version_)
    {
        Datanet storage d = _existing(id);
        if (actor != d.owner && !_curators[id][actor]) revert NotOwnerOrCurator(id, actor);
        if (root == bytes32(0)) revert EmptyRoot();
        _versions[id].push(
            Version({
                root: root,
                manifestId: manifestId,
                rowCount: rowCount,
                committedAt: uint64(block.timestamp),
                committer: actor
            })
        );
        version_ = _versions[id].length;
        emit VersionCommitted(id, version_, root, rowCount, manifestId, actor);
    }

    function _requestAccess(address actor, uint256 id, bytes32 purposeHash) private {
        _permissioned(id);
        emit AccessRequested(id, actor, purposeHash);
    }

    function _grantAccess(address actor, uint256 id, address account) private {
        _permissioned(_onlyOwner(actor, id), id);
        if (account == address(0)) revert ZeroAddress();
        _grants[id][account] = true;
        emit AccessGranted(id, account);
    }

    function _revokeAccess(address actor, uint256 id, address account) private {
        _permissioned(_onlyOwner(actor, id), id);
        if (account == address(0)) revert ZeroAddress();
        _grants[id][account] = false;
        emit AccessRevoked(id, account);
    }

    function _denyAccess(address actor, uint256 id, address account, bytes32 reasonHash) private {
        _permissioned(_onlyOwner(actor, id), id);
        if (account == address(0)) revert ZeroAddress();
        emit AccessDenied(id, account, reasonHash);
    }

    // ---------------------------------------------------------------------------------------------
    // Internals: checks
    // ---------------------------------------------------------------------------------------------

    function _existing(uint256 id) private view returns (Datanet storage d) {
        d = _datanets[id];
        if (d.owner == address(0)) revert UnknownDatanet(id);
    }

    function _onlyOwner(address actor, uint256 id) private view returns (Datanet storage d) {
        d = _existing(id);
        if (actor != d.owner) revert NotOwner(id, actor);
    }

    function _permissioned(uint256 id) private view {
        _permissioned(_existing(id), id);
    }

    function _permissioned(Datanet storage d, uint256 id) private view {
        if (d.policy != Policy.Permissioned) revert NotPermissioned(id);
    }

    function _version(uint256 id, uint256 version_) private view returns (Version storage) {
        _existing(id);
        Version[] storage versions = _versions[id];
        if (version_ == 0 || version_ > versions.length) revert UnknownVersion(id, version_);
        return versions[version_ - 1];
    }

    /// @dev `CommitVersion`'s struct hash, consuming `committer`'s nonce (a function of its own to
    /// keep the stack shallow).
    function _commitVersionStructHash(
        address committer,
        uint256 id,
        bytes32 root,
        uint64 rowCount,
        bytes32 manifestId,
        uint256 deadline
    ) private returns (bytes32) {
        uint256 nonce = _useNonce(committer);
        return keccak256(
            abi.encode(COMMIT_VERSION_TYPEHASH, committer, id, root, rowCount, manifestId, nonce, deadline)
        );
    }

    /// @dev The signer must be a real address and the deadline not passed.
    function _checkSigner(address signer, uint256 deadline) private view {
        if (signer == address(0)) revert ZeroAddress();
        if (block.timestamp > deadline) revert ExpiredSignature(deadline);
    }

    /// @dev `signature` must be `signer`'s (ECDSA for an EOA, ERC-1271 for a contract) over the
    /// EIP-712 digest of `structHash` in this contract's domain.
    function _checkSignature(address signer, bytes32 structHash, bytes calldata signature) private view {
        if (!SignatureChecker.isValidSignatureNowCalldata(signer, _hashTypedDataV4(structHash), signature)) {
            revert InvalidSignature(signer);
        }
    }
}
