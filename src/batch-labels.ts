import { z } from 'zod';

/**
 * What a caller may attach to a batch to recognise it, bounded the same over GraphQL and REST.
 * Metadata follows OpenAI's rules (at most 16 pairs, keys up to 64 and values up to 512 characters).
 */

export const MAX_BATCH_NAME_LENGTH = 256;

export const batchNameSchema = z.string().max(MAX_BATCH_NAME_LENGTH, `must be at most ${MAX_BATCH_NAME_LENGTH} characters`);

export const batchMetadataSchema = z
  .record(z.string().max(64, 'keys must be at most 64 characters'), z.string().max(512, 'values must be at most 512 characters'), {
    error: 'must be an object of string values',
  })
  .refine((value) => Object.keys(value).length <= 16, 'at most 16 key-value pairs');
