#!/usr/bin/env python3
"""The network bench's server (benches/network.sh): on each connection,
reads a decimal byte count and a newline, sends that many zero bytes and
closes. Listens on ADDR PORT (inside the bench's own network namespace)."""
import os
import socket
import sys
import tempfile
import threading

# A sparse file of zeros on tmpfs: sendfile(2) moves it without copies
# through Python, so the server is not the bottleneck.
ZEROS = tempfile.TemporaryFile(dir="/dev/shm")
ZEROS.truncate(1 << 30)


def serve(conn):
    with conn:
        line = b""
        while not line.endswith(b"\n"):
            got = conn.recv(64)
            if not got:
                return
            line += got
        left = int(line)
        while left > 0:
            n = os.sendfile(conn.fileno(), ZEROS.fileno(), 0, min(left, 1 << 30))
            if n <= 0:
                return
            left -= n


def main():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((sys.argv[1], int(sys.argv[2])))
    srv.listen(128)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
