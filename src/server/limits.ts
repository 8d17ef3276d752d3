import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Limits } from '../config.js';
import { MULTIPART_ENVELOPE_BYTES } from '../files/limits.js';
import { nestingMessage, nestsTooDeep } from '../json-nesting.js';

/**
 * What one GraphQL request may cost before it costs anything: the JSON body's size (batch
 * files come as multipart, under their own limit), the document's size and tokens (the parser
 * stops counting there, so a deep document never reaches the stack limit), and the
 * operation's depth, aliases and static cost (graphql-armor). Field suggestions are off: they
 * spell out the schema to anyone who guesses.
 */
export function useGraphQLLimits(limits: Limits): Plugin[] {
  return [
    useJsonBodyLimit(limits.maxJsonBodyBytes),
    useDocumentSizeLimit(limits.maxDocumentBytes),
    useVariablesNestingLimit(),
    EnvelopArmorPlugin({
      maxTokens: { n: limits.maxTokens },
      maxDepth: { n: limits.maxDepth },
      maxAliases: { n: limits.maxAliases },
      costLimit: { maxCost: limits.maxCost },
      blockFieldSuggestion: { enabled: true },
    }),
  ];
}

/** Yoga's own limit, which must let a multipart upload through: the file limit plus its envelope. */
export function multipartBodyLimit(maxFileBytes: number): number {
  return maxFileBytes + MULTIPART_ENVELOPE_BYTES;
}

function tooLarge(what: string, limit: number): GraphQLError {
  return new GraphQLError(`the ${what} is larger than the limit of ${limit} bytes`, {
    extensions: { code: 'BAD_USER_INPUT', http: { status: 413 } },
  });
}

/** Every body but a multipart upload is held to `maxBytes`: by its Content-Length, or counted as it arrives. */
function useJsonBodyLimit(maxBytes: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser }) {
      if (request.body === null || requestParser === undefined) return;
      if (request.headers.get('content-type')?.toLowerCase().startsWith('multipart/form-data')) return;
      if (Number(request.headers.get('content-length')) > maxBytes) throw tooLarge('request body', maxBytes);
      setRequestParser(async (req) => {
        const chunks: Uint8Array[] = [];
        let size = 0;
        for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) {
          size += chunk.byteLength;
          if (size > maxBytes) throw tooLarge('request body', maxBytes);
          chunks.push(chunk);
        }
        return requestParser(new Request(req.url, { method: req.method, headers: req.headers, body: Buffer.concat(chunks) }));
      });
    },
  };
}

/** Checked before parsing, over HTTP and WebSocket alike (both parse through the envelop). */
function useDocumentSizeLimit(maxBytes: number): Plugin {
  return {
    onParse({ params }) {
      const source = typeof params.source === 'string' ? params.source : params.source.body;
      if (Buffer.byteLength(source) > maxBytes) throw tooLarge('GraphQL document', maxBytes);
    },
  };
}

/** Deep JSON in variables (an inline request body) is bad input, refused before anything walks it recursively. */
export function checkVariablesNesting(variables: unknown): void {
  if (nestsTooDeep(variables))
    throw new GraphQLError(`variables: ${nestingMessage}`, { extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } } });
}

function useVariablesNestingLimit(): Plugin {
  return { onParams: ({ params }) => checkVariablesNesting(params.variables) };
}
