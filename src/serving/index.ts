/**
 * OpenLoRA serving: one llama.cpp base model in memory per base, thousands of LoRA adapters
 * attached just in time under a byte budget, an OpenAI-compatible API over it, and a usage row
 * with a receipt for every call. See docs/serving.md.
 */
export { ServingEngine, MAX_ADAPTERS_PER_REQUEST, MAX_ADAPTER_WEIGHT } from './engine.ts';
export type {
  AdapterRequest,
  ChatMessage,
  GenerateRequest,
  GenerateResult,
  ModelEntry,
  ServedAdapter,
  StartInfo,
} from './engine.ts';
export type { AdapterRecord } from './adapters.ts';
export { FairScheduler } from './scheduler.ts';
export { RemoteBackend, type RemoteStats } from './remote.ts';
export { receiptHash, type InferenceReceipt } from './usage.ts';
