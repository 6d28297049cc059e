/*
 * A tree that keeps changing while it is frozen: one thread keeps creating
 * and joining threads, a child keeps forking short-lived grandchildren and
 * reaping them, and another thread keeps writing memory. Whatever instant
 * the checkpoint catches must come back consistent: the counters keep
 * going up after restore, every thread and child still works, and the
 * memory written is intact.
 */
#include "wl.h"
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

static volatile uint64_t spawned, forked_seen, written;
static volatile int stop;
static uint64_t *area;
#define AREA_WORDS (1 << 20)

static void *nothing(void *a)
{
	return a;
}

static void *spawner(void *a)
{
	while (!stop) {
		pthread_t t;
		if (pthread_create(&t, NULL, nothing, NULL) == 0) {
			pthread_join(t, NULL);
			spawned++;
		}
	}
	return NULL;
}

static void *writer(void *a)
{
	uint64_t n = 0;
	while (!stop) {
		for (uint64_t i = 0; i < AREA_WORDS; i += 512)
			area[i] = n;
		/* a full pass is complete: publish it */
		written = n++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t ts, tw;
	uint64_t *forked;

	wl_init(argc, argv);
	area = mmap(NULL, AREA_WORDS * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	forked = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	{
		sigset_t usr2;
		sigemptyset(&usr2);
		sigaddset(&usr2, SIGUSR2);
		pthread_sigmask(SIG_BLOCK, &usr2, NULL);
		pthread_create(&ts, NULL, spawner, NULL);
		pthread_create(&tw, NULL, writer, NULL);
		pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
	}
	pid_t forker = fork();
	if (forker == 0) {
		signal(SIGUSR2, SIG_DFL);
		for (;;) {
			pid_t c = fork();
			if (c == 0)
				_exit(3);
			int st;
			if (waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 3)
				__sync_fetch_and_add(forked, 1);
		}
	}
	while (spawned < 50 || *forked < 50 || written < 2)
		usleep(1000);
	wl_ready();
	wl_wait();

	uint64_t s0 = spawned, f0 = *forked, w0 = written;
	usleep(300000);
	CHECK(spawned > s0, "threads are no longer being created (%llu)", (unsigned long long)spawned);
	CHECK(*forked > f0, "children are no longer being forked (%llu)", (unsigned long long)*forked);
	CHECK(written > w0, "the writer thread stopped");
	stop = 1;
	pthread_join(ts, NULL);
	pthread_join(tw, NULL);
	/* every word of the last full pass holds the same value or the next */
	uint64_t last = written;
	for (uint64_t i = 0; i < AREA_WORDS; i += 512)
		if (area[i] != last && area[i] != last + 1) {
			wl_fail("word %llu holds %llu, last pass %llu", (unsigned long long)i, (unsigned long long)area[i],
				(unsigned long long)last);
			break;
		}
	kill(forker, SIGKILL);
	int st;
	CHECK(waitpid(forker, &st, 0) == forker, "cannot reap the forking child");
	wl_done();
}
