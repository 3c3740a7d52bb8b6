/**
 * Published models: adapters from the Model Factory registered in the on-chain ModelRegistry
 * (ERC-721 Model IDs with prices and a revenue split), listed where the serving layer finds them.
 */
export {
  BPS,
  DEFAULT_SPLIT,
  ModelService,
  checkChannelWeights,
  checkSplit,
  type ModelAuthorization,
  type ModelMetadata,
  type ModelRow,
  type ModelView,
  type PublishPlan,
  type PublishRequest,
} from './service.ts';
export {
  MODEL_REGISTRY_TYPES,
  modelRegistryDomain,
  modelTypedData,
  publishFieldsFromPlan,
  type ModelChannelWeights,
  type ModelSigningContext,
  type PublishFields,
  type RevenueSplit,
} from './typed-data.ts';
