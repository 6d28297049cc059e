/*
 * Files: regular files with offsets and open flags, dup'd fds sharing one
 * offset, a separately opened description of the same file, an append-only
 * file, a directory, /dev/null, /dev/zero, /dev/urandom, a high fd number
 * with close-on-exec, and a file deleted while open (with its content).
 */
#include "wl.h"
#include <dirent.h>

static int open_at(const char *name, int flags, int fd_wanted)
{
	char p[4096];
	int fd;

	wl_path(p, sizeof(p), name);
	fd = open(p, flags, 0644);
	if (fd < 0)
		wl_die(name);
	if (fd != fd_wanted) {
		if (dup2(fd, fd_wanted) < 0)
			wl_die("dup2");
		close(fd);
	}
	return fd_wanted;
}

static void move_fd(int fd, int want)
{
	if (fd < 0)
		wl_die("open");
	if (fd != want) {
		dup2(fd, want);
		close(fd);
	}
}

static void check_fd(int fd, int flags, off_t pos, int cloexec)
{
	int fl = fcntl(fd, F_GETFL);
	CHECK(fl >= 0, "fd %d is closed", fd);
	CHECK((fl & (O_ACCMODE | O_APPEND | O_NONBLOCK)) == flags, "fd %d: flags %#x, expected %#x", fd,
	      fl & (O_ACCMODE | O_APPEND | O_NONBLOCK), flags);
	if (pos >= 0)
		CHECK(lseek(fd, 0, SEEK_CUR) == pos, "fd %d: offset %ld, expected %ld", fd, (long)lseek(fd, 0, SEEK_CUR),
		      (long)pos);
	CHECK(!!(fcntl(fd, F_GETFD) & FD_CLOEXEC) == cloexec, "fd %d: close-on-exec is %d", fd, !cloexec);
}

int main(int argc, char **argv)
{
	char buf[8192], p[4096];
	uint8_t gone_data[5000];

	wl_init(argc, argv);

	int a = open_at("a.txt", O_RDWR | O_CREAT, 3);
	wl_fill(buf, 100, 31);
	write(a, buf, 100);
	lseek(a, 42, SEEK_SET);
	dup2(a, 4); /* shares the offset */
	int b = open_at("b.log", O_WRONLY | O_CREAT | O_APPEND, 5);
	write(b, "first\n", 6);
	int a2 = open_at("a.txt", O_RDONLY | O_NONBLOCK, 6);
	lseek(a2, 7, SEEK_SET);
	wl_path(p, sizeof(p), "");
	move_fd(open(p, O_RDONLY | O_DIRECTORY), 7);
	move_fd(open("/dev/null", O_WRONLY), 8);
	move_fd(open("/dev/zero", O_RDONLY), 9);
	move_fd(open("/dev/urandom", O_RDONLY), 10);
	dup3(3, 100, O_CLOEXEC);
	int g = open_at("gone.txt", O_RDWR | O_CREAT, 11);
	wl_fill(gone_data, sizeof(gone_data), 32);
	write(g, gone_data, sizeof(gone_data));
	lseek(g, 1234, SEEK_SET);
	wl_path(p, sizeof(p), "gone.txt");
	unlink(p);

	wl_ready();
	wl_wait();

	check_fd(3, O_RDWR, 42, 0);
	check_fd(4, O_RDWR, 42, 0);
	lseek(3, 10, SEEK_SET);
	CHECK(lseek(4, 0, SEEK_CUR) == 10, "fds 3 and 4 no longer share their offset");
	CHECK(read(4, buf, 5) == 5 && wl_verify(buf, 0, 31) < 0 && (uint8_t)buf[0] == wl_pattern(10, 31), "fd 4 reads wrong data");
	check_fd(5, O_WRONLY | O_APPEND, -1, 0);
	CHECK(write(5, "second\n", 7) == 7, "append failed");
	{
		int fd = open_at("b.log", O_RDONLY, 20);
		int n = read(fd, buf, sizeof(buf));
		CHECK(n == 13 && !memcmp(buf, "first\nsecond\n", 13), "append-only file holds %d bytes", n);
		close(fd);
	}
	check_fd(6, O_RDONLY | O_NONBLOCK, 7, 0);
	CHECK(lseek(3, 0, SEEK_CUR) == 15, "separately opened description moved fd 3");
	{
		struct stat st;
		CHECK(fstat(7, &st) == 0 && S_ISDIR(st.st_mode), "fd 7 is not a directory");
	}
	check_fd(8, O_WRONLY, -1, 0);
	CHECK(write(8, "x", 1) == 1, "/dev/null does not take writes");
	check_fd(9, O_RDONLY, -1, 0);
	memset(buf, 1, 64);
	CHECK(read(9, buf, 64) == 64 && buf[0] == 0 && buf[63] == 0, "/dev/zero does not read zeros");
	check_fd(10, O_RDONLY, -1, 0);
	CHECK(read(10, buf, 16) == 16, "/dev/urandom does not read");
	check_fd(100, O_RDWR, -1, 1);
	{
		struct stat st;
		char l[4096];
		ssize_t n;
		CHECK(fstat(11, &st) == 0 && st.st_nlink == 0 && st.st_size == sizeof(gone_data),
		      "deleted file: nlink %ld size %ld", (long)st.st_nlink, (long)st.st_size);
		check_fd(11, O_RDWR, 1234, 0);
		memset(buf, 0, sizeof(buf));
		CHECK(pread(11, buf, sizeof(gone_data), 0) == sizeof(gone_data) && !memcmp(buf, gone_data, sizeof(gone_data)),
		      "deleted file content differs");
		n = readlink("/proc/self/fd/11", l, sizeof(l) - 1);
		l[n > 0 ? n : 0] = 0;
		CHECK(strstr(l, "(deleted)") != NULL, "deleted file shows as %s", l);
	}
	wl_done();
}
