/*
 * Threads: N threads (argument 2, default 6), each with its own TID, TLS
 * value, name, signal mask, alternate stack and a pending thread-directed
 * signal, blocked in different places: a futex (condition variable),
 * nanosleep, read(2) on a pipe, poll(2), or spinning with values in
 * registers ("calm" as argument 3: none spins). After restore each thread checks its own state and the main
 * thread collects the verdicts.
 */
#include "wl.h"
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

#define MAXT 256

struct th {
	pthread_t t;
	int idx;
	pid_t tid;
	int kind;
	stack_t alt;
	char failure[256];
	volatile int done;
};

static struct th ths[MAXT];
static int nthreads = 6;
static __thread uint64_t tls = 0;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static volatile int wake;
static int pipefd[2];
static volatile int started;
static volatile int pending_seen[MAXT];
/* "calm": no thread spins (for benchmarks on small machines) */
static int calm;

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	pid_t me = syscall(SYS_gettid);
	for (int i = 0; i < nthreads; i++)
		if (ths[i].tid == me)
			pending_seen[i]++;
}

static void fail(struct th *t, const char *what)
{
	if (!t->failure[0])
		snprintf(t->failure, sizeof(t->failure), "thread %d (%d): %s", t->idx, t->tid, what);
}

static void *run(void *arg)
{
	struct th *t = arg;
	char name[16], got[16];
	sigset_t m;

	t->tid = syscall(SYS_gettid);
	tls = 0x1000 + t->idx;
	snprintf(name, sizeof(name), "wl-th-%d", t->idx);
	pthread_setname_np(pthread_self(), name);
	t->alt.ss_sp = malloc(32768);
	t->alt.ss_size = 32768;
	t->alt.ss_flags = 0;
	sigaltstack(&t->alt, NULL);
	/* each thread blocks a different extra signal, and SIGRTMIN+2 */
	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	sigaddset(&m, SIGRTMIN + 2);
	sigaddset(&m, SIGRTMIN + 10 + t->idx % 8);
	pthread_sigmask(SIG_BLOCK, &m, NULL);
	/* a signal for this thread only, pending until unblocked */
	syscall(SYS_tgkill, getpid(), t->tid, SIGRTMIN + 2);
	__sync_fetch_and_add(&started, 1);

	t->kind = t->idx % (calm ? 4 : 5);
	switch (t->kind) {
	case 0:
		pthread_mutex_lock(&mu);
		while (!wake)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
		break;
	case 1: {
		struct timespec ts = {3, 0};
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (nanosleep(&ts, &ts))
			;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec < 3 - 1)
			fail(t, "nanosleep was cut short");
		while (!wake)
			usleep(1000);
		break;
	}
	case 2: {
		char c;
		ssize_t n;
		while ((n = read(pipefd[0], &c, 1)) < 0 && errno == EINTR)
			;
		if (n != 1)
			fail(t, "read from the pipe failed");
		break;
	}
	case 3: {
		struct pollfd p = {pipefd[0], POLLIN, 0};
		while (!wake)
			poll(&p, 1, 50);
		break;
	}
	case 4: {
		uint64_t r12;
		asm volatile("mov %1, %%r12\n"
			     "1: pause\n"
			     "cmpl $0, %2\n"
			     "je 1b\n"
			     "mov %%r12, %0\n"
			     : "=r"(r12)
			     : "r"(0xabc000ULL + t->idx), "m"(wake)
			     : "r12", "memory", "cc");
		if (r12 != 0xabc000ULL + t->idx)
			fail(t, "r12 changed");
		break;
	}
	}
	if (tls != 0x1000 + (uint64_t)t->idx)
		fail(t, "TLS value changed");
	if (syscall(SYS_gettid) != t->tid)
		fail(t, "TID changed");
	prctl(PR_GET_NAME, got);
	if (strcmp(got, name))
		fail(t, "name changed");
	{
		stack_t cur;
		sigaltstack(NULL, &cur);
		if (cur.ss_sp != t->alt.ss_sp || cur.ss_size != t->alt.ss_size)
			fail(t, "alternate stack changed");
	}
	pthread_sigmask(SIG_BLOCK, NULL, &m);
	if (!sigismember(&m, SIGRTMIN + 10 + t->idx % 8) || !sigismember(&m, SIGRTMIN + 2))
		fail(t, "signal mask changed");
	{
		sigset_t p;
		sigpending(&p);
		if (!sigismember(&p, SIGRTMIN + 2))
			fail(t, "thread-directed signal no longer pending");
	}
	sigemptyset(&m);
	sigaddset(&m, SIGRTMIN + 2);
	pthread_sigmask(SIG_UNBLOCK, &m, NULL);
	if (pending_seen[t->idx] != 1)
		fail(t, "thread-directed signal not delivered to this thread");
	t->done = 1;
	return NULL;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	wl_init(argc, argv);
	if (argc > 2)
		nthreads = atoi(argv[2]);
	calm = argc > 3 && !strcmp(argv[3], "calm");
	if (nthreads > MAXT)
		nthreads = MAXT;
	if (pipe(pipefd))
		wl_die("pipe");
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_rt;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGRTMIN + 2, &sa, NULL);
	for (int i = 0; i < nthreads; i++) {
		ths[i].idx = i;
		if (pthread_create(&ths[i].t, NULL, run, &ths[i]))
			wl_die("pthread_create");
	}
	while (started < nthreads)
		usleep(1000);
	usleep(100000); /* let them reach their blocking points */
	wl_ready();
	wl_wait();

	/* wake everybody */
	pthread_mutex_lock(&mu);
	wake = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < nthreads; i++)
		if (write(pipefd[1], "x", 1) != 1)
			wl_fail("write to the pipe failed");
	for (int i = 0; i < nthreads; i++) {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 20;
		if (pthread_timedjoin_np(ths[i].t, NULL, &dl))
			wl_fail("thread %d did not finish", i);
		else if (ths[i].failure[0])
			wl_fail("%s", ths[i].failure);
	}
	wl_done();
}
