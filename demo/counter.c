/* Demo program: counts, appending "tick N" to a log every 0.3 s. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	FILE *log = fopen(argc > 1 ? argv[1] : "counter.log", "a");
	unsigned long n = 0;
	struct timespec t = {0, 300 * 1000 * 1000};

	if (!log)
		return 1;
	setvbuf(log, NULL, _IOLBF, 0);
	for (;;) {
		fprintf(log, "tick %lu (pid %d)\n", ++n, getpid());
		nanosleep(&t, NULL);
	}
}
