/*
 * A task checkpointed while blocked in a system call: a relative
 * clock_nanosleep of 3 s and a nanosleep of 1 s must complete with their
 * full time and without EINTR; sigsuspend-style waits are covered by every
 * other workload.
 */
#include "wl.h"
#include <time.h>

int main(int argc, char **argv)
{
	struct timespec req = {3, 0}, rem, t0, t1;
	sigset_t usr2;
	int r1, r2, e1 = 0, e2 = 0;

	wl_init(argc, argv);
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, NULL);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	wl_ready();
	r1 = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
	if (r1)
		e1 = r1;
	req.tv_sec = 1;
	r2 = nanosleep(&req, &rem);
	if (r2)
		e2 = errno;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	wl_write_file("slept", "yes\n");
	sigprocmask(SIG_UNBLOCK, &usr2, NULL);
	wl_wait();

	double el = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	CHECK(r1 == 0, "clock_nanosleep returned %d (%s)", r1, strerror(e1));
	CHECK(r2 == 0, "nanosleep failed: %s", strerror(e2));
	CHECK(el >= 3.99, "slept only %.3f s of 4", el);
	wl_done();
}
