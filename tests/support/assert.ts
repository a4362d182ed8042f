/**
 * Test support: the few assertions the tests use, on top of node:assert (no JSR here).
 *
 * @module
 */

import nodeAssert from "node:assert/strict";

/** Asserts that `value` is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  nodeAssert.ok(value, message);
}

/** Asserts deep, strict equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Asserts that `text` matches `re`. */
export function assertMatch(text: string, re: RegExp, message?: string): void {
  nodeAssert.match(text, re, message);
}

/** Asserts that `text` contains `part`. */
export function assertStringIncludes(text: string, part: string, message?: string): void {
  if (!text.includes(part)) {
    throw new nodeAssert.AssertionError({
      message: message ?? `Expected text to include ${JSON.stringify(part)}; got:\n${text}`,
    });
  }
}

/** Asserts that `fn` rejects, optionally with an error of class `type` whose message includes `includes`. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  type?: new (...args: any[]) => Error,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    if (type && !(err instanceof type)) {
      throw new nodeAssert.AssertionError({ message: `Expected ${type.name}, got ${err}` });
    }
    if (includes && !(err instanceof Error && err.message.includes(includes))) {
      throw new nodeAssert.AssertionError({ message: `Expected message to include "${includes}", got: ${err}` });
    }
    return err as Error;
  }
  throw new nodeAssert.AssertionError({ message: "Expected the promise to reject" });
}
