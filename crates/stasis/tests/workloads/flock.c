/*
 * Benchmark workload: N processes (argument 2): the root and N-1 children,
 * each with 1 MiB of written private memory, all waiting. On "check now"
 * the root tells its children, which verify their memory and exit.
 */
#include "wl.h"
#include <sys/wait.h>

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 100;
	pid_t kids[4096];
	int nk = 0;
	uint8_t *mem;

	wl_init(argc, argv);
	for (int i = 1; i < n && nk < 4096; i++) {
		pid_t c = fork();
		if (c == 0) {
			mem = malloc(1 << 20);
			wl_fill(mem, 1 << 20, i);
			wl_wait();
			_exit(wl_verify(mem, 1 << 20, i) < 0 ? 0 : 1);
		}
		kids[nk++] = c;
	}
	mem = malloc(1 << 20);
	wl_fill(mem, 1 << 20, 0);
	usleep(200000);
	wl_ready();
	wl_wait();
	for (int i = 0; i < nk; i++)
		kill(kids[i], SIGUSR2);
	for (int i = 0; i < nk; i++) {
		int st;
		CHECK(waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed", i);
	}
	CHECK(wl_verify(mem, 1 << 20, 0) < 0, "root memory differs");
	wl_done();
}
