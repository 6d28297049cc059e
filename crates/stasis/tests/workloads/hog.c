/*
 * Benchmark workload: touches N MiB of anonymous memory (argument 2), or
 * makes N separate mappings (argument 3, "vmas"), then waits to be
 * checkpointed. After restore, SIGUSR2 makes it verify a sample of pages.
 */
#include "wl.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	size_t mib = argc > 2 ? strtoull(argv[2], NULL, 10) : 256;
	int vmas = argc > 3 && !strcmp(argv[3], "vmas");
	size_t len = mib << 20;
	uint8_t *p = NULL;
	uint8_t **maps = NULL;

	if (vmas) {
		/* mib is the number of mappings; alternate protections keep the
		 * kernel from merging neighbours */
		maps = calloc(mib, sizeof(*maps));
		for (size_t i = 0; i < mib; i++) {
			maps[i] = mmap(NULL, 4096, (i & 1) ? PROT_READ | PROT_WRITE : PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
				       -1, 0);
			if (maps[i] == MAP_FAILED)
				wl_die("mmap");
			if (i & 1)
				maps[i][0] = (uint8_t)i;
		}
	} else {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			wl_die("mmap");
		for (size_t i = 0; i < len; i += 4096)
			*(uint64_t *)(p + i) = i * 0x9e3779b97f4a7c15ULL;
	}
	wl_ready();
	wl_wait();
	if (vmas) {
		for (size_t i = 1; i < mib; i += 2)
			CHECK(maps[i][0] == (uint8_t)i, "mapping %zu lost its byte", i);
	} else {
		for (size_t i = 0; i < len; i += 4096 * 61)
			CHECK(*(uint64_t *)(p + i) == i * 0x9e3779b97f4a7c15ULL, "page at %zu differs", i);
	}
	wl_done();
}
