/* What a RUN step can reach (tests/cli_run_network.rs, benches/network.sh).
 * Built static at test time (gcc -static) and copied into the step's image.
 *
 *   nettool tcp ADDR PORT          connect: "tcp connected" or "tcp error ERRNO"
 *   nettool abstract NAME          connect to the abstract unix socket @NAME
 *   nettool packet OWN HOST        AF_PACKET on every interface: sends a UDP
 *                                  datagram holding OWN to 127.0.0.1 itself,
 *                                  then reads frames; prints whether frames
 *                                  holding OWN (its own) and HOST (the host's)
 *                                  were seen: "packet own=1 host=0 frames=N"
 *   nettool get ADDR PORT BYTES    asks benches/net_server.py for BYTES, reads
 *                                  them: "get bytes=N ns=T"
 *   nettool gets ADDR PORT BYTES N as get, N times one after the other (a
 *                                  connection each): "gets n=N ns=T"
 *   nettool http ADDR PORT PATH    HTTP/1.0 GET; prints the body
 *   nettool dns NAME               asks /etc/resolv.conf's first nameserver
 *                                  for NAME's A record: "dns NAME A.B.C.D"
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int tcp_connect(const char *addr, const char *port) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "bad address %s\n", addr);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -errno;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int has(const char *buf, size_t n, const char *mark) {
    return memmem(buf, n, mark, strlen(mark)) != NULL;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "tcp")) {
        int fd = tcp_connect(argv[2], argv[3]);
        if (fd < 0) printf("tcp error %s\n", strerror(-fd));
        else printf("tcp connected\n");
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "abstract")) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t n = strlen(argv[2]);
        if (n + 1 > sizeof sa.sun_path) return 2;
        memcpy(sa.sun_path + 1, argv[2], n);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + 1 + n) < 0)
            printf("abstract error %s\n", strerror(errno));
        else
            printf("abstract connected\n");
        return 0;
    }
    if (argc >= 4 && !strcmp(argv[1], "packet")) {
        int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
        if (fd < 0) {
            printf("packet error %s\n", strerror(errno));
            return 0;
        }
        struct timeval tv = {.tv_usec = 100000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in lo = {.sin_family = AF_INET, .sin_port = htons(9)};
        lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        static char buf[65536];
        int own = 0, host = 0;
        long frames = 0;
        /* Read until both marks were seen, 10 reads in a row found
         * nothing, or 5000 frames went by (the host's traffic flows all
         * along: the test sends it from before the step starts until it
         * ends, so on the host's network the mark comes within these). */
        for (int quiet = 0, sent = 0; quiet < 10 && frames < 5000 && !(own && host);) {
            if (sent < 50) {
                sendto(u, argv[2], strlen(argv[2]), 0, (struct sockaddr *)&lo, sizeof lo);
                sent++;
            }
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n < 0) {
                quiet++;
                continue;
            }
            quiet = 0;
            frames++;
            if (has(buf, n, argv[2])) own = 1;
            if (has(buf, n, argv[3])) host = 1;
        }
        printf("packet own=%d host=%d frames=%ld\n", own, host, frames);
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "get")) {
        int fd = tcp_connect(argv[2], argv[3]);
        if (fd < 0) {
            printf("get error %s\n", strerror(-fd));
            return 1;
        }
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        dprintf(fd, "%s\n", argv[4]);
        static char buf[1 << 20];
        long long total = 0;
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) total += n;
        clock_gettime(CLOCK_MONOTONIC, &b);
        long long ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
        printf("get bytes=%lld ns=%lld\n", total, ns);
        return total == atoll(argv[4]) ? 0 : 1;
    }
    if (argc >= 6 && !strcmp(argv[1], "gets")) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int count = atoi(argv[5]);
        static char buf[1 << 16];
        for (int i = 0; i < count; i++) {
            int fd = tcp_connect(argv[2], argv[3]);
            if (fd < 0) {
                printf("gets error %s\n", strerror(-fd));
                return 1;
            }
            dprintf(fd, "%s\n", argv[4]);
            long long total = 0;
            ssize_t n;
            while ((n = read(fd, buf, sizeof buf)) > 0) total += n;
            close(fd);
            if (total != atoll(argv[4])) return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        long long ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
        printf("gets n=%d ns=%lld\n", count, ns);
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "http")) {
        int fd = tcp_connect(argv[2], argv[3]);
        if (fd < 0) {
            printf("http error %s\n", strerror(-fd));
            return 1;
        }
        dprintf(fd, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", argv[4], argv[2]);
        static char buf[65536];
        size_t len = 0;
        ssize_t n;
        while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0) len += n;
        buf[len] = 0;
        char *body = strstr(buf, "\r\n\r\n");
        printf("%s", body ? body + 4 : buf);
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "dns")) {
        FILE *f = fopen("/etc/resolv.conf", "r");
        char line[256], server[64] = "";
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "nameserver %63s", server) == 1) break;
        if (!server[0]) {
            printf("dns error no nameserver\n");
            return 1;
        }
        unsigned char q[512] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}, r[512];
        size_t n = 12;
        for (char *label = strtok(argv[2], "."); label; label = strtok(NULL, ".")) {
            q[n++] = strlen(label);
            memcpy(q + n, label, strlen(label));
            n += strlen(label);
        }
        q[n++] = 0;
        q[n++] = 0, q[n++] = 1, q[n++] = 0, q[n++] = 1;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
        inet_pton(AF_INET, server, &sa.sin_addr);
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sendto(fd, q, n, 0, (struct sockaddr *)&sa, sizeof sa);
        ssize_t got = recv(fd, r, sizeof r, 0);
        if (got < (ssize_t)n + 16 || r[0] != 0x12 || r[1] != 0x34) {
            printf("dns error via %s: %s\n", server, got < 0 ? strerror(errno) : "bad answer");
            return 1;
        }
        printf("dns via %s: %u.%u.%u.%u\n", server, r[got - 4], r[got - 3], r[got - 2], r[got - 1]);
        return 0;
    }
    fprintf(stderr, "usage: see the comment at the top of nettool.c\n");
    return 2;
}
