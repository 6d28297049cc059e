/*
 * A process tree and what its members share:
 *
 *   root (session leader, child subreaper)
 *   |- A   own process group;  A1 (in A's group, stopped with SIGSTOP)
 *   |- B   zombies B1 (exit 7) and B2 (killed by SIGTERM), unreaped;
 *   |      holds the write end of a FIFO with data in it
 *   |- C1  in group C, whose leader C has exited (C1 was reparented to root)
 *   |- D1  in session D, whose leader D has exited (reparented to root)
 *   |- E   shares root's fd table (CLONE_FILES)
 *   |- F   shares root's cwd and umask (CLONE_FS)
 *
 * Also: anonymous shared memory written by all, a pipe with unread data
 * between A and root, one open file description shared by root and A, and
 * 32 MiB of private memory written before the forks (never written after,
 * so it is shared copy-on-write; the driver measures the tree's RSS).
 */
#include "wl.h"
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

enum { A, A1, B, B1, B2, C1, D1, E, F, NP };
static const char *names[NP] = {"A", "A1", "B", "B1", "B2", "C1", "D1", "E", "F"};

struct shared {
	pid_t root;
	pid_t pid[NP];
	pid_t ppid[NP];
	pid_t pgid[NP];
	pid_t sid[NP];
	volatile int ready;
	volatile uint8_t marks[64];
	volatile int root_mark;
};

static struct shared *sh;
static volatile uint8_t *fmap; /* a shared file mapping, all members */
static int pipefd[2];
static int shared_file;
static uint8_t *cow;
#define COW_LEN (32 << 20)

static void child_result(const char *who)
{
	char name[64];
	snprintf(name, sizeof(name), "result-%s", who);
	wl_write_file(name, wl_failed ? wl_failures : "ok\n");
	_exit(wl_failed ? 1 : 0);
}

/* Checks every live member does on "check now". */
static void check_self(int i)
{
	CHECK(getpid() == sh->pid[i], "%s: pid %d, expected %d", names[i], getpid(), sh->pid[i]);
	CHECK(getppid() == sh->ppid[i], "%s: ppid %d, expected %d", names[i], getppid(), sh->ppid[i]);
	CHECK(getpgid(0) == sh->pgid[i], "%s: pgid %d, expected %d", names[i], getpgid(0), sh->pgid[i]);
	CHECK(getsid(0) == sh->sid[i], "%s: sid %d, expected %d", names[i], getsid(0), sh->sid[i]);
	CHECK(sh->marks[i] == 0x40 + i, "%s: its mark in shared memory is gone", names[i]);
	CHECK(sh->root_mark == 0x1234, "%s: does not see root's write to shared memory", names[i]);
	CHECK(wl_verify(cow, COW_LEN, 77) < 0, "%s: inherited private memory differs", names[i]);
	CHECK(fmap[100] == 0x77, "%s: does not see root's write to the shared file mapping", names[i]);
	fmap[i] = 0x60 + i; /* root checks it sees this */
}

static void record(int i)
{
	sh->pid[i] = getpid();
	sh->ppid[i] = getppid();
	sh->pgid[i] = getpgid(0);
	sh->sid[i] = getsid(0);
	sh->marks[i] = 0x40 + i;
	__sync_fetch_and_add(&sh->ready, 1);
}

static void member_wait_and_check(int i)
{
	record(i);
	wl_wait();
	check_self(i);
}

static pid_t clone_with(unsigned long flags)
{
	return syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
}

static int state_of(pid_t pid)
{
	char p[64], buf[512];
	snprintf(p, sizeof(p), "/proc/%d/stat", pid);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return 0;
	int n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *c = strrchr(buf, ')');
	return c ? c[2] : 0;
}

static void wait_until(volatile int *v, int n)
{
	for (int i = 0; i < 20000 && *v < n; i++)
		usleep(1000);
}

int main(int argc, char **argv)
{
	char p[4096];

	wl_init(argc, argv);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cow = mmap(NULL, COW_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || cow == MAP_FAILED)
		wl_die("mmap");
	wl_fill(cow, COW_LEN, 77);
	sh->root = getpid();
	if (pipe(pipefd))
		wl_die("pipe");
	wl_path(p, sizeof(p), "shared.txt");
	shared_file = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	write(shared_file, "0123456789", 10);
	wl_path(p, sizeof(p), "map.dat");
	int mfd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (mfd < 0 || ftruncate(mfd, 4096))
		wl_die("map.dat");
	fmap = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	close(mfd);
	wl_path(p, sizeof(p), "fifo");
	mkfifo(p, 0600);
	int fifo_r = open(p, O_RDONLY | O_NONBLOCK);

	/* A: own group, writes to the pipe, child A1 stops itself. */
	if (fork() == 0) {
		setpgid(0, 0);
		write(pipefd[1], "hello-from-A", 12);
		pid_t a1 = fork();
		if (a1 == 0) {
			record(A1);
			kill(getpid(), SIGSTOP);
			wl_wait();
			check_self(A1);
			child_result("A1");
		}
		member_wait_and_check(A);
		lseek(shared_file, 7, SEEK_SET);
		int st;
		CHECK(waitpid(a1, &st, 0) == a1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "A: A1 failed");
		child_result("A");
	}
	/* B: two zombies and a FIFO writer. */
	if (fork() == 0) {
		pid_t b1 = fork();
		if (b1 == 0) {
			record(B1);
			_exit(7);
		}
		pid_t b2 = fork();
		if (b2 == 0) {
			record(B2);
			for (;;)
				pause();
		}
		while (!sh->pid[B1] || !sh->pid[B2])
			usleep(1000);
		kill(b2, SIGTERM);
		while (state_of(b1) != 'Z' || state_of(b2) != 'Z')
			usleep(1000);
		wl_path(p, sizeof(p), "fifo");
		int w = open(p, O_WRONLY | O_NONBLOCK);
		write(w, "fifo-data", 9);
		member_wait_and_check(B);
		int st;
		CHECK(waitpid(b1, &st, 0) == b1 && WIFEXITED(st) && WEXITSTATUS(st) == 7, "B: zombie B1 status %#x", st);
		CHECK(waitpid(b2, &st, 0) == b2 && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "B: zombie B2 status %#x", st);
		child_result("B");
	}
	/* C: group leader that exits, leaving C1 in its group. */
	pid_t c = fork();
	if (c == 0) {
		setpgid(0, 0);
		if (fork() == 0) {
			setpgid(0, getppid());
			usleep(50000);
			while (getppid() != sh->root)
				usleep(1000);
			member_wait_and_check(C1);
			child_result("C1");
		}
		usleep(20000);
		_exit(0);
	}
	/* D: session leader that exits, leaving D1 in its session. */
	pid_t d = fork();
	if (d == 0) {
		setsid();
		if (fork() == 0) {
			while (getppid() != sh->root)
				usleep(1000);
			member_wait_and_check(D1);
			child_result("D1");
		}
		usleep(20000);
		_exit(0);
	}
	/* E: shares the fd table; F: shares cwd and umask. */
	if (clone_with(CLONE_FILES) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGUSR1);
		member_wait_and_check(E);
		int pdeath = 0;
		prctl(PR_GET_PDEATHSIG, &pdeath);
		CHECK(pdeath == SIGUSR1, "E: parent-death signal is %d", pdeath);
		CHECK(fcntl(50, F_GETFD) >= 0, "E: does not see fd 50 that root opened after restore");
		child_result("E");
	}
	if (clone_with(CLONE_FS) == 0) {
		member_wait_and_check(F);
		char cwd[4096];
		wl_path(p, sizeof(p), "");
		CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, "/tmp"), "F: cwd is %s after root's chdir", cwd);
		CHECK(umask(0) == 033, "F: umask is not the one root set");
		child_result("F");
	}
	waitpid(c, NULL, 0);
	waitpid(d, NULL, 0);
	wait_until(&sh->ready, NP);
	while (state_of(sh->pid[A1]) != 'T')
		usleep(1000);
	CHECK(sh->ready == NP, "setup: only %d members ready", sh->ready);

	wl_ready();
	wl_wait();

	sh->root_mark = 0x1234;
	fmap[100] = 0x77;
	{
		char buf[64] = {0};
		CHECK(read(pipefd[0], buf, sizeof(buf)) == 12 && !memcmp(buf, "hello-from-A", 12), "pipe data lost: %s", buf);
		memset(buf, 0, sizeof(buf));
		CHECK(read(fifo_r, buf, sizeof(buf)) == 9 && !memcmp(buf, "fifo-data", 9), "FIFO data lost: %s", buf);
	}
	CHECK(state_of(sh->pid[A1]) == 'T', "A1 is no longer stopped (state %c)", state_of(sh->pid[A1]));
	CHECK(state_of(sh->pid[B1]) == 'Z' && state_of(sh->pid[B2]) == 'Z', "B's children are not zombies");
	if (dup2(0, 50) != 50)
		wl_fail("dup2 to fd 50 failed");
	if (chdir("/tmp"))
		wl_fail("chdir");
	umask(033);
	kill(sh->pid[A1], SIGCONT);
	int members[] = {A, A1, B, C1, D1, E, F};
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		kill(sh->pid[members[i]], SIGUSR2);
	int direct[] = {A, B, C1, D1, E, F};
	for (size_t i = 0; i < sizeof(direct) / sizeof(direct[0]); i++) {
		int st = -1;
		pid_t pid = sh->pid[direct[i]];
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed its checks (status %#x)",
		      names[direct[i]], st);
	}
	CHECK(lseek(shared_file, 0, SEEK_CUR) == 7, "the file offset A set is not seen by root");
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		CHECK(fmap[members[i]] == 0x60 + members[i], "root does not see %s's write to the shared file mapping",
		      names[members[i]]);
	/* gather the members' own reports */
	for (int i = 0; i < NP; i++) {
		char q[4096], buf[1024] = {0};
		if (i == B1 || i == B2)
			continue;
		snprintf(q, sizeof(q), "%s/result-%s", wl_dir, names[i]);
		int fd = open(q, O_RDONLY);
		if (fd < 0) {
			wl_fail("%s wrote no result", names[i]);
			continue;
		}
		read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (strcmp(buf, "ok\n"))
			wl_fail("%s", buf);
	}
	wl_done();
}
