"""A DNS server for tests/cli_run_network.rs: on ADDR:53 (UDP), answers
every A query with the address ANSWER. Prints one line per answer."""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
answer = bytes(int(x) for x in sys.argv[2].split("."))
while True:
    q, peer = s.recvfrom(512)
    # header: id, flags=response+RD+RA, qd=1, an=1
    i = 12
    while q[i] != 0:
        i += q[i] + 1
    question = q[12:i + 5]
    r = q[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + question
    r += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + answer
    s.sendto(r, peer)
    print("answered", peer, flush=True)
