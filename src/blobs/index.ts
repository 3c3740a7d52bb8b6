export { BlobStore, blobIdOf, isBlobId } from './store.ts';
export type { BlobId, BlobInfo } from './store.ts';
