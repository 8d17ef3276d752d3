import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { printSchema, type GraphQLNamedType, isEnumType, isInputObjectType, isObjectType, isInterfaceType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../src/paths.js';
import { schema } from '../src/schema/index.js';

describe('the committed schema.graphql', () => {
  it('matches the schema the code builds (run `npm run schema:print` after changing it)', () => {
    const committed = readFileSync(join(packageRoot, 'schema.graphql'), 'utf8');
    expect(committed).toBe(`${printSchema(schema)}\n`);
  });
});

describe('the GraphQL API reference', () => {
  it('describes every type, field, argument and enum value', () => {
    const missing: string[] = [];
    const ours = Object.values(schema.getTypeMap()).filter((type: GraphQLNamedType) => !type.name.startsWith('__'));
    for (const type of ours) {
      if (['String', 'Int', 'Float', 'Boolean', 'ID'].includes(type.name)) continue;
      if (!type.description) missing.push(type.name);
      if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) {
        for (const field of Object.values(type.getFields())) {
          if (!field.description) missing.push(`${type.name}.${field.name}`);
          for (const arg of 'args' in field ? field.args : [])
            if (!arg.description) missing.push(`${type.name}.${field.name}(${arg.name})`);
        }
      }
      if (isEnumType(type)) for (const value of type.getValues()) if (!value.description) missing.push(`${type.name}.${value.name}`);
    }
    expect(missing).toEqual([]);
  });
});
