/*
 * Signals: handlers with flags and masks, an ignored signal, a blocked
 * mask, pending signals (standard and realtime with their siginfo values,
 * process-wide and thread-directed), and an alternate signal stack.
 */
#include "wl.h"
#include <sys/syscall.h>

#define RT_Q (SIGRTMIN + 1)
#define RT_T (SIGRTMIN + 3)

static stack_t alt;
static volatile int usr1_seen, usr1_on_alt, usr1_code, usr1_pid;
static volatile int rt_vals[8], rt_n;
static volatile int rt_t_seen;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	char here;
	usr1_seen++;
	usr1_code = si->si_code;
	usr1_pid = si->si_pid;
	usr1_on_alt = (char *)&here >= (char *)alt.ss_sp && (char *)&here < (char *)alt.ss_sp + alt.ss_size;
}

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	if (rt_n < 8)
		rt_vals[rt_n++] = si->si_value.sival_int;
}

static void on_rt_t(int sig)
{
	rt_t_seen++;
}

struct want {
	int sig;
	void *handler;
	int flags;
	int masked;
};

int main(int argc, char **argv)
{
	struct sigaction sa, before[65];
	sigset_t block, now, pend;
	union sigval v;

	wl_init(argc, argv);

	alt.ss_sp = malloc(64 * 1024);
	alt.ss_size = 64 * 1024;
	alt.ss_flags = 0;
	if (sigaltstack(&alt, NULL))
		wl_die("sigaltstack");

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGRTMIN + 7);
	sigaction(SIGUSR1, &sa, NULL);

	sa.sa_sigaction = on_rt;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(RT_Q, &sa, NULL);

	sa.sa_handler = on_rt_t;
	sa.sa_flags = SA_RESETHAND;
	sigaction(RT_T, &sa, NULL);

	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);

	memset(before, 0, sizeof(before));
	for (int s = 1; s < 65; s++)
		sigaction(s, NULL, &before[s]); /* glibc hides its own two */

	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, RT_Q);
	sigaddset(&block, RT_T);
	sigaddset(&block, SIGWINCH);
	sigprocmask(SIG_BLOCK, &block, NULL);

	/* pending: process-wide standard and realtime, and thread-directed */
	kill(getpid(), SIGUSR1);
	v.sival_int = 111;
	sigqueue(getpid(), RT_Q, v);
	v.sival_int = 222;
	sigqueue(getpid(), RT_Q, v);
	syscall(SYS_tgkill, getpid(), gettid(), RT_T);

	wl_ready();
	/* wait for SIGUSR2 with our own mask kept */
	while (!wl_go)
		sigsuspend(&block);

	for (int s = 1; s < 65; s++) {
		struct sigaction a;
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		memset(&a, 0, sizeof(a));
		sigaction(s, NULL, &a);
		CHECK(a.sa_handler == before[s].sa_handler, "signal %d: handler changed", s);
		CHECK(a.sa_flags == before[s].sa_flags, "signal %d: flags %#x, expected %#x", s, a.sa_flags, before[s].sa_flags);
		CHECK(!memcmp(&a.sa_mask, &before[s].sa_mask, 8), "signal %d: handler mask changed", s);
	}
	sigprocmask(SIG_BLOCK, NULL, &now);
	for (int s = 1; s < 65; s++)
		CHECK(sigismember(&now, s) == sigismember(&block, s), "signal %d: blocked is %d", s, sigismember(&now, s));
	sigpending(&pend);
	CHECK(sigismember(&pend, SIGUSR1), "SIGUSR1 no longer pending");
	CHECK(sigismember(&pend, RT_Q), "realtime signal no longer pending");
	CHECK(sigismember(&pend, RT_T), "thread-directed signal no longer pending");
	{
		stack_t cur;
		sigaltstack(NULL, &cur);
		CHECK(cur.ss_sp == alt.ss_sp && cur.ss_size == alt.ss_size && !(cur.ss_flags & SS_DISABLE),
		      "alternate stack is %p/%zu/%#x", cur.ss_sp, cur.ss_size, cur.ss_flags);
	}

	sigprocmask(SIG_UNBLOCK, &block, NULL);
	CHECK(usr1_seen == 1, "SIGUSR1 delivered %d times", usr1_seen);
	CHECK(usr1_code == SI_USER && usr1_pid == getpid(), "SIGUSR1 siginfo: code %d pid %d", usr1_code, usr1_pid);
	CHECK(usr1_on_alt, "SIGUSR1 handler did not run on the alternate stack");
	CHECK(rt_n == 2 && rt_vals[0] == 111 && rt_vals[1] == 222, "realtime queue: %d signals, values %d %d", rt_n,
	      rt_vals[0], rt_vals[1]);
	CHECK(rt_t_seen == 1, "thread-directed signal delivered %d times", rt_t_seen);
	{
		struct sigaction a;
		sigaction(RT_T, NULL, &a);
		CHECK(a.sa_handler == SIG_DFL, "SA_RESETHAND did not reset the handler");
	}
	wl_done();
}
