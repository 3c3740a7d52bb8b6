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
