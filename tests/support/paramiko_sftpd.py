"""A paramiko-based SFTP server on 127.0.0.1 for tests: not OpenSSH, to show sqlbk reaches
other SSH implementations. Serves the real file system read-only to one public key.

    python3 paramiko_sftpd.py HOST_KEY AUTHORIZED_PUB

Prints the port on stdout once it listens; runs until killed.
"""

import os
import socket
import sys
import threading

import paramiko
from paramiko import SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface

HOST_KEY = paramiko.Ed25519Key.from_private_key_file(sys.argv[1])
with open(sys.argv[2]) as f:
    ALLOWED = f.read().split()[1]


class Server(paramiko.ServerInterface):
    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL if key.get_base64() == ALLOWED else paramiko.AUTH_FAILED


class Handle(SFTPHandle):
    def stat(self):
        return SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))


class Sftp(SFTPServerInterface):
    def list_folder(self, path):
        try:
            out = []
            for name in os.listdir(path):
                attrs = SFTPAttributes.from_stat(os.lstat(os.path.join(path, name)))
                attrs.filename = name
                out.append(attrs)
            return out
        except OSError as e:
            return SFTPServer.convert_errno(e.errno)

    def stat(self, path):
        try:
            return SFTPAttributes.from_stat(os.stat(path))
        except OSError as e:
            return SFTPServer.convert_errno(e.errno)

    def lstat(self, path):
        try:
            return SFTPAttributes.from_stat(os.lstat(path))
        except OSError as e:
            return SFTPServer.convert_errno(e.errno)

    def open(self, path, flags, attr):
        if flags & (os.O_WRONLY | os.O_RDWR):
            return paramiko.SFTP_PERMISSION_DENIED
        try:
            f = open(path, "rb")
        except OSError as e:
            return SFTPServer.convert_errno(e.errno)
        handle = Handle(flags)
        handle.readfile = f
        handle.filename = path
        return handle


def serve(conn):
    transport = paramiko.Transport(conn)
    transport.add_server_key(HOST_KEY)
    transport.set_subsystem_handler("sftp", SFTPServer, Sftp)
    transport.start_server(server=Server())


listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print(listener.getsockname()[1], flush=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
