#!/usr/bin/python3
"""A misbehaving SFTP v3 server for sqlbk's tests (run as sshd's `Subsystem sftp`).

Usage: bad_sftpd.py DIR MODE
It serves the files of DIR (any path names a file in DIR by its last component) and
misbehaves as MODE says:
  ok             behave
  silent:OP      never answer requests of OP (opendir, readdir, open, read, close, stat, limits)
  badlen:OP      answer OP with a packet whose length field is 0x7fffffff
  wrongid:OP     answer OP with a reply for a request id that was never sent
  wrongtype:OP   answer OP with a reply of the wrong type (ATTRS, or HANDLE to a STAT)
  truncated:OP   answer OP with a reply whose fields stop short
  endless        READDIR never ends: every call returns 200 more junk names
  evil           listing names (some backup-shaped) and OPEN's error text carry terminal
                 escapes, C1 controls, BiDi controls, newlines and U+2028 before forged "error:" lines
  pause-once:N:MARKER
                 when MARKER does not exist: serve N bytes of READ data, create MARKER, then
                 stop answering (a test kills the session); when it exists: behave
It reports limits@openssh.com with a max-read-length of 65536 and fails longer READs
(OpenSSH's sftp-server would answer them short), so a client must honour the limit.
"""
import os
import struct
import sys

DIR, MODE = sys.argv[1], sys.argv[2]
KIND, _, OP = MODE.partition(":")
OPS = {3: "open", 4: "close", 5: "read", 11: "opendir", 12: "readdir", 17: "stat", 200: "limits"}
MAX_READ = 65536
inp, out = sys.stdin.buffer, sys.stdout.buffer


def read_exact(n):
    buf = b""
    while len(buf) < n:
        chunk = inp.read(n - len(buf))
        if not chunk:
            sys.exit(0)
        buf += chunk
    return buf


def s(b):
    return struct.pack(">I", len(b)) + b


def send(body):
    out.write(struct.pack(">I", len(body)) + body)
    out.flush()


def status(rid, code, msg):
    return bytes([101]) + struct.pack(">I", rid) + struct.pack(">I", code) + s(msg.encode()) + s(b"")


def attrs(st):
    return struct.pack(">IQI", 0x1 | 0x4, st.st_size, st.st_mode) if st else struct.pack(">I", 0)


PAUSE_AT, MARKER = None, None
if KIND == "pause-once":
    n, _, MARKER = OP.partition(":")
    OP = ""
    if not os.path.exists(MARKER):
        PAUSE_AT = int(n)
served = [0]

handles = {}
next_handle = [0]
junk = [0]


def new_handle(value):
    next_handle[0] += 1
    h = b"h%d" % next_handle[0]
    handles[h] = value
    return h


def local(path):
    return os.path.join(DIR, os.path.basename(path.decode(errors="replace")))


def answer(ptype, rid, r):
    """The well-behaved reply body to one request."""
    def string():
        (n,) = struct.unpack(">I", r[:4])
        v = bytes(r[4 : 4 + n])
        del r[: 4 + n]
        return v

    if ptype == 11:  # OPENDIR
        string()
        names = sorted(os.listdir(DIR))
        if KIND == "evil":
            names += [
                "app-\x1b[31mred\x1b[0m.txt",
                "note\nerror: forged line",
                "rtl-\u202egpj.exe",
                "sep\u2028error: forged line",
                # backup-shaped: listed as databases, their names in tables and errors
                "rtl\u202eppa-2025-04-01T00-00-00Z-online.bck.gz",
                "esc\x1b[2J\x9b31m-2025-04-01T00-00-00Z-online.bck.gz",
                "iso\u2066x\u2069\u200f-2025-04-01T00-00-00Z-online.bck.gz",
            ]
        return bytes([102]) + struct.pack(">I", rid) + s(new_handle({"names": names}))
    if ptype == 12:  # READDIR
        h = handles.get(string())
        if KIND == "endless":
            entries = []
            for _ in range(200):
                junk[0] += 1
                entries.append(("junk-%09d-%s" % (junk[0], "x" * 80), None))
        else:
            if h is None or not h["names"]:
                return status(rid, 1, "EOF")
            entries = []
            for name in h["names"]:
                try:
                    st = os.stat(os.path.join(DIR, name))
                except OSError:
                    st = os.stat(DIR)
                    st = os.stat_result((0o100644,) + tuple(st)[1:6] + (5,) + tuple(st)[7:])
                entries.append((name, st))
            h["names"] = []
        body = bytes([104]) + struct.pack(">II", rid, len(entries))
        for name, st in entries:
            body += s(name.encode()) + s(name.encode()) + attrs(st)
        return body
    if ptype == 3:  # OPEN
        path = local(string())
        if KIND == "evil":
            return status(rid, 4, "disk \x1b]0;pwned\x07on fire\nerror: forged \u202eline\u2028error: forged again\u061c")
        try:
            f = open(path, "rb")
        except OSError:
            return status(rid, 2, "No such file")
        return bytes([102]) + struct.pack(">I", rid) + s(new_handle({"file": f}))
    if ptype == 5:  # READ
        h = handles.get(string())
        off, n = struct.unpack(">QI", r[:12])
        if n > MAX_READ:
            return status(rid, 4, "READ of %d bytes, over the max-read-length of %d" % (n, MAX_READ))
        h["file"].seek(off)
        data = h["file"].read(n)
        if not data:
            return status(rid, 1, "EOF")
        return bytes([103]) + struct.pack(">I", rid) + s(data)
    if ptype == 200:  # EXTENDED
        if string() == b"limits@openssh.com":
            return bytes([201]) + struct.pack(">IQQQQ", rid, 262144, MAX_READ, MAX_READ, 0)
        return status(rid, 8, "unsupported")
    if ptype == 4:  # CLOSE
        handles.pop(string(), None)
        return status(rid, 0, "OK")
    if ptype == 17:  # STAT
        try:
            st = os.stat(local(string()))
        except OSError:
            return status(rid, 2, "No such file")
        return bytes([105]) + struct.pack(">I", rid) + attrs(st)
    return status(rid, 8, "unsupported")


def main():
    (n,) = struct.unpack(">I", read_exact(4))
    read_exact(n)  # INIT
    send(bytes([2]) + struct.pack(">I", 3) + s(b"limits@openssh.com") + s(b"1"))
    while True:
        (n,) = struct.unpack(">I", read_exact(4))
        body = read_exact(n)
        ptype = body[0]
        (rid,) = struct.unpack(">I", body[1:5])
        rest = bytearray(body[5:])
        op = OPS.get(ptype)
        if op == OP and KIND == "silent":
            continue
        if PAUSE_AT is not None and served[0] >= PAUSE_AT:
            if not os.path.exists(MARKER):
                open(MARKER, "w").close()
            continue
        reply = answer(ptype, rid, rest)
        if ptype == 5 and reply[0] == 103:
            served[0] += len(reply) - 9
        if op == OP:
            if KIND == "badlen":
                out.write(struct.pack(">I", 0x7FFFFFFF) + reply)
                out.flush()
                continue
            if KIND == "wrongid":
                reply = reply[:1] + struct.pack(">I", rid + 1000) + reply[5:]
            elif KIND == "wrongtype":
                reply = bytes([102 if ptype == 17 else 105]) + struct.pack(">I", rid) + struct.pack(">I", 0)
            elif KIND == "truncated":
                reply = reply[:7]
        send(reply)


main()
