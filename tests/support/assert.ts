/**
 * Assertions for tests, on top of node:assert (JSR's @std/assert is not reachable here).
 *
 * @module
 */

import nodeAssert from "node:assert/strict";

/** Fails unless `value` is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  nodeAssert.ok(value, message);
}

/** Deep, strict equality. */
export function assertEquals<T>(actual: unknown, expected: T, message?: string): asserts actual is T {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Fails if `actual` equals `expected` (deep, strict). */
export function assertNotEquals(actual: unknown, expected: unknown, message?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, message);
}

/** Fails unless `text` matches `pattern`. */
export function assertMatch(text: string, pattern: RegExp, message?: string): void {
  nodeAssert.match(text, pattern, message);
}

/** Fails unless `text` contains `part`. */
export function assertStringIncludes(text: string, part: string, message?: string): void {
  if (!text.includes(part)) {
    nodeAssert.fail(message ?? `expected ${JSON.stringify(text)} to include ${JSON.stringify(part)}`);
  }
}

type ErrorClass = abstract new (...args: never[]) => Error;

function _check(err: unknown, cls?: ErrorClass, includes?: string): Error {
  if (!(err instanceof Error)) nodeAssert.fail(`expected an Error, got ${String(err)}`);
  const e: Error = err;
  const got = `${e.name}: ${e.message}`;
  if (cls && !(e instanceof cls)) nodeAssert.fail(`expected ${cls.name}, got ${got}`);
  if (includes !== undefined && !e.message.includes(includes)) {
    nodeAssert.fail(
      `expected the error message to include ${JSON.stringify(includes)}, got ${JSON.stringify(e.message)}`,
    );
  }
  return e;
}

/** Fails unless `fn` throws (an instance of `cls`, whose message includes `includes`). */
export function assertThrows(fn: () => unknown, cls?: ErrorClass, includes?: string): Error {
  try {
    fn();
  } catch (err) {
    return _check(err, cls, includes);
  }
  nodeAssert.fail("expected the function to throw");
}

/** Fails unless `fn` rejects (with an instance of `cls`, whose message includes `includes`). */
export async function assertRejects(fn: () => Promise<unknown>, cls?: ErrorClass, includes?: string): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return _check(err, cls, includes);
  }
  nodeAssert.fail("expected the promise to reject");
}
