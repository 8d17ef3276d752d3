/**
 * How deep parsed JSON may nest. Real request bodies nest a few levels (a tool's JSON schema a
 * few more); a body nested thousands deep overflows the stack of every recursive step after
 * parsing (validation, `JSON.stringify`), so it is refused where it arrives, with this message.
 */
export const MAX_JSON_NESTING = 64;

export const nestingMessage = `is nested more than ${MAX_JSON_NESTING} levels deep`;

/** Whether `value` nests objects and arrays deeper than MAX_JSON_NESTING; iterative, so it cannot overflow itself. */
export function nestsTooDeep(value: unknown): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (item.value === null || typeof item.value !== 'object') continue;
    if (item.depth >= MAX_JSON_NESTING) return true;
    for (const child of Object.values(item.value)) stack.push({ value: child, depth: item.depth + 1 });
  }
  return false;
}
