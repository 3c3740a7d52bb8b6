/**
 * Attributes one paid inference: from the inference receipt, the exact prompt tokens and the
 * output text, plus public data — the model's on-chain terms at a block, content-addressed blobs
 * (span index shards, the training manifest, its gradient sketches, the adapter) and the base
 * model file — it builds the attribution receipt. The node builds receipts with this function and
 * `openledger attribution verify` rebuilds them with it from the same public data, so a receipt
 * verifies exactly when it is what this code computes; nothing here reads a clock, the database
 * or the node's own state. Floating point runs only in the influence channel, on the TypeScript
 * matmul backend (plain loops in a fixed order: the same bits on every machine).
 */
import { createHash } from 'node:crypto';
import type { GgufModel } from '../engine/index.ts';
import { loadModelGguf } from '../engine/index.ts';
import { OpenLedgerError } from '../errors.ts';
import type { TrainingManifest } from '../factory/dataset.ts';
import { loadSketches } from '../factory/sketches.ts';
import { receiptHash, type InferenceReceipt } from '../serving/usage.ts';
import { influenceOfOutput, influenceWeights, sketchContributors } from './influence.ts';
import { ragChannel, type RagEvidence } from './rag.ts';
import {
  buildAttributionReceipt,
  type AttributionReceipt,
  type InfluenceEvidence,
} from './receipt.ts';
import { tokenizerInfo, type TokenizerInfo } from './service.ts';
import { SpanShard } from './shard.ts';
import { SpanIndex, TRACE_DEFAULTS, type TraceOptions } from './span-index.ts';
import type { ChannelWeights, RevenueSplitBps } from './split.ts';

/** A published model's terms as the ModelRegistry holds them at some block. */
export interface ModelTerms {
  id: number;
  /** The token's holder (who is paid as owner). */
  owner: string;
  baseModelSha256: string;
  adapterHash: string;
  manifestHash: string;
  price: { pricePer1kInput: bigint; pricePer1kOutput: bigint };
  platformBps: number;
  split: RevenueSplitBps;
  channelWeights: ChannelWeights;
  datanets: { id: number; version: number }[];
  /** Who is staked on the model (ModelStaking) at the receipt's block, and how much (wei). */
  stakers: { address: string; stake: bigint }[];
}

/** Where the public data comes from: the node's own stores, or a verifier's RPC and node API. */
export interface AttributionSources {
  terms(modelId: number, block: bigint): Promise<ModelTerms>;
  /** Of `addresses`, those whose rewards are cut at `block` (ContributionBonds). */
  penalized(addresses: readonly string[], block: bigint): Promise<string[]>;
  /** Who receives the platform's share (the settlement's treasury). */
  platform(): Promise<string>;
  /** A blob by its sha256; the implementation must check the bytes hash to it. */
  blob(id: string): Promise<Uint8Array>;
  /** The base model's GGUF file path (whose sha256 must be `sha256`). */
  baseModel(name: string, sha256: string): Promise<string>;
  /**
   * The span index over these shards, in this order (default: decoded from `blob` each time);
   * the node passes its cached one.
   */
  spanIndex?(blobIds: readonly string[], tokenizer: TokenizerInfo): Promise<SpanIndex>;
}

export interface AttributeInput {
  inference: InferenceReceipt;
  inferenceHash: string;
  /** The exact prompt token ids (checked against the receipt's inputSha256). */
  promptTokens: readonly number[];
  /** The output text (checked against the receipt's outputSha256). */
  output: string;
  /** The chain state to read the terms and penalties at. */
  block: bigint;
  /** The span index shards (blob ids) per datanet version, in the order the index reads them. */
  shards: readonly { id: number; version: number; shards: readonly string[] }[];
  traceOptions?: TraceOptions;
  /**
   * A RAG answer's sources, citations and ContextCite scores (the node computes the scores with
   * its model; a verifier takes them from the receipt and checks what follows from them).
   */
  rag?: RagEvidence | null;
}

/** Evidence rows listed per influence channel (the weights count every row). */
export const INFLUENCE_EVIDENCE_ROWS = 20;

function invalid(message: string): OpenLedgerError {
  return new OpenLedgerError('VALIDATION_FAILED', message);
}

/** sha256 of prompt token ids as uint32 little-endian: the inference receipt's inputSha256. */
export function promptSha256(tokens: readonly number[]): string {
  const bytes = Buffer.alloc(tokens.length * 4);
  tokens.forEach((t, i) => bytes.writeUInt32LE(t, i * 4));
  return createHash('sha256').update(bytes).digest('hex');
}

const trainable = new Map<string, Promise<GgufModel>>();

/** The base model for influence, loaded once per file (the most recent two are kept). */
function trainableModel(file: string): Promise<GgufModel> {
  let model = trainable.get(file);
  if (!model) {
    model = loadModelGguf(file);
    model.catch(() => trainable.delete(file));
    if (trainable.size >= 2) trainable.delete(trainable.keys().next().value!);
    trainable.set(file, model);
  }
  return model;
}

async function decodedIndex(
  blobIds: readonly string[],
  tok: TokenizerInfo,
  sources: AttributionSources,
): Promise<SpanIndex> {
  const shards: SpanShard[] = [];
  for (const id of blobIds) shards.push(SpanShard.decode(Buffer.from(await sources.blob(id))));
  return new SpanIndex(shards, tok.delimiters);
}

/** Builds the attribution receipt of a paid inference from public data (see the module comment). */
export async function attributeInference(
  input: AttributeInput,
  sources: AttributionSources,
): Promise<AttributionReceipt> {
  const inf = input.inference;
  if (receiptHash(inf) !== input.inferenceHash)
    throw invalid('The inference receipt does not match its hash.');
  if (promptSha256(input.promptTokens) !== inf.inputSha256)
    throw invalid("The prompt tokens do not hash to the receipt's inputSha256.");
  if (createHash('sha256').update(input.output).digest('hex') !== inf.outputSha256)
    throw invalid("The output does not hash to the receipt's outputSha256.");
  if (inf.publishedModelId === null)
    throw invalid('The inference did not serve a published model: nothing to attribute.');

  const terms = await sources.terms(inf.publishedModelId, input.block);
  if (terms.baseModelSha256 !== inf.baseModel.sha256)
    throw invalid(
      `Model ${terms.id} is registered on base model ${terms.baseModelSha256}, but the call ran on ${inf.baseModel.sha256}.`,
    );
  const baseFile = await sources.baseModel(inf.baseModel.name, inf.baseModel.sha256);
  const tok = await tokenizerInfo(baseFile, inf.baseModel.name);
  const outputTokens = tok.tokenizer.encode(input.output, { addBos: false, addEos: false });

  // The span channel, over the model's datanet versions.
  const cited = new Map(terms.datanets.map((d) => [d.id, d.version]));
  for (const entry of input.shards) {
    const version = cited.get(entry.id);
    if (version === undefined || entry.version !== version)
      throw invalid(
        `Model ${terms.id} was trained on ${terms.datanets.map((d) => `datanet ${d.id} v${d.version}`).join(', ') || 'no datanet'}, not datanet ${entry.id} v${entry.version}.`,
      );
  }
  const blobIds = input.shards.flatMap((entry) => entry.shards);
  const index = sources.spanIndex
    ? await sources.spanIndex(blobIds, tok)
    : await decodedIndex(blobIds, tok, sources);
  let at = 0;
  for (const entry of input.shards)
    for (const blobId of entry.shards) {
      const meta = index.shards[at++]!.meta;
      if (
        meta.datanetId !== entry.id ||
        meta.version > entry.version ||
        meta.tokenizer !== tok.sha256
      )
        throw invalid(
          `Shard ${blobId} indexes datanet ${meta.datanetId} v${meta.version} with tokenizer ${meta.tokenizer.slice(0, 12)}…, not datanet ${entry.id} up to v${entry.version} with the base model's tokenizer.`,
        );
    }
  const traceOptions = { ...TRACE_DEFAULTS, ...input.traceOptions };
  const span =
    input.shards.length === 0
      ? null
      : {
          tokenizer: tok.sha256,
          trace: index.trace(outputTokens, traceOptions),
          options: traceOptions,
          text: (start: number, end: number) =>
            tok.tokenizer.decode(outputTokens.slice(start, end)),
        };

  // The influence channel, for a call that served exactly the model's own adapter.
  const influence = await influenceChannel(input, terms, baseFile, outputTokens, sources);

  const rag = input.rag ? ragChannel(input.rag) : null;
  if (rag && input.rag?.ablation && input.rag.ablation.seed !== input.inferenceHash)
    throw invalid("The RAG ablation's seed is not the inference receipt's hash.");

  const credited = new Set<string>([
    ...Object.keys(span?.trace.weightsPpb ?? {}),
    ...(influence ? [...influence.weights.keys()] : []),
    ...(rag ? rag.weights.map((w) => w.contributor) : []),
  ]);
  const penalized =
    credited.size === 0 ? [] : await sources.penalized([...credited].sort(), input.block);

  return buildAttributionReceipt({
    inferenceReceipt: inf,
    inferenceReceiptHash: input.inferenceHash,
    model: {
      id: terms.id,
      owner: terms.owner,
      manifestHash: terms.manifestHash,
      price: terms.price,
      platformBps: terms.platformBps,
      split: terms.split,
      channelWeights: terms.channelWeights,
    },
    datanets: input.shards,
    span,
    influence,
    rag,
    stakers: terms.stakers,
    platform: await sources.platform(),
    block: input.block,
    penalized,
  });
}

async function influenceChannel(
  input: AttributeInput,
  terms: ModelTerms,
  baseFile: string,
  outputTokens: readonly number[],
  sources: AttributionSources,
): Promise<{
  method: string;
  weights: Map<string, bigint>;
  evidence: InfluenceEvidence[];
} | null> {
  const adapters = input.inference.adapters;
  if (adapters.length !== 1 || adapters[0]!.id !== terms.adapterHash || adapters[0]!.weight !== 1)
    return null;
  const manifest = JSON.parse(
    Buffer.from(await sources.blob(terms.manifestHash)).toString('utf8'),
  ) as TrainingManifest;
  if (!manifest.gradientSketches) return null; // trained before sketches were stored
  const model = await trainableModel(baseFile);
  // Influence is over the model's context; a longer call gets none (the same on every machine).
  if (input.promptTokens.length + outputTokens.length > model.config.contextLength + 1) return null;
  if (outputTokens.length === 0 || input.promptTokens.length + outputTokens.length < 2) return null;
  const sketches = loadSketches(await sources.blob(manifest.gradientSketches.sha256));
  const result = await influenceOfOutput({
    sketches,
    model,
    adapter: await sources.blob(terms.adapterHash),
    example: { promptTokens: input.promptTokens, outputTokens },
    method: 'datainf',
  });
  const contributors = sketchContributors(sketches.header, manifest.rows);
  const { weightsPpb, rows } = influenceWeights(result.scores, contributors);
  const evidence = rows.slice(0, INFLUENCE_EVIDENCE_ROWS).map((r): InfluenceEvidence => {
    const row = manifest.rows[sketches.header.rows[r.row]!.index]!;
    return {
      datanetId: row.datanetId,
      version: row.version,
      rowHash: row.rowHash,
      contributor: r.contributor,
      score: r.score,
    };
  });
  return { method: 'datainf', weights: weightsPpb, evidence };
}
