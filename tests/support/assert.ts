/**
 * Assertions for tests, on node:assert (JSR's @std/assert is not reachable here).
 *
 * @module
 */

import nodeAssert from "node:assert/strict";

/** Fails unless `value` is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  nodeAssert.ok(value, message);
}

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

/** `actual` matches `pattern`. */
export function assertMatch(actual: string, pattern: RegExp, message?: string): void {
  nodeAssert.match(actual, pattern, message);
}

/** `actual` does not match `pattern`. */
export function assertNotMatch(actual: string, pattern: RegExp, message?: string): void {
  nodeAssert.doesNotMatch(actual, pattern, message);
}

/**
 * `fn` rejects (or throws) with an instance of `ErrorClass` whose message includes
 * `includes`; resolves to that error.
 */
export async function assertRejects<E extends Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  ErrorClass: new (...args: any[]) => E,
  includes?: string,
): Promise<E> {
  let error: unknown;
  try {
    await fn();
  } catch (err) {
    error = err;
  }
  if (error === undefined) throw new nodeAssert.AssertionError({ message: "Expected the function to reject" });
  if (!(error instanceof ErrorClass)) {
    throw new nodeAssert.AssertionError({
      message: `Expected ${ErrorClass.name}, got ${error instanceof Error ? `${error.name}: ${error.message}` : error}`,
    });
  }
  if (includes !== undefined && !error.message.includes(includes)) {
    throw new nodeAssert.AssertionError({ message: `Expected "${error.message}" to include "${includes}"` });
  }
  return error;
}
