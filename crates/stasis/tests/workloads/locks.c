/*
 * File locks: an exclusive flock (fd 3), POSIX record locks, a write lock
 * on bytes 10-19 and a read lock from 100 to the end (fd 4), an OFD write
 * lock on a whole file (fd 5), a shared flock (fd 6). After restore a
 * child of ours, opening the files anew, finds every lock in its way,
 * owned by us, and the fdinfo of each descriptor lists its locks.
 */
#include "wl.h"
#include <sys/file.h>
#include <sys/wait.h>

static int open_at(const char *name, int want)
{
	char p[4096];
	wl_path(p, sizeof(p), name);
	int fd = open(p, O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		wl_die(name);
	if (fd != want) {
		dup2(fd, want);
		close(fd);
	}
	if (ftruncate(want, 4096))
		wl_die("ftruncate");
	return want;
}

static int posix_lock(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
	return fcntl(fd, cmd, &fl);
}

static int fdinfo_has(int fd, const char *what)
{
	char p[64], buf[4096];
	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	int f = open(p, O_RDONLY);
	ssize_t n = read(f, buf, sizeof(buf) - 1);
	close(f);
	buf[n > 0 ? n : 0] = 0;
	return strstr(buf, what) != NULL;
}

/* In a child (a different lock owner): what is in the way. */
static int child_checks(pid_t parent)
{
	char p[4096];
	int bad = 0;
	wl_path(p, sizeof(p), "a.lock");
	int a = open(p, O_RDWR);
	if (flock(a, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		bad |= 1;
	wl_path(p, sizeof(p), "b.lock");
	int b = open(p, O_RDWR);
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 12, .l_len = 1};
	if (fcntl(b, F_GETLK, &fl) || fl.l_type != F_WRLCK || fl.l_pid != parent || fl.l_start != 10 || fl.l_len != 10)
		bad |= 2;
	if (posix_lock(b, F_SETLK, F_WRLCK, 5000, 1) == 0 || errno != EAGAIN)
		bad |= 4; /* the read lock from 100 to the end */
	if (posix_lock(b, F_SETLK, F_WRLCK, 30, 10) != 0)
		bad |= 8; /* between the locks: free */
	wl_path(p, sizeof(p), "c.lock");
	int c = open(p, O_RDWR);
	if (posix_lock(c, F_OFD_SETLK, F_RDLCK, 0, 0) == 0 || errno != EAGAIN)
		bad |= 16;
	wl_path(p, sizeof(p), "d.lock");
	int d = open(p, O_RDWR);
	if (flock(d, LOCK_SH | LOCK_NB) != 0)
		bad |= 32; /* shared: another shared lock is fine */
	if (flock(d, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		bad |= 64;
	return bad;
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	flock(open_at("a.lock", 3), LOCK_EX);
	open_at("b.lock", 4);
	if (posix_lock(4, F_SETLK, F_WRLCK, 10, 10) || posix_lock(4, F_SETLK, F_RDLCK, 100, 0))
		wl_die("posix locks");
	if (posix_lock(open_at("c.lock", 5), F_OFD_SETLK, F_WRLCK, 0, 0))
		wl_die("ofd lock");
	flock(open_at("d.lock", 6), LOCK_SH);

	wl_ready();
	wl_wait();

	pid_t me = getpid();
	pid_t c = fork();
	if (c == 0)
		_exit(child_checks(me));
	int st = 0;
	waitpid(c, &st, 0);
	int bad = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	CHECK(!(bad & 1), "the exclusive flock on fd 3 is gone");
	CHECK(!(bad & 2), "the POSIX write lock on bytes 10-19 is gone or changed");
	CHECK(!(bad & 4), "the POSIX read lock from byte 100 is gone");
	CHECK(!(bad & 8), "bytes 30-39 are locked though they were not");
	CHECK(!(bad & 16), "the OFD lock on fd 5 is gone");
	CHECK(!(bad & 32), "the shared flock on fd 6 became exclusive");
	CHECK(!(bad & 64), "the shared flock on fd 6 is gone");
	CHECK(fdinfo_has(3, "FLOCK  ADVISORY  WRITE"), "fdinfo of fd 3 shows no exclusive flock");
	CHECK(fdinfo_has(4, " 10 19") && fdinfo_has(4, " 100 EOF"), "fdinfo of fd 4 does not show both POSIX locks");
	CHECK(fdinfo_has(5, "OFDLCK ADVISORY  WRITE"), "fdinfo of fd 5 shows no OFD lock");
	wl_done();
}
