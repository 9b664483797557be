#!/usr/bin/env python3
"""An ALPC server that takes a request and never answers it, written from the message
format in the book (docs/src/ports.md) and in ports-demo/src/alpc.rs, not from the
server's code: for the test that a client gives up on a server that lives but is silent.

    python3 ports-demo/tests/silent_alpc.py PATH

It listens at PATH (SOCK_SEQPACKET, mode 0600), accepts one client, takes its connect
(a header and the client's section), answers with an accept and a sealed section of its
own, takes one request, and then says nothing until the client closes its end. It
removes PATH before it ends.
"""

import fcntl
import os
import socket
import struct
import sys

# magic, kind, path, id, seq, at, len, reply_at, reply_cap: 48 bytes, little-endian.
HEADER = struct.Struct("<4sHHIIQQQQ")
CONNECT, ACCEPT = 1, 2
BUFFER = HEADER.size + 256 + 1


def main() -> int:
    path = sys.argv[1]
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    old = os.umask(0o177)
    listener.bind(path)
    os.umask(old)
    try:
        listener.listen(1)
        print(f"listening at {path}", flush=True)
        conn, _ = listener.accept()
        with conn:
            data, fds, _, _ = socket.recv_fds(conn, BUFFER, 4)
            for fd in fds:
                os.close(fd)
            magic, kind, _, _, _, _, _, _, reply_cap = HEADER.unpack_from(data)
            if magic != b"ALPC" or kind != CONNECT or len(fds) != 1:
                print("the first message is not a connect with one section", flush=True)
                return 1
            size = max(4096, min(reply_cap, 64 << 20))
            section = os.memfd_create("silent-reply-section", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            os.ftruncate(section, size)
            seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
            fcntl.fcntl(section, fcntl.F_ADD_SEALS, seals)
            accept = HEADER.pack(b"ALPC", ACCEPT, 0, 1, 0, 0, size, 0, 0)
            socket.send_fds(conn, [accept], [section])
            os.close(section)
            print("accepted channel 1", flush=True)
            data = conn.recv(BUFFER)
            _, kind, _, _, seq, _, _, _, _ = HEADER.unpack_from(data)
            print(f"took request {seq} (kind {kind}): I do not answer it", flush=True)
            while conn.recv(BUFFER):
                pass
            print("the client closed its end", flush=True)
    finally:
        os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
