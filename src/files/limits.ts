import type { Config } from '../config.js';

/** What an uploaded batch file may hold, from the config. */
export interface UploadLimits {
  /** Largest file, in bytes (`maxFileBytes`). */
  maxFileBytes: number;
  /** Most request lines in one file (`maxRequestsPerBatch`). */
  maxLines: number;
}

/**
 * Room for the rest of a multipart request around the file (the GraphQL operation, the
 * variable map, part headers and boundaries). The HTTP body limit is the file limit plus this,
 * so a file just over its own limit still reaches the code that explains which limit it broke.
 */
export const MULTIPART_ENVELOPE_BYTES = 1024 * 1024;

export function uploadLimits(config: Pick<Config, 'maxFileBytes' | 'maxRequestsPerBatch'>): UploadLimits {
  return { maxFileBytes: config.maxFileBytes, maxLines: config.maxRequestsPerBatch };
}
