/**
 * Timers that honour any duration the parser accepts. `setTimeout` and `setInterval` take
 * at most 2^31-1 ms (24.8 days); a longer delay fires at once (with a
 * `TimeoutOverflowWarning`). These helpers chain shorter timers instead, so `600h` means
 * 600 hours.
 *
 * @module
 */

/** The longest delay one `setTimeout` honours: 2^31-1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer from {@link setLongTimeout} or {@link setLongInterval}; pass it to {@link clearLongTimer}. */
export interface LongTimer {
  /** The current underlying timer id. */
  id: ReturnType<typeof setTimeout> | undefined;
  /** Set once cleared. */
  cleared: boolean;
}

/**
 * Calls `fn` once after `ms` milliseconds, however long that is.
 *
 * @example
 * ```ts
 * const timer = setLongTimeout(() => console.log("600 hours later"), 600 * 3_600_000);
 * clearLongTimer(timer);
 * ```
 */
export function setLongTimeout(fn: () => void, ms: number): LongTimer {
  return _arm({ id: undefined, cleared: false }, fn, ms, false);
}

/**
 * Calls `fn` every `ms` milliseconds, however long that is, until cleared.
 *
 * @example
 * ```ts
 * const timer = setLongInterval(() => console.log("tick"), 1000);
 * clearLongTimer(timer);
 * ```
 */
export function setLongInterval(fn: () => void, ms: number): LongTimer {
  return _arm({ id: undefined, cleared: false }, fn, ms, true);
}

function _arm(timer: LongTimer, fn: () => void, ms: number, repeat: boolean): LongTimer {
  let due = performance.now() + Math.max(0, ms);
  const arm = () => {
    if (timer.cleared) return;
    const left = due - performance.now();
    if (left > MAX_TIMER_MS) {
      timer.id = setTimeout(arm, MAX_TIMER_MS);
      return;
    }
    timer.id = setTimeout(() => {
      if (timer.cleared) return;
      if (repeat) {
        due = performance.now() + Math.max(1, ms);
        arm();
      }
      fn();
    }, Math.max(0, left));
  };
  arm();
  return timer;
}

/**
 * Stops a timer made by {@link setLongTimeout} or {@link setLongInterval}. Calling it again,
 * or with `undefined`, does nothing.
 *
 * @example
 * ```ts
 * clearLongTimer(setLongTimeout(() => {}, 10));
 * ```
 */
export function clearLongTimer(timer: LongTimer | undefined): void {
  if (!timer) return;
  timer.cleared = true;
  clearTimeout(timer.id);
}
