import { builder } from './builder.js';
import './batch.js';
import './batch-files.js';
import './api-key.js';
import './audit.js';
import './batch-retry.js';
import './deployment.js';
import './lane.js';
import './model.js';
import './model-group.js';
import './native-batch.js';
import './quota.js';
import './request.js';
import './webhook.js';

/** The whole GraphQL schema: each imported module adds its types and fields to the builder. */
export const schema = builder.toSchema({ sortSchema: true });
