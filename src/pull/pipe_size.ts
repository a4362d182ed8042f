/**
 * Larger pipes to a child process (Linux): a pipe holds 64 KiB by default, so `ssh` blocks
 * after every 64 KiB it decrypts until we have read them, and each side wakes the other
 * about 4 000 times per 256 MiB. With a 1 MiB pipe the reads are larger and both sides
 * switch less (measured: the download of a 256 MiB file a quarter faster, with a fifth
 * less CPU; see the README's Speed section).
 *
 * Best effort: without FFI permission, on other systems, or when the kernel refuses
 * (`/proc/sys/fs/pipe-max-size`, the per-user pipe quota), the pipe keeps its size.
 * Nothing is opened or closed: our end of the pipe is found by comparing `readlink` of
 * `/proc/self/fd/N` with the child's `/proc/PID/fd/N` (FFI, since Deno's permissions
 * reserve `/proc` for `--allow-all`), then resized with `fcntl(F_SETPIPE_SZ)`.
 *
 * @module
 */

/** libc's `readlink` and `fcntl`. */
const _SYMBOLS = {
  /** ssize_t readlink(const char *path, char *buf, size_t bufsiz) */
  readlink: {
    parameters: [
      "buffer", // path: NUL-terminated
      "buffer", // buf: receives the link's target (not NUL-terminated)
      "usize", // bufsiz
    ],
    result: "isize",
  },
  /**
   * int fcntl(int fd, int cmd, ...): variadic in C; F_SETPIPE_SZ / F_GETPIPE_SZ take one
   * int, and on the Linux ABIs this module runs on (x86_64, aarch64) a variadic int is
   * passed as a fixed one, so the fixed three-int signature is the same call.
   */
  fcntl: {
    parameters: [
      "i32", // fd
      "i32", // cmd
      "i32", // arg
    ],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

const _F_SETPIPE_SZ = 1031;
const _F_GETPIPE_SZ = 1032;
/** Our descriptors searched for the pipe's other end (they are allocated lowest first). */
const _MAX_FD = 4096;

/** The default size asked for: 1 MiB, Linux's default `pipe-max-size`. */
export const PIPE_BYTES = 1024 * 1024;

let _libc: Deno.DynamicLibrary<typeof _SYMBOLS> | null | undefined;

function _lib(): Deno.DynamicLibrary<typeof _SYMBOLS> | null {
  if (_libc !== undefined) return _libc;
  _libc = null;
  if (Deno.build.os !== "linux") return null;
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
    _libc = Deno.dlopen("libc.so.6", _SYMBOLS);
  } catch { /* another libc, or no FFI: keep the default pipes */ }
  return _libc;
}

const _enc = new TextEncoder();
const _dec = new TextDecoder();
const _link = new Uint8Array(256);

function _readlink(lib: Deno.DynamicLibrary<typeof _SYMBOLS>, path: string): string | null {
  const n = Number(lib.symbols.readlink(_enc.encode(`${path}\0`), _link, BigInt(_link.length)));
  return n > 0 ? _dec.decode(_link.subarray(0, n)) : null;
}

/** Our descriptor of the pipe that is the child's descriptor `childFd`, or -1. */
function _ourEnd(lib: Deno.DynamicLibrary<typeof _SYMBOLS>, pid: number, childFd: number): number {
  const target = _readlink(lib, `/proc/${pid}/fd/${childFd}`);
  if (!target?.startsWith("pipe:")) return -1;
  for (let fd = 3; fd < _MAX_FD; fd++) {
    if (_readlink(lib, `/proc/self/fd/${fd}`) === target) return fd;
  }
  return -1;
}

/** Options for {@link growChildPipe}. */
export interface GrowPipeOptions {
  /** The size to ask for, in bytes. Default {@link PIPE_BYTES}. */
  bytes?: number;
}

/**
 * Grows the pipe that is the child `pid`'s descriptor `childFd` (1 for its stdout) to
 * `options.bytes`; returns the pipe's size afterwards, or 0
 * when it could not be found or resized (it then keeps its size).
 *
 * @example
 * ```ts
 * const child = new Deno.Command("cat", { stdin: "piped", stdout: "piped" }).spawn();
 * growChildPipe(child.pid, 1); // 1048576 on Linux with FFI permission, else 0
 * ```
 */
export function growChildPipe(pid: number, childFd: number, options: GrowPipeOptions = {}): number {
  const bytes = options.bytes ?? PIPE_BYTES;
  const lib = _lib();
  if (!lib) return 0;
  try {
    const fd = _ourEnd(lib, pid, childFd);
    if (fd < 0) return 0;
    if (lib.symbols.fcntl(fd, _F_SETPIPE_SZ, bytes) < 0) return 0;
    return Math.max(0, lib.symbols.fcntl(fd, _F_GETPIPE_SZ, 0));
  } catch {
    return 0;
  }
}
