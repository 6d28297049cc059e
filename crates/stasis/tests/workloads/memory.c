/*
 * Memory of every kind a normal program has, each with a known pattern:
 * heap, large anonymous, a sparse 2 GiB mapping with 16 touched pages,
 * PROT_NONE and read-only memory holding data, MADV_DONTNEED holes, a
 * private file mapping with copy-on-write pages, a shared file mapping, a
 * shared anonymous mapping, guard pages, the stack, and the vDSO.
 */
#include "wl.h"
#include <sys/mman.h>
#include <time.h>

#define PG 4096UL

static void *map(size_t len, int prot, int flags)
{
	void *p = mmap(NULL, len, prot, flags, -1, 0);
	if (p == MAP_FAILED)
		wl_die("mmap");
	return p;
}

static int file_of(const char *name, size_t len, uint64_t seed)
{
	char p[4096];
	int fd;
	uint8_t *buf = malloc(len);

	wl_path(p, sizeof(p), name);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || !buf)
		wl_die("create data file");
	wl_fill(buf, len, seed);
	if (write(fd, buf, len) != (ssize_t)len)
		wl_die("write data file");
	free(buf);
	return fd;
}

static void check_pattern(const char *what, const void *p, size_t len, uint64_t seed)
{
	long at = wl_verify(p, len, seed);
	CHECK(at < 0, "%s: byte %ld differs", what, at);
}

static void check_zero(const char *what, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i]) {
			wl_fail("%s: byte %zu is %d, expected 0", what, i, p[i]);
			return;
		}
}

int main(int argc, char **argv)
{
	uint8_t stack_area[3000];
	struct timespec t0, t1;

	wl_init(argc, argv);

	uint8_t *heap = malloc(1 << 20);
	wl_fill(heap, 1 << 20, 1);

	size_t big_len = 8 << 20;
	uint8_t *big = map(big_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	wl_fill(big, big_len, 2);

	size_t sparse_len = 2UL << 30;
	uint8_t *sparse = map(sparse_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
	for (int i = 0; i < 16; i++)
		wl_fill(sparse + (size_t)i * (sparse_len / 16), PG, 100 + i);

	uint8_t *none = map(4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	wl_fill(none, 4 * PG, 4);
	mprotect(none, 4 * PG, PROT_NONE);

	uint8_t *ro = map(3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	wl_fill(ro, 3 * PG, 5);
	mprotect(ro, 3 * PG, PROT_READ);

	uint8_t *holes = map(8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	wl_fill(holes, 8 * PG, 6);
	madvise(holes + 2 * PG, 3 * PG, MADV_DONTNEED);

	int pfd = file_of("private.dat", 4 * PG, 7);
	uint8_t *priv = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, pfd, 0);
	if (priv == MAP_FAILED)
		wl_die("mmap private file");
	close(pfd);
	wl_fill(priv + PG, PG, 8); /* copy-on-write */

	int sfd = file_of("shared.dat", 2 * PG, 9);
	uint8_t *shf = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
	if (shf == MAP_FAILED)
		wl_die("mmap shared file");
	close(sfd);
	wl_fill(shf + PG, PG, 10);

	uint8_t *shanon = map(4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
	wl_fill(shanon, 4 * PG, 11);

	uint8_t *guard = map(3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	mprotect(guard + PG, PG, PROT_NONE);
	wl_fill(guard, PG, 12);

	uint8_t *dontfork = map(2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	wl_fill(dontfork, 2 * PG, 13);
	madvise(dontfork, 2 * PG, MADV_DONTFORK);
	madvise(dontfork, 2 * PG, MADV_DONTDUMP);

	wl_fill(stack_area, sizeof(stack_area), 14);
	clock_gettime(CLOCK_MONOTONIC, &t0);

	wl_ready();
	wl_wait();

	check_pattern("heap", heap, 1 << 20, 1);
	check_pattern("big anonymous", big, big_len, 2);
	for (int i = 0; i < 16; i++) {
		uint8_t *pg = sparse + (size_t)i * (sparse_len / 16);
		check_pattern("sparse touched page", pg, PG, 100 + i);
		check_zero("sparse untouched page", pg + PG, PG);
	}
	CHECK(mprotect(none, 4 * PG, PROT_READ) == 0, "mprotect PROT_NONE area: %s", strerror(errno));
	check_pattern("PROT_NONE data", none, 4 * PG, 4);
	check_pattern("read-only data", ro, 3 * PG, 5);
	check_pattern("before the hole", holes, 2 * PG, 6);
	check_zero("MADV_DONTNEED hole", holes + 2 * PG, 3 * PG);
	/* the pattern restarts at each fill, so compare the tail piecewise */
	for (size_t i = 5 * PG; i < 8 * PG; i++)
		if (holes[i] != wl_pattern(i, 6)) {
			wl_fail("after the hole: byte %zu differs", i);
			break;
		}
	check_pattern("private file page 0", priv, PG, 7);
	check_pattern("private file copy-on-write page", priv + PG, PG, 8);
	for (size_t i = 2 * PG; i < 4 * PG; i++)
		if (priv[i] != wl_pattern(i, 7)) {
			wl_fail("private file page 2-3: byte %zu differs", i);
			break;
		}
	check_pattern("shared file page 0", shf, PG, 9);
	check_pattern("shared file page 1", shf + PG, PG, 10);
	/* the shared mapping still writes through to the file */
	shf[5] = 0x5a;
	{
		char p[4096];
		uint8_t b = 0;
		wl_path(p, sizeof(p), "shared.dat");
		int fd = open(p, O_RDONLY);
		CHECK(fd >= 0 && pread(fd, &b, 1, 5) == 1 && b == 0x5a, "shared file mapping no longer writes to the file");
		close(fd);
	}
	check_pattern("shared anonymous", shanon, 4 * PG, 11);
	check_pattern("page before a guard page", guard, PG, 12);
	check_pattern("MADV_DONTFORK area", dontfork, 2 * PG, 13);
	check_pattern("stack", stack_area, sizeof(stack_area), 14);
	CHECK(clock_gettime(CLOCK_MONOTONIC, &t1) == 0, "clock_gettime failed after restore");
	CHECK(t1.tv_sec > t0.tv_sec || (t1.tv_sec == t0.tv_sec && t1.tv_nsec >= t0.tv_nsec), "monotonic clock went backwards");
	/* brk still works */
	void *more = sbrk(0);
	CHECK(sbrk(64 * 1024) == more, "sbrk failed after restore");
	wl_done();
}
