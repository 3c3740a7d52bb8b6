/**
 * The Model Factory: LoRA training jobs on datanet versions, chat templates, training manifests
 * (which rows, whose, how many tokens) and the adapters they produce.
 */
export {
  TEMPLATES,
  isTemplateName,
  previewTemplate,
  renderExample,
  type ChatTurn,
  type PreviewPiece,
  type RenderedExample,
  type TemplateName,
  type TemplateRow,
} from './templates.ts';
export {
  DEFAULT_MAX_TOKENS,
  normalizeHyperparameters,
  normalizeTrainParams,
  type DatanetRef,
  type Hyperparameters,
  type TrainParams,
  type TrainParamsInput,
} from './params.ts';
export {
  contributorTotals,
  heldOut,
  loadDatasetRows,
  splitBucket,
  storeManifest,
  type DatasetRow,
  type ManifestRow,
  type ResolvedDatanet,
  type TrainingManifest,
} from './dataset.ts';
export {
  TRAIN_JOB_KIND,
  checkTrainRequest,
  registerFactoryJobs,
  trainJob,
  type FactoryDeps,
  type TrainResult,
} from './train-job.ts';
export { loadTokenizer } from './tokenizers.ts';
export { ModelCatalog } from './models.ts';
export type { CatalogModel } from './models.ts';
export {
  activationBytes,
  estimateTraining,
  measureThroughput,
  modelShape,
  trainableParameters,
  type ModelHeader,
  type TrainingEstimate,
} from './estimate.ts';
export {
  MICRO_BATCH_OVERHEAD_POSITIONS,
  batchPositions,
  packExamples,
  planMicroBatches,
  targetsPerMember,
  type MicroBatch,
} from './packing.ts';
export {
  DEFAULT_SAMPLES,
  DEFAULT_SAMPLE_TOKENS,
  MAX_CUSTOM_PROMPTS,
  MAX_SAMPLE_TOKENS,
  evaluateAdapter,
  heldOutRows,
  promptSplit,
  type EvalPrompt,
  type EvalSample,
  type Evaluation,
} from './eval.ts';
export {
  EVAL_JOB_KIND,
  evaluateInWorker,
  normalizeEvalParams,
  succeededTrainingJob,
  type EvalJobResult,
  type EvalParams,
} from './eval-job.ts';
