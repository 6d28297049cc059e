/*
 * Kernel objects behind descriptors: eventfds (counter, semaphore mode),
 * an epoll set watching an eventfd, a pipe (edge-triggered) and a socket
 * with its own data words, a signalfd with a pending signal, timerfds
 * (periodic, one-shot far away, disarmed, absolute realtime), an inotify
 * watch on a directory, and a sealed memfd that is also mapped shared.
 * After restore every object behaves as before: counters read back,
 * epoll reports the same events with the same data, the signal is read,
 * timers fire on schedule, a new file raises an inotify event, the memfd
 * keeps content and seals and its mapping stays shared with the fd.
 */
#include "wl.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>

static int at(int fd, int want)
{
	if (fd < 0)
		wl_die("create");
	if (fd != want) {
		if (dup3(fd, want, O_CLOEXEC) < 0)
			wl_die("dup3");
		close(fd);
	}
	return want;
}

static double now_s(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	char p[4096];
	uint64_t v;
	int sv[2], pfd[2];

	wl_init(argc, argv);

	at(eventfd(7, EFD_NONBLOCK | EFD_CLOEXEC), 3);
	at(eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK), 4);

	/* epoll 5 watches eventfd 3 (level), pipe 6 (edge) and socket 8 */
	at(epoll_create1(0), 5);
	if (pipe2(pfd, O_NONBLOCK))
		wl_die("pipe");
	at(pfd[0], 6);
	at(pfd[1], 7);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv))
		wl_die("socketpair");
	at(sv[0], 8);
	at(sv[1], 9);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1111222233334444ULL};
	epoll_ctl(5, EPOLL_CTL_ADD, 3, &ev);
	ev = (struct epoll_event){.events = EPOLLIN | EPOLLET, .data.u64 = 0x66};
	epoll_ctl(5, EPOLL_CTL_ADD, 6, &ev);
	ev = (struct epoll_event){.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.u64 = 0x88};
	epoll_ctl(5, EPOLL_CTL_ADD, 8, &ev);
	/* Consume the socket's EPOLLOUT-only state: nothing to report yet
	 * except writability; the pipe gets data after restore. */

	/* signalfd 10 for SIGUSR1 and SIGRTMIN+2; SIGUSR1 pending */
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	sigaddset(&m, SIGRTMIN + 2);
	sigprocmask(SIG_BLOCK, &m, NULL);
	at(signalfd(-1, &m, SFD_NONBLOCK), 10);
	union sigval sval = {.sival_int = 4242};
	sigqueue(getpid(), SIGRTMIN + 2, sval);

	/* timerfds: 11 periodic 50 ms, 12 one-shot in an hour, 13 disarmed,
	 * 14 absolute CLOCK_REALTIME 1.5 s from now */
	at(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), 11);
	struct itimerspec its = {.it_interval = {0, 50000000}, .it_value = {0, 50000000}};
	timerfd_settime(11, 0, &its, NULL);
	at(timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK), 12);
	its = (struct itimerspec){.it_value = {3600, 0}};
	timerfd_settime(12, 0, &its, NULL);
	at(timerfd_create(CLOCK_MONOTONIC, 0), 13);
	at(timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK), 14);
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	its = (struct itimerspec){.it_value = {rt.tv_sec + 2, rt.tv_nsec}};
	timerfd_settime(14, TFD_TIMER_ABSTIME, &its, NULL);
	double rt_due = rt.tv_sec + 2 + rt.tv_nsec / 1e9;

	/* inotify 15 watching the workload directory for new files */
	at(inotify_init1(IN_NONBLOCK), 15);
	wl_path(p, sizeof(p), "");
	int wd = inotify_add_watch(15, p, IN_CREATE | IN_DELETE);
	if (wd < 0)
		wl_die("inotify_add_watch");
	/* more watches, on subdirectories, up to a two-digit (hex) number */
	int last_wd = wd;
	for (int i = 0; i < 16; i++) {
		char sub[64];
		snprintf(sub, sizeof(sub), "sub%d", i);
		wl_path(p, sizeof(p), sub);
		mkdir(p, 0700);
		last_wd = inotify_add_watch(15, p, IN_CREATE);
	}
	if (last_wd != 17)
		wl_die("inotify watch numbers");
	{
		/* events not yet read are not kept: read the mkdirs' away */
		char ev[8192];
		while (read(15, ev, sizeof(ev)) > 0)
			;
	}

	/* memfd 16, 3 pages of pattern, mapped shared, size sealed */
	at(memfd_create("stasis-wl", MFD_ALLOW_SEALING), 16);
	if (ftruncate(16, 3 * 4096))
		wl_die("ftruncate");
	uint8_t *map = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 16, 0);
	if (map == MAP_FAILED)
		wl_die("mmap memfd");
	wl_fill(map, 3 * 4096, 77);
	fcntl(16, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
	lseek(16, 100, SEEK_SET);

	wl_ready();
	wl_wait();

	CHECK(read(3, &v, 8) == 8 && v == 7, "eventfd 3 reads %lu, expected 7", (unsigned long)v);
	CHECK(read(4, &v, 8) == 8 && v == 1, "semaphore eventfd reads %lu, expected 1", (unsigned long)v);
	CHECK(read(4, &v, 8) == 8 && v == 1 && read(4, &v, 8) == 8 && read(4, &v, 8) < 0 && errno == EAGAIN,
	      "semaphore eventfd does not count down 3 times");

	/* epoll: the eventfd is empty now; write to it, the pipe and the socket */
	v = 2;
	write(3, &v, 8);
	write(7, "x", 1);
	write(9, "y", 1);
	{
		struct epoll_event out[8];
		int n = epoll_wait(5, out, 8, 1000);
		uint64_t seen = 0;
		for (int i = 0; i < n; i++) {
			if (out[i].data.u64 == 0x1111222233334444ULL && (out[i].events & EPOLLIN))
				seen |= 1;
			else if (out[i].data.u64 == 0x66 && out[i].events == EPOLLIN)
				seen |= 2;
			else if (out[i].data.u64 == 0x88 && (out[i].events & (EPOLLIN | EPOLLOUT)) == (EPOLLIN | EPOLLOUT))
				seen |= 4;
			else
				wl_fail("epoll reports events %#x with data %#lx", out[i].events, (unsigned long)out[i].data.u64);
		}
		CHECK(n == 3 && seen == 7, "epoll reported %d events (seen mask %lu)", n, (unsigned long)seen);
		/* edge-triggered: the pipe is not reported again without new data */
		n = epoll_wait(5, out, 8, 0);
		for (int i = 0; i < n; i++)
			CHECK(out[i].data.u64 != 0x66, "edge-triggered pipe reported twice");
	}

	{
		struct signalfd_siginfo si;
		memset(&si, 0, sizeof(si));
		CHECK(read(10, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == (uint32_t)(SIGRTMIN + 2) && si.ssi_int == 4242,
		      "signalfd read signal %u value %d", si.ssi_signo, si.ssi_int);
		CHECK(read(10, &si, sizeof(si)) < 0 && errno == EAGAIN, "signalfd has more signals than queued");
		kill(getpid(), SIGUSR1);
		CHECK(read(10, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR1, "signalfd mask lost SIGUSR1");
	}

	{
		struct itimerspec cur;
		/* periodic timer keeps ticking */
		read(11, &v, 8);
		struct timespec nap = {0, 160000000};
		nanosleep(&nap, NULL);
		v = 0;
		read(11, &v, 8);
		CHECK(v >= 2 && v <= 4, "periodic timerfd ticked %lu times in 160 ms", (unsigned long)v);
		timerfd_gettime(11, &cur);
		CHECK(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 50000000, "periodic timerfd interval changed");
		timerfd_gettime(12, &cur);
		CHECK(cur.it_value.tv_sec > 3500 && cur.it_value.tv_sec <= 3600 && cur.it_interval.tv_sec == 0,
		      "one-shot timerfd has %ld s left", (long)cur.it_value.tv_sec);
		timerfd_gettime(13, &cur);
		CHECK(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0, "disarmed timerfd is armed");
		CHECK(fcntl(13, F_GETFL) >= 0 && !(fcntl(13, F_GETFL) & O_NONBLOCK), "blocking timerfd became non-blocking");
		/* the absolute realtime timer fires at its wall-clock time */
		while (now_s(CLOCK_REALTIME) < rt_due - 0.02) {
			CHECK(read(14, &v, 8) < 0 && errno == EAGAIN, "absolute timerfd fired %.3f s early", rt_due - now_s(CLOCK_REALTIME));
			if (wl_failed)
				break;
			struct timespec step = {0, 10000000};
			nanosleep(&step, NULL);
		}
		struct timespec step = {0, 50000000};
		nanosleep(&step, NULL);
		CHECK(read(14, &v, 8) == 8 && v == 1, "absolute timerfd did not fire at its time");
	}

	{
		char buf[4096];
		wl_path(p, sizeof(p), "new-file");
		close(open(p, O_CREAT | O_WRONLY, 0600));
		ssize_t n = read(15, buf, sizeof(buf));
		struct inotify_event *ie = (struct inotify_event *)buf;
		CHECK(n >= (ssize_t)sizeof(*ie) && ie->wd == wd && (ie->mask & IN_CREATE) && !strcmp(ie->name, "new-file"),
		      "inotify: read %zd, wd %d mask %#x name %s", n, n > 0 ? ie->wd : -1, n > 0 ? ie->mask : 0, n > 0 ? ie->name : "");
		wl_path(p, sizeof(p), "sub15/deep");
		close(open(p, O_CREAT | O_WRONLY, 0600));
		n = read(15, buf, sizeof(buf));
		CHECK(n >= (ssize_t)sizeof(*ie) && ie->wd == last_wd && !strcmp(ie->name, "deep"), "inotify: watch %d reports as %d (%s)",
		      last_wd, n > 0 ? ie->wd : -1, n > 0 ? ie->name : "");
	}

	{
		uint8_t buf[3 * 4096];
		CHECK(lseek(16, 0, SEEK_CUR) == 100, "memfd offset moved");
		CHECK(pread(16, buf, sizeof(buf), 0) == sizeof(buf) && wl_verify(buf, sizeof(buf), 77) < 0, "memfd content differs");
		CHECK(wl_verify(map, 3 * 4096, 77) < 0, "memfd mapping content differs");
		map[5] = 0xab;
		CHECK(pread(16, buf, 8, 0) == 8 && buf[5] == 0xab, "memfd mapping is no longer shared with the fd");
		int seals = fcntl(16, F_GET_SEALS);
		CHECK(seals == (F_SEAL_SHRINK | F_SEAL_GROW), "memfd seals %#x", seals);
		CHECK(ftruncate(16, 4096) < 0 && errno == EPERM, "memfd can shrink despite its seal");
		char l[256];
		ssize_t n = readlink("/proc/self/fd/16", l, sizeof(l) - 1);
		l[n > 0 ? n : 0] = 0;
		CHECK(!strcmp(l, "/memfd:stasis-wl (deleted)"), "memfd is %s", l);
	}
	CHECK(fcntl(3, F_GETFD) == FD_CLOEXEC, "close-on-exec lost on eventfd");
	wl_done();
}
