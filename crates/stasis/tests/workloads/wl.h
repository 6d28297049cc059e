/*
 * Shared protocol of the checkpoint workloads.
 *
 * A workload is started as `NAME DIR [ARGS...]` by the test driver. It
 * becomes a session leader, builds its state, writes DIR/ready and waits.
 * The driver dumps it, makes sure it is gone, restores it and sends it
 * SIGUSR2 ("check now"). The workload then verifies its own state, writes
 * "ok" or what differs to DIR/result and exits with 0 or 1.
 *
 * Everything is in this header so each workload is one C file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static const char *wl_dir;
static volatile sig_atomic_t wl_go;
static char wl_failures[8192];
static int wl_failed;

static void wl_on_usr2(int sig)
{
	(void)sig;
	wl_go = 1;
}

static void wl_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", wl_dir, name);
}

/* Record a failed expectation; the workload carries on checking. */
static void wl_fail(const char *fmt, ...)
{
	va_list ap;
	size_t used = strlen(wl_failures);

	wl_failed = 1;
	va_start(ap, fmt);
	vsnprintf(wl_failures + used, sizeof(wl_failures) - used, fmt, ap);
	va_end(ap);
	used = strlen(wl_failures);
	if (used + 1 < sizeof(wl_failures))
		strcat(wl_failures, "\n");
}

#define CHECK(cond, ...)                 \
	do {                             \
		if (!(cond))             \
			wl_fail(__VA_ARGS__); \
	} while (0)

/* Fatal setup error: the test cannot even start. */
static void wl_die(const char *what)
{
	fprintf(stderr, "workload setup failed: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void wl_write_file(const char *name, const char *text)
{
	char p[4096], tmp[4200];
	int fd;

	wl_path(p, sizeof(p), name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		wl_die("create file");
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		wl_die("write file");
	close(fd);
	if (rename(tmp, p))
		wl_die("rename");
}

/*
 * Start: become a session leader, close what the driver's environment
 * leaked to us (keep 0-2, pointed at /dev/null), and prepare for SIGUSR2.
 */
static void wl_init(int argc, char **argv)
{
	struct sigaction sa;
	int fd;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR [ARGS]\n", argv[0]);
		exit(2);
	}
	wl_dir = argv[1];
	/* "no-setsid" anywhere in the arguments: stay in the driver's session
	 * and group, like a job started from a shell */
	/* "keep-stdio": keep 0-2 as given (a terminal, say) */
	int own_session = 1, keep_stdio = 0;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "no-setsid"))
			own_session = 0;
		if (!strcmp(argv[i], "keep-stdio"))
			keep_stdio = 1;
	}
	if (own_session && getsid(0) != getpid() && setsid() < 0)
		wl_die("setsid");
	if (!keep_stdio) {
		fd = open("/dev/null", O_RDWR);
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	close_range(3, ~0U, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wl_on_usr2;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL))
		wl_die("sigaction SIGUSR2");
}

static void wl_ready(void)
{
	char pid[32];

	snprintf(pid, sizeof(pid), "%d\n", getpid());
	wl_write_file("ready", pid);
}

/* Wait for "check now", sleeping; signals the workload blocked stay
 * blocked (and pending). */
static void wl_wait(void)
{
	sigset_t mask;

	sigprocmask(SIG_BLOCK, NULL, &mask);
	sigdelset(&mask, SIGUSR2);
	while (!wl_go)
		sigsuspend(&mask);
}

/* Write the verdict and exit. */
static void wl_done(void)
{
	if (wl_failed) {
		wl_write_file("result", wl_failures);
		exit(1);
	}
	wl_write_file("result", "ok\n");
	exit(0);
}

/* A deterministic byte pattern for memory checks. */
static inline uint8_t wl_pattern(uint64_t i, uint64_t seed)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ULL ^ seed;
	return (uint8_t)(x >> 29);
}

static void wl_fill(void *p, size_t len, uint64_t seed)
{
	uint8_t *b = p;
	for (size_t i = 0; i < len; i++)
		b[i] = wl_pattern(i, seed);
}

/* Index of the first byte that differs from the pattern, or -1. */
static long wl_verify(const void *p, size_t len, uint64_t seed)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < len; i++)
		if (b[i] != wl_pattern(i, seed))
			return (long)i;
	return -1;
}
