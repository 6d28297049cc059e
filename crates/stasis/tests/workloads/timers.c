/*
 * Timers: interval timers (real and virtual) and POSIX timers with ids that
 * have a gap, different clocks and notifications. After restore the same
 * ids exist with about the same remaining time, and a short timer armed
 * before the checkpoint still fires exactly once.
 */
#include "wl.h"
#include <sys/time.h>
#include <time.h>

static volatile int fired, fired_val;

static void on_fire(int sig, siginfo_t *si, void *uc)
{
	fired++;
	fired_val = si->si_value.sival_int;
}

static double secs(const struct timespec *t)
{
	return t->tv_sec + t->tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	timer_t t0, t1, t2, t3;
	struct sigevent ev;
	struct itimerspec sp;
	struct itimerval iv;
	struct sigaction sa;
	sigset_t block;

	wl_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fire;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGRTMIN + 5, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGRTMIN + 5);
	sigprocmask(SIG_BLOCK, &block, NULL);

	memset(&iv, 0, sizeof(iv));
	iv.it_value.tv_sec = 1000;
	setitimer(ITIMER_REAL, &iv, NULL);
	iv.it_value.tv_sec = 500;
	iv.it_interval.tv_sec = 7;
	setitimer(ITIMER_VIRTUAL, &iv, NULL);

	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGRTMIN + 4;
	ev.sigev_value.sival_int = 0x77;
	if (timer_create(CLOCK_MONOTONIC, &ev, &t0))
		wl_die("timer_create");
	ev.sigev_notify = SIGEV_NONE;
	if (timer_create(CLOCK_REALTIME, &ev, &t1) || timer_create(CLOCK_REALTIME, &ev, &t2))
		wl_die("timer_create");
	timer_delete(t1);
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGRTMIN + 5;
	ev.sigev_value.sival_int = 0x55;
	if (timer_create(CLOCK_BOOTTIME, &ev, &t3))
		wl_die("timer_create");

	memset(&sp, 0, sizeof(sp));
	sp.it_value.tv_sec = 300;
	sp.it_interval.tv_sec = 5;
	timer_settime(t0, 0, &sp, NULL);
	memset(&sp, 0, sizeof(sp));
	sp.it_value.tv_sec = 200;
	timer_settime(t2, 0, &sp, NULL);
	memset(&sp, 0, sizeof(sp));
	sp.it_value.tv_sec = 2;
	timer_settime(t3, 0, &sp, NULL);

	wl_ready();
	while (!wl_go)
		sigsuspend(&block);

	getitimer(ITIMER_REAL, &iv);
	CHECK(iv.it_value.tv_sec > 900 && iv.it_value.tv_sec <= 1000, "ITIMER_REAL has %ld s left", (long)iv.it_value.tv_sec);
	getitimer(ITIMER_VIRTUAL, &iv);
	CHECK(iv.it_value.tv_sec > 490 && iv.it_value.tv_sec <= 500 && iv.it_interval.tv_sec == 7,
	      "ITIMER_VIRTUAL: %ld s left, interval %ld", (long)iv.it_value.tv_sec, (long)iv.it_interval.tv_sec);

	CHECK(timer_gettime(t0, &sp) == 0, "timer %ld is gone", (long)(intptr_t)t0);
	CHECK(secs(&sp.it_value) > 250 && secs(&sp.it_value) <= 300 && sp.it_interval.tv_sec == 5,
	      "timer 0: %.1f s left, interval %ld", secs(&sp.it_value), (long)sp.it_interval.tv_sec);
	CHECK(timer_gettime(t1, &sp) != 0 && errno == EINVAL, "deleted timer %ld came back", (long)(intptr_t)t1);
	CHECK(timer_gettime(t2, &sp) == 0, "timer %ld is gone", (long)(intptr_t)t2);
	CHECK(secs(&sp.it_value) > 150 && secs(&sp.it_value) <= 200, "timer 2: %.1f s left", secs(&sp.it_value));
	CHECK(timer_gettime(t3, &sp) == 0, "timer %ld is gone", (long)(intptr_t)t3);

	/* the short timer fires (or already has, pending): exactly once */
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	for (int i = 0; i < 400 && !fired; i++)
		usleep(10000);
	usleep(50000);
	CHECK(fired == 1 && fired_val == 0x55, "short timer fired %d times (value %#x)", fired, fired_val);
	wl_done();
}
