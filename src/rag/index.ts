/** RAG over datanets: chunking, embeddings, retrieval, cited answers (docs/rag.md). */
export {
  RagService,
  RAG_DEFAULT_K,
  RAG_MAX_K,
  type RagStatus,
  type IndexProgress,
} from './service.ts';
export {
  chooseVectorStore,
  RAG_VECTORS_ENV,
  type VectorBackend,
  type ChosenStore,
} from './store.ts';
export {
  prepareRag,
  finishRag,
  recordRagAnswer,
  citationView,
  sourceView,
  type RagOptions,
  type PreparedRag,
  type FinishedRag,
  type SourceRef,
} from './answer.ts';
export type { Citation, Embedder, Source } from './types.ts';
