/*
 * Threads blocked in calls the kernel restarts after an interruption
 * through its own restart state, which a checkpoint cannot carry: poll
 * without and with a timeout, a futex wait with a timeout (through
 * pthread_cond_timedwait), and select. No signal handlers: none of them
 * may see EINTR. After restore each is woken the normal way and reports
 * what its call returned.
 */
#include "wl.h"
#include <poll.h>
#include <pthread.h>
#include <sys/select.h>
#include <time.h>

static int p_inf[2], p_fin[2], p_sel[2];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int flag;
static volatile long r_inf = -99, r_fin = -99, r_cond = -99, r_sel = -99;
static volatile int e_inf, e_fin, e_sel;

static void *poll_inf(void *a)
{
	struct pollfd p = {.fd = p_inf[0], .events = POLLIN};
	r_inf = poll(&p, 1, -1);
	e_inf = errno;
	return a;
}

static void *poll_fin(void *a)
{
	struct pollfd p = {.fd = p_fin[0], .events = POLLIN};
	r_fin = poll(&p, 1, 120000);
	e_fin = errno;
	return a;
}

static void *cond_wait(void *a)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 120;
	pthread_mutex_lock(&mu);
	int rc = 0;
	while (!flag && rc == 0)
		rc = pthread_cond_timedwait(&cv, &mu, &ts);
	r_cond = rc;
	pthread_mutex_unlock(&mu);
	return a;
}

static void *sel(void *a)
{
	fd_set s;
	FD_ZERO(&s);
	FD_SET(p_sel[0], &s);
	struct timeval tv = {.tv_sec = 120};
	r_sel = select(p_sel[0] + 1, &s, NULL, NULL, &tv);
	e_sel = errno;
	return a;
}

int main(int argc, char **argv)
{
	pthread_t t[4];

	wl_init(argc, argv);
	if (pipe(p_inf) || pipe(p_fin) || pipe(p_sel))
		wl_die("pipe");
	pthread_create(&t[0], NULL, poll_inf, NULL);
	pthread_create(&t[1], NULL, poll_fin, NULL);
	pthread_create(&t[2], NULL, cond_wait, NULL);
	pthread_create(&t[3], NULL, sel, NULL);
	usleep(200000); /* all four are blocked now */

	wl_ready();
	wl_wait();

	usleep(100000); /* a call that failed on restore has returned by now */
	CHECK(r_inf == -99 && r_fin == -99 && r_sel == -99 && r_cond == -99, "a call returned before being woken: poll %ld/%d, timed poll %ld/%d, select %ld/%d, cond %ld",
	      r_inf, e_inf, r_fin, e_fin, r_sel, e_sel, r_cond);
	write(p_inf[1], "x", 1);
	write(p_fin[1], "x", 1);
	write(p_sel[1], "x", 1);
	pthread_mutex_lock(&mu);
	flag = 1;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	CHECK(r_inf == 1, "poll without timeout returned %ld (errno %d)", r_inf, e_inf);
	CHECK(r_fin == 1, "poll with a timeout returned %ld (errno %d)", r_fin, e_fin);
	CHECK(r_sel == 1, "select returned %ld (errno %d)", r_sel, e_sel);
	CHECK(r_cond == 0, "pthread_cond_timedwait returned %ld", r_cond);
	wl_done();
}
