/*
 * Seccomp: filter A (getcwd fails with EOPNOTSUPP) shared by both threads,
 * filter B (uname fails with EXDEV) in the main thread only, and a child
 * process in strict mode blocked in read(). After restore each thread
 * still has exactly its filters; the shared one is still shared (a TSYNC
 * install by the main thread reaches the other thread); the strict child,
 * woken, may still only read, write and exit.
 */
#include "wl.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

static int wake1[2], wake2[2], done2[2];
static volatile int t1_ok = -1;
static char t1_why[256];
static pid_t t1_tid;

static int deny(int nr, int err, unsigned flags, int tsync)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags | (tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0), &prog);
}

static int fails_with(long r, int err)
{
	return r < 0 && errno == err;
}

static void *thread1(void *arg)
{
	char c, buf[64];
	struct utsname u;

	t1_tid = gettid();
	read(wake1[0], &c, 1);
	int ok = getcwd(buf, sizeof(buf)) == NULL && errno == EOPNOTSUPP;
	if (!ok)
		snprintf(t1_why, sizeof(t1_why), "thread: getcwd is not denied");
	if (ok && uname(&u) != 0) {
		ok = 0;
		snprintf(t1_why, sizeof(t1_why), "thread: uname is denied (filter B leaked to it)");
	}
	/* second wake: after the main thread's TSYNC install */
	read(wake1[0], &c, 1);
	if (ok && !fails_with(sched_yield(), EDOM)) {
		ok = 0;
		snprintf(t1_why, sizeof(t1_why), "thread: the TSYNC filter did not reach it");
	}
	t1_ok = ok;
	return arg;
}

/* The strict child: after its read returns it may only write and exit. */
static void strict_child(void)
{
	char c;
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	write(done2[1], "s", 1);
	prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0);
	read(wake2[0], &c, 1);
	write(done2[1], "k", 1);
	syscall(SYS_exit, 0);
}

static int status_field(pid_t tid, const char *key)
{
	char p[64], line[256];
	snprintf(p, sizeof(p), "/proc/self/task/%d/status", tid);
	FILE *f = fopen(p, "r");
	int v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			v = atoi(line + strlen(key) + 1);
	if (f)
		fclose(f);
	return v;
}

int main(int argc, char **argv)
{
	pthread_t t1;
	char buf[64], c;
	struct utsname u;

	wl_init(argc, argv);
	if (pipe(wake1) || pipe(wake2) || pipe(done2))
		wl_die("pipe");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		wl_die("no_new_privs");
	pid_t child = fork();
	if (child == 0)
		strict_child();
	if (read(done2[0], &c, 1) != 1)
		wl_die("strict child start");
	if (deny(__NR_getcwd, EOPNOTSUPP, SECCOMP_FILTER_FLAG_LOG, 0))
		wl_die("filter A");
	pthread_create(&t1, NULL, thread1, NULL);
	if (deny(__NR_uname, EXDEV, 0, 0))
		wl_die("filter B");
	usleep(100000); /* the strict child is in read() now */

	wl_ready();
	wl_wait();

	CHECK(getcwd(buf, sizeof(buf)) == NULL && errno == EOPNOTSUPP, "main: getcwd is not denied");
	CHECK(fails_with(uname(&u), EXDEV), "main: uname is not denied");
	CHECK(status_field(gettid(), "Seccomp") == 2 && status_field(gettid(), "Seccomp_filters") == 2, "main: mode %d with %d filters",
	      status_field(gettid(), "Seccomp"), status_field(gettid(), "Seccomp_filters"));
	CHECK(status_field(t1_tid, "Seccomp_filters") == 1, "thread: %d filters", status_field(t1_tid, "Seccomp_filters"));
	{
		char p[64], line[256];
		int mode = -1;
		snprintf(p, sizeof(p), "/proc/%d/status", child);
		FILE *f = fopen(p, "r");
		while (f && fgets(line, sizeof(line), f))
			if (!strncmp(line, "Seccomp:", 8))
				mode = atoi(line + 8);
		if (f)
			fclose(f);
		CHECK(mode == 1, "strict child: mode %d", mode);
	}
	write(wake1[1], "1", 1);
	usleep(50000);
	long r = deny(__NR_sched_yield, EDOM, 0, 1);
	CHECK(r == 0, "TSYNC install after restore failed: %ld (%s)", r, strerror(errno));
	write(wake1[1], "2", 1);
	pthread_join(t1, NULL);
	CHECK(t1_ok == 1, "%s", t1_why);
	write(wake2[1], "w", 1);
	CHECK(read(done2[0], &c, 1) == 1 && c == 'k', "the strict child did not answer");
	int st = -1;
	CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0, "strict child ended with %#x", st);
	wl_done();
}
