/* The system calls Docker's default seccomp profile refuses, and ordinary
 * ones it allows, each tried once: one line per call, `NAME ok` or
 * `NAME ERRNO`. Built by the tests with `gcc -static` (the RUN bases are
 * busybox) and run on the host too, so a refusal is told from the
 * kernel's own answer. `syscalls ordinary` tries only the ordinary ones,
 * which must all work under the filter; `syscalls attach PID` tries to
 * ptrace PID. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *name(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno%d", e);
        return buf;
    }
    }
}

static void report(const char *what, long r) {
    printf("%s %s\n", what, r < 0 ? name(errno) : "ok");
    fflush(stdout);
}

static void *thread_main(void *arg) { return arg; }

/* Threads (glibc's clone3, then clone), fork and wait, anonymous and file
 * mappings, file I/O, a TCP socket over loopback, a pipe. */
static int ordinary(void) {
    int failed = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0 || pthread_join(t, NULL) != 0) {
        printf("thread failed\n");
        failed = 1;
    }
    pid_t pid = fork();
    if (pid == 0) _exit(7);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 7) {
        printf("fork failed\n");
        failed = 1;
    }
    void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m, 4096, PROT_READ) != 0 || munmap(m, 1 << 20) != 0) {
        printf("mmap failed\n");
        failed = 1;
    }
    int fd = open("/tmp/syscalls.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
    char buf[6] = {0};
    if (fd < 0 || write(fd, "hello", 5) != 5 || pread(fd, buf, 5, 0) != 5 || strcmp(buf, "hello") != 0 ||
        fsync(fd) != 0 || close(fd) != 0 || unlink("/tmp/syscalls.txt") != 0) {
        printf("file failed\n");
        failed = 1;
    }
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int cli = -1;
    if (srv < 0 || bind(srv, (struct sockaddr *)&a, sizeof a) != 0 || listen(srv, 1) != 0 ||
        getsockname(srv, (struct sockaddr *)&a, &len) != 0 || (cli = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        connect(cli, (struct sockaddr *)&a, sizeof a) != 0) {
        printf("socket failed %s\n", name(errno));
        failed = 1;
    }
    int p[2];
    if (pipe(p) != 0 || write(p[1], "x", 1) != 1 || read(p[0], buf, 1) != 1) {
        printf("pipe failed\n");
        failed = 1;
    }
    printf("ordinary %s\n", failed ? "failed" : "ok");
    return failed;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "ordinary") == 0) return ordinary();
    if (argc > 2 && strcmp(argv[1], "attach") == 0) {
        /* Seized, never stopped: this process's exit detaches it. */
        report("ptrace", ptrace(PTRACE_SEIZE, atoi(argv[2]), 0, 0));
        return 0;
    }

    /* In a child: a new user namespace cannot be left again. */
    pid_t pid = fork();
    if (pid == 0) {
        report("unshare-user", unshare(CLONE_NEWUSER));
        _exit(0);
    }
    waitpid(pid, NULL, 0);

    report("keyctl", syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0));

    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    report("io_uring_setup", syscall(SYS_io_uring_setup, 4, &params));

    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    report("bpf", syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));

    struct perf_event_attr pe;
    memset(&pe, 0, sizeof pe);
    pe.type = PERF_TYPE_SOFTWARE;
    pe.size = sizeof pe;
    pe.config = PERF_COUNT_SW_CPU_CLOCK;
    pe.exclude_kernel = 1;
    report("perf_event_open", syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0));

    report("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY));

    /* Docker's profile answers clone3 with ENOSYS (glibc falls back to clone). */
    report("clone3", syscall(SYS_clone3, NULL, 0));

    return ordinary();
}
