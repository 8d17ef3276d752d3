import type { Plugin } from 'graphql-yoga';
import type { Authenticator } from './authenticator.js';

/**
 * GraphQL's validation errors suggest field names ("Did you mean …?"), which maps the schema for
 * someone without a key. Once keys are required they are masked. `hideFieldSuggestions` is the
 * one rule; a GraphQL-limits plugin that also masks them can take it as its switch.
 */

const SUGGESTION = /\s*Did you mean .+\?/g;

export function hideFieldSuggestions(auth: Authenticator): boolean {
  return auth.keysRequired();
}

export function useFieldSuggestionsOffWithKeys(auth: Authenticator): Plugin {
  return {
    onValidate: () => {
      if (!hideFieldSuggestions(auth)) return undefined;
      return ({ valid, result }) => {
        if (valid) return;
        for (const error of result) error.message = error.message.replace(SUGGESTION, '');
      };
    },
  };
}
