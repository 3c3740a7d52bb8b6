// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @notice The views of the DatanetRegistry this registry checks datanet versions against.
interface IDatanetVersions {
    function datanetCount() external view returns (uint256);
    function versionCount(uint256 id) external view returns (uint256);
}

/// @title Registry of published models
/// @notice Each published model is an ERC-721 token whose id is the Model ID. Its record names
/// the base model and the LoRA adapter by content hash, the datanet versions it was trained on
/// (each checked to exist in the DatanetRegistry), the hash of its training manifest (every row
/// used, whose, and how many tokens), its price per 1,000 input and output tokens in OPEN wei,
/// and how the revenue of each call is split.
///
/// Revenue: the protocol first takes `platformFeeBps` of every payment (fixed at deployment; the
/// settlement contracts read it from here). The model's `Split` divides the rest between the
/// token's holder (`owner`), the stakers behind the model (`stakers`) and the data contributors
/// credited by Proof of Attribution (`contributors`); its three parts add up to exactly 10,000.
///
/// An adapter is registered once: a second record for the same `adapterHash` reverts, so an
/// adapter's Model ID is unique and `modelOfAdapter` finds it.
///
/// As in the DatanetRegistry, every action has a direct form (`msg.sender` acts) and a
/// `...WithSig` form that anyone (typically the node, which pays the gas) relays with the acting
/// wallet's EIP-712 signature over every argument, its current nonce and a deadline. Updates are
/// for the token's current holder.
///
/// Proof of Attribution weighs its channels (span matches, training influence, retrieval) per
/// model: `channelWeightsOf` gives the weights the holder set, or the published defaults
/// (`DEFAULT_*_BPS`) until then, so that every settlement verifier reads the same terms.
contract ModelRegistry is ERC721, EIP712, Nonces {
    /// @notice Basis points in a whole.
    uint16 public constant BPS = 10_000;
    /// @notice Most datanet versions a model may cite (bounds the gas of the existence checks).
    uint256 public constant MAX_DATANETS = 32;

    /// @notice A committed version of a datanet in the DatanetRegistry.
    struct DatanetVersion {
        uint256 datanetId;
        uint256 version;
    }

    /// @notice Shares, in basis points, of what is left after the platform fee.
    struct Split {
        uint16 owner;
        uint16 stakers;
        uint16 contributors;
    }

    /// @notice What `publish` registers.
    struct PublishParams {
        /// sha256 of the base model's GGUF file
        bytes32 baseModel;
        /// sha256 of the adapter (a llama.cpp GGUF LoRA)
        bytes32 adapterHash;
        /// sha256 of the canonical JSON training manifest
        bytes32 manifestHash;
        /// sha256 of the canonical JSON metadata (name, description, base model name, job, ...)
        bytes32 metadataHash;
        DatanetVersion[] datanets;
        /// OPEN wei per 1,000 input (prompt) tokens
        uint256 pricePer1kInput;
        /// OPEN wei per 1,000 output (generated) tokens
        uint256 pricePer1kOutput;
        Split split;
    }

    /// @notice How Proof of Attribution weighs its channels for a model's contributor share, in
    /// basis points adding up to 10,000: exact span matches against the training data, training
    /// influence (gradient sketches) and retrieval (RAG) citations.
    struct ChannelWeights {
        uint16 span;
        uint16 influence;
        uint16 rag;
    }

    /// @notice A model as `model(id)` returns it (its datanet versions: `datanetVersionsOf(id)`).
    struct Model {
        bytes32 baseModel;
        bytes32 adapterHash;
        bytes32 manifestHash;
        bytes32 metadataHash;
        uint256 pricePer1kInput;
        uint256 pricePer1kOutput;
        Split split;
        bool active;
        uint64 publishedAt;
        address publisher;
    }

    /// @notice The channel weights of a model whose holder has set none.
    uint16 public constant DEFAULT_SPAN_BPS = 5000;
    uint16 public constant DEFAULT_INFLUENCE_BPS = 3000;
    uint16 public constant DEFAULT_RAG_BPS = 2000;

    bytes32 public constant DATANET_VERSION_TYPEHASH = keccak256("DatanetVersion(uint256 datanetId,uint256 version)");
    bytes32 public constant SPLIT_TYPEHASH = keccak256("Split(uint16 owner,uint16 stakers,uint16 contributors)");
    bytes32 public constant PUBLISH_TYPEHASH = keccak256(
        "Publish(address owner,bytes32 baseModel,bytes32 adapterHash,bytes32 manifestHash,bytes32 metadataHash,DatanetVersion[] datanets,uint256 pricePer1kInput,uint256 pricePer1kOutput,Split split,uint256 nonce,uint256 deadline)DatanetVersion(uint256 datanetId,uint256 version)Split(uint16 owner,uint16 stakers,uint16 contributors)"
    );
    bytes32 public constant SET_PRICE_TYPEHASH = keccak256(
        "SetPrice(address owner,uint256 modelId,uint256 pricePer1kInput,uint256 pricePer1kOutput,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant SET_SPLIT_TYPEHASH = keccak256(
        "SetSplit(address owner,uint256 modelId,Split split,uint256 nonce,uint256 deadline)Split(uint16 owner,uint16 stakers,uint16 contributors)"
    );
    bytes32 public constant CHANNEL_WEIGHTS_TYPEHASH =
        keccak256("ChannelWeights(uint16 span,uint16 influence,uint16 rag)");
    bytes32 public constant SET_CHANNEL_WEIGHTS_TYPEHASH = keccak256(
        "SetChannelWeights(address owner,uint256 modelId,ChannelWeights weights,uint256 nonce,uint256 deadline)ChannelWeights(uint16 span,uint16 influence,uint16 rag)"
    );
    bytes32 public constant SET_ACTIVE_TYPEHASH =
        keccak256("SetActive(address owner,uint256 modelId,bool active,uint256 nonce,uint256 deadline)");

    /// @notice The DatanetRegistry whose versions models cite.
    IDatanetVersions public immutable datanetRegistry;
    /// @notice The protocol's share of every payment, in basis points, taken before the split.
    uint16 public immutable platformFeeBps;

    /// @notice How many models exist; their ids are 1 to `modelCount`.
    uint256 public modelCount;

    mapping(uint256 id => Model) private _models;
    mapping(uint256 id => DatanetVersion[]) private _datanets;
    /// @dev All zero (a sum no valid setting has) while the holder has set none: the defaults apply.
    mapping(uint256 id => ChannelWeights) private _channelWeights;
    /// @notice The Model ID registered for an adapter hash, 0 when none.
    mapping(bytes32 adapterHash => uint256 id) public modelOfAdapter;

    /// @notice A model was published (minted to `owner`).
    event ModelPublished(
        uint256 indexed modelId,
        address indexed owner,
        bytes32 indexed adapterHash,
        bytes32 baseModel,
        bytes32 manifestHash,
        bytes32 metadataHash,
        DatanetVersion[] datanets
    );
    /// @notice A model's prices were set (at publication and on every change).
    event PriceSet(uint256 indexed modelId, uint256 pricePer1kInput, uint256 pricePer1kOutput);
    /// @notice A model's revenue split was set (at publication and on every change).
    event SplitSet(uint256 indexed modelId, uint16 owner, uint16 stakers, uint16 contributors);
    /// @notice A model's attribution channel weights were set by its holder.
    event ChannelWeightsSet(uint256 indexed modelId, uint16 span, uint16 influence, uint16 rag);
    /// @notice A model was deactivated (no longer to be served) or activated again.
    event ActiveSet(uint256 indexed modelId, bool active);

    /// @notice There is no model `id`.
    error UnknownModel(uint256 id);
    /// @notice `account` does not hold model `id`.
    error NotModelOwner(uint256 id, address account);
    /// @notice The adapter is already registered, as model `id`.
    error AdapterAlreadyRegistered(bytes32 adapterHash, uint256 id);
    /// @notice The DatanetRegistry has no version `version` of datanet `datanetId`.
    error UnknownDatanetVersion(uint256 datanetId, uint256 version);
    /// @notice A model cites between 1 and `MAX_DATANETS` datanet versions.
    error InvalidDatanetCount(uint256 count);
    /// @notice The split's parts do not add up to 10,000 basis points.
    error InvalidSplit(uint16 owner, uint16 stakers, uint16 contributors);
    /// @notice The channel weights do not add up to 10,000 basis points.
    error InvalidChannelWeights(uint16 span, uint16 influence, uint16 rag);
    /// @notice The base model, adapter and manifest hashes must be set.
    error EmptyHash();
    /// @notice The platform fee cannot exceed 10,000 basis points.
    error InvalidPlatformFee(uint16 bps);
    /// @notice The signature is not `signer`'s for these arguments and `signer`'s current nonce.
    error InvalidSignature(address signer);
    /// @notice The signature's deadline has passed.
    error ExpiredSignature(uint256 deadline);
    /// @notice The zero address cannot act.
    error ZeroAddress();

    /// @param datanetRegistry_ the DatanetRegistry whose versions models cite
    /// @param platformFeeBps_ the protocol's share of every payment, in basis points
    constructor(IDatanetVersions datanetRegistry_, uint16 platformFeeBps_)
        ERC721("OpenLedger Model", "OLMODEL")
        EIP712("OpenLedger ModelRegistry", "1")
    {
        if (address(datanetRegistry_) == address(0)) revert ZeroAddress();
        if (platformFeeBps_ > BPS) revert InvalidPlatformFee(platformFeeBps_);
        datanetRegistry = datanetRegistry_;
        platformFeeBps = platformFeeBps_;
    }

    // ---------------------------------------------------------------------------------------------
    // Direct actions (msg.sender acts)
    // ---------------------------------------------------------------------------------------------

    /// @notice Publishes a model owned by the caller.
    /// @return modelId the new Model ID (sequential from 1), minted to the caller
    function publish(PublishParams calldata p) external returns (uint256 modelId) {
        return _publish(msg.sender, p);
    }

    /// @notice Sets a model's prices (OPEN wei per 1,000 tokens). Holder only.
    function setPrice(uint256 modelId, uint256 pricePer1kInput, uint256 pricePer1kOutput) external {
        _setPrice(msg.sender, modelId, pricePer1kInput, pricePer1kOutput);
    }

    /// @notice Sets a model's revenue split. Holder only.
    function setSplit(uint256 modelId, Split calldata split) external {
        _setSplit(msg.sender, modelId, split);
    }

    /// @notice Sets a model's attribution channel weights. Holder only.
    function setChannelWeights(uint256 modelId, ChannelWeights calldata w) external {
        _setChannelWeights(msg.sender, modelId, w);
    }

    /// @notice Deactivates (`false`) or reactivates a model. Holder only.
    function setActive(uint256 modelId, bool active) external {
        _setActive(msg.sender, modelId, active);
    }

    // ---------------------------------------------------------------------------------------------
    // Relayed actions (the signer acts; anyone may submit)
    // ---------------------------------------------------------------------------------------------

    /// @notice `publish` on behalf of `owner`, who signed `Publish`.
    /// @param deadline the last block timestamp at which the signature is good
    /// @param signature `owner`'s EIP-712 signature (65-byte ECDSA, or ERC-1271 for a contract)
    function publishWithSig(address owner, PublishParams calldata p, uint256 deadline, bytes calldata signature)
        external
        returns (uint256 modelId)
    {
        _checkSigner(owner, deadline);
        _checkSignature(owner, _publishStructHash(owner, p, deadline), signature);
        return _publish(owner, p);
    }

    /// @notice `setPrice` on behalf of `owner` (the holder), who signed `SetPrice`.
    function setPriceWithSig(
        address owner,
        uint256 modelId,
        uint256 pricePer1kInput,
        uint256 pricePer1kOutput,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkSigner(owner, deadline);
        bytes32 structHash = keccak256(
            abi.encode(
                SET_PRICE_TYPEHASH, owner, modelId, pricePer1kInput, pricePer1kOutput, _useNonce(owner), deadline
            )
        );
        _checkSignature(owner, structHash, signature);
        _setPrice(owner, modelId, pricePer1kInput, pricePer1kOutput);
    }

    /// @notice `setSplit` on behalf of `owner` (the holder), who signed `SetSplit`.
    function setSplitWithSig(
        address owner,
        uint256 modelId,
        Split calldata split,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkSigner(owner, deadline);
        bytes32 structHash = keccak256(
            abi.encode(SET_SPLIT_TYPEHASH, owner, modelId, _hashSplit(split), _useNonce(owner), deadline)
        );
        _checkSignature(owner, structHash, signature);
        _setSplit(owner, modelId, split);
    }

    /// @notice `setChannelWeights` on behalf of `owner` (the holder), who signed `SetChannelWeights`.
    function setChannelWeightsWithSig(
        address owner,
        uint256 modelId,
        ChannelWeights calldata w,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkSigner(owner, deadline);
        bytes32 weightsHash = keccak256(abi.encode(CHANNEL_WEIGHTS_TYPEHASH, w.span, w.influence, w.rag));
        bytes32 structHash = keccak256(
            abi.encode(SET_CHANNEL_WEIGHTS_TYPEHASH, owner, modelId, weightsHash, _useNonce(owner), deadline)
        );
        _checkSignature(owner, structHash, signature);
        _setChannelWeights(owner, modelId, w);
    }

    /// @notice `setActive` on behalf of `owner` (the holder), who signed `SetActive`.
    function setActiveWithSig(address owner, uint256 modelId, bool active, uint256 deadline, bytes calldata signature)
        external
    {
        _checkSigner(owner, deadline);
        bytes32 structHash =
            keccak256(abi.encode(SET_ACTIVE_TYPEHASH, owner, modelId, active, _useNonce(owner), deadline));
        _checkSignature(owner, structHash, signature);
        _setActive(owner, modelId, active);
    }

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @notice Model `id`'s record (its holder: `ownerOf(id)`).
    function model(uint256 id) external view returns (Model memory) {
        return _existing(id);
    }

    /// @notice The datanet versions model `id` was trained on.
    function datanetVersionsOf(uint256 id) external view returns (DatanetVersion[] memory) {
        _existing(id);
        return _datanets[id];
    }

    /// @notice Model `id`'s attribution channel weights: the holder's, or the defaults until set.
    function channelWeightsOf(uint256 id) external view returns (ChannelWeights memory w) {
        _existing(id);
        w = _channelWeights[id];
        if (w.span == 0 && w.influence == 0 && w.rag == 0) {
            w = ChannelWeights(DEFAULT_SPAN_BPS, DEFAULT_INFLUENCE_BPS, DEFAULT_RAG_BPS);
        }
    }

    /// @notice The EIP-712 domain separator signatures are made under.
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------------------------------------
    // Internals: each action, for an already authenticated `actor`
    // ---------------------------------------------------------------------------------------------

    function _publish(address owner, PublishParams calldata p) private returns (uint256 id) {
        if (owner == address(0)) revert ZeroAddress();
        if (p.baseModel == bytes32(0) || p.adapterHash == bytes32(0) || p.manifestHash == bytes32(0)) {
            revert EmptyHash();
        }
        uint256 existing = modelOfAdapter[p.adapterHash];
        if (existing != 0) revert AdapterAlreadyRegistered(p.adapterHash, existing);
        _checkSplit(p.split);
        uint256 n = p.datanets.length;
        if (n == 0 || n > MAX_DATANETS) revert InvalidDatanetCount(n);
        uint256 datanets = datanetRegistry.datanetCount();

        id = ++modelCount;
        DatanetVersion[] storage cited = _datanets[id];
        for (uint256 i = 0; i < n; i++) {
            DatanetVersion calldata d = p.datanets[i];
            // Checked by count, not by calling `versionCount` on an unknown id (which reverts with
            // the other registry's error): a version exists iff 1 <= version <= versionCount.
            if (
                d.datanetId == 0 || d.datanetId > datanets || d.version == 0
                    || d.version > datanetRegistry.versionCount(d.datanetId)
            ) revert UnknownDatanetVersion(d.datanetId, d.version);
            cited.push(d);
        }
        modelOfAdapter[p.adapterHash] = id;
        _models[id] = Model({
            baseModel: p.baseModel,
            adapterHash: p.adapterHash,
            manifestHash: p.manifestHash,
            metadataHash: p.metadataHash,
            pricePer1kInput: p.pricePer1kInput,
            pricePer1kOutput: p.pricePer1kOutput,
            split: p.split,
            active: true,
            publishedAt: uint64(block.timestamp),
            publisher: owner
        });
        // `_mint`, not `_safeMint`: no call into the recipient while the record is half-written,
        // and a contract wallet without an ERC-721 receiver hook can still publish.
        _mint(owner, id);
        emit ModelPublished(id, owner, p.adapterHash, p.baseModel, p.manifestHash, p.metadataHash, p.datanets);
        emit PriceSet(id, p.pricePer1kInput, p.pricePer1kOutput);
        emit SplitSet(id, p.split.owner, p.split.stakers, p.split.contributors);
    }

    function _setPrice(address actor, uint256 id, uint256 pricePer1kInput, uint256 pricePer1kOutput) private {
        Model storage m = _onlyHolder(actor, id);
        m.pricePer1kInput = pricePer1kInput;
        m.pricePer1kOutput = pricePer1kOutput;
        emit PriceSet(id, pricePer1kInput, pricePer1kOutput);
    }

    function _setSplit(address actor, uint256 id, Split calldata split) private {
        Model storage m = _onlyHolder(actor, id);
        _checkSplit(split);
        m.split = split;
        emit SplitSet(id, split.owner, split.stakers, split.contributors);
    }

    function _setChannelWeights(address actor, uint256 id, ChannelWeights calldata w) private {
        _onlyHolder(actor, id);
        if (uint256(w.span) + w.influence + w.rag != BPS) revert InvalidChannelWeights(w.span, w.influence, w.rag);
        _channelWeights[id] = w;
        emit ChannelWeightsSet(id, w.span, w.influence, w.rag);
    }

    function _setActive(address actor, uint256 id, bool active) private {
        _onlyHolder(actor, id).active = active;
        emit ActiveSet(id, active);
    }

    // ---------------------------------------------------------------------------------------------
    // Internals: checks and hashing
    // ---------------------------------------------------------------------------------------------

    function _existing(uint256 id) private view returns (Model storage m) {
        m = _models[id];
        if (m.adapterHash == bytes32(0)) revert UnknownModel(id);
    }

    function _onlyHolder(address actor, uint256 id) private view returns (Model storage m) {
        m = _existing(id);
        if (actor != _ownerOf(id)) revert NotModelOwner(id, actor);
    }

    function _checkSplit(Split calldata s) private pure {
        if (uint256(s.owner) + s.stakers + s.contributors != BPS) revert InvalidSplit(s.owner, s.stakers, s.contributors);
    }

    function _hashSplit(Split calldata s) private pure returns (bytes32) {
        return keccak256(abi.encode(SPLIT_TYPEHASH, s.owner, s.stakers, s.contributors));
    }

    /// @dev EIP-712 `encodeData` of a struct array: the hash of its members' struct hashes.
    function _hashDatanets(DatanetVersion[] calldata datanets) private pure returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](datanets.length);
        for (uint256 i = 0; i < datanets.length; i++) {
            hashes[i] = keccak256(abi.encode(DATANET_VERSION_TYPEHASH, datanets[i].datanetId, datanets[i].version));
        }
        return keccak256(abi.encodePacked(hashes));
    }

    /// @dev `Publish`'s struct hash, consuming `owner`'s nonce. Encoded in two halves (the same
    /// bytes as one `abi.encode`, every member being one word) to keep the stack shallow.
    function _publishStructHash(address owner, PublishParams calldata p, uint256 deadline)
        private
        returns (bytes32)
    {
        bytes memory head =
            abi.encode(PUBLISH_TYPEHASH, owner, p.baseModel, p.adapterHash, p.manifestHash, p.metadataHash);
        bytes memory tail = abi.encode(
            _hashDatanets(p.datanets),
            p.pricePer1kInput,
            p.pricePer1kOutput,
            _hashSplit(p.split),
            _useNonce(owner),
            deadline
        );
        return keccak256(bytes.concat(head, tail));
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
