import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { printSchema } from 'graphql';
import { packageRoot } from '../paths.js';
import { schema } from './index.js';

/** Writes the printed schema to `schema.graphql` (committed; a test fails when it is stale). */
export const schemaFile = join(packageRoot, 'schema.graphql');

writeFileSync(schemaFile, `${printSchema(schema)}\n`);
console.log(`wrote ${schemaFile}`);
