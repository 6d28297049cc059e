/*
 * Descriptors stasis cannot save, one per run, always at fd 3 (the kind
 * is the argument after DIR): an io_uring instance, a perf event, a
 * userfaultfd, a BPF map, a POSIX message queue, a netlink socket, a unix listener with a
 * connection not yet accepted from outside (the test connects to
 * DIR/pending.sock and writes "x"), a unix socket with a descriptor in
 * flight, a TCP listener with a connection not yet accepted. The dump
 * must refuse and leave us untouched: on "check now" the object still
 * works as before.
 */
#include "wl.h"
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

static void at3(int fd)
{
	if (fd < 0)
		wl_die("create");
	if (fd != 3) {
		dup2(fd, 3);
		close(fd);
	}
}

static int kind_is(const char *k, int argc, char **argv)
{
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], k))
			return 1;
	return 0;
}

static char mq_name[64];

int main(int argc, char **argv)
{
	uint64_t count_before = 0;
	int tcp_client = -1;

	wl_init(argc, argv);
	if (kind_is("io_uring", argc, argv)) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		at3(syscall(SYS_io_uring_setup, 4, &p));
	} else if (kind_is("perf", argc, argv)) {
		struct perf_event_attr a;
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.type = PERF_TYPE_SOFTWARE;
		a.config = PERF_COUNT_SW_TASK_CLOCK;
		a.exclude_kernel = 1;
		at3(syscall(SYS_perf_event_open, &a, 0, -1, -1, 0));
		read(3, &count_before, 8);
	} else if (kind_is("userfaultfd", argc, argv)) {
		at3(syscall(SYS_userfaultfd, 0));
		struct uffdio_api api = {.api = UFFD_API};
		if (ioctl(3, UFFDIO_API, &api))
			wl_die("UFFDIO_API");
	} else if (kind_is("bpf", argc, argv)) {
		union bpf_attr a;
		memset(&a, 0, sizeof(a));
		a.map_type = BPF_MAP_TYPE_ARRAY;
		a.key_size = 4;
		a.value_size = 8;
		a.max_entries = 1;
		at3(syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a)));
		uint32_t key = 0;
		uint64_t val = 0x5ca1ab1e;
		memset(&a, 0, sizeof(a));
		a.map_fd = 3;
		a.key = (uintptr_t)&key;
		a.value = (uintptr_t)&val;
		if (syscall(SYS_bpf, BPF_MAP_UPDATE_ELEM, &a, sizeof(a)))
			wl_die("bpf map update");
	} else if (kind_is("mqueue", argc, argv)) {
		snprintf(mq_name, sizeof(mq_name), "/stasis-wl-%d", getpid());
		at3(mq_open(mq_name, O_CREAT | O_RDWR, 0600, NULL));
		if (mq_send(3, "queued", 6, 1))
			wl_die("mq_send");
	} else if (kind_is("netlink", argc, argv)) {
		at3(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE));
	} else if (kind_is("scm", argc, argv)) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
			wl_die("socketpair");
		at3(sv[0]);
		if (sv[1] != 4) {
			dup2(sv[1], 4);
			close(sv[1]);
		}
		int passed = open("/dev/null", O_RDONLY);
		char c = 'x';
		struct iovec iov = {.iov_base = &c, .iov_len = 1};
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} u;
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &passed, sizeof(int));
		if (sendmsg(4, &m, 0) != 1)
			wl_die("sendmsg SCM_RIGHTS");
		close(passed);
	} else if (kind_is("unixpending", argc, argv)) {
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		wl_path(a.sun_path, sizeof(a.sun_path), "pending.sock");
		at3(socket(AF_UNIX, SOCK_STREAM, 0));
		if (bind(3, (struct sockaddr *)&a, sizeof(a)) || listen(3, 4))
			wl_die("unix listen");
	} else if (kind_is("pending", argc, argv)) {
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t l = sizeof(a);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		at3(socket(AF_INET, SOCK_STREAM, 0));
		if (bind(3, (struct sockaddr *)&a, sizeof(a)) || listen(3, 4) || getsockname(3, (struct sockaddr *)&a, &l))
			wl_die("listen");
		tcp_client = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(tcp_client, (struct sockaddr *)&a, sizeof(a)))
			wl_die("connect");
	} else {
		fprintf(stderr, "unknown kind\n");
		exit(2);
	}

	wl_ready();
	wl_wait();

	if (kind_is("io_uring", argc, argv)) {
		char l[64] = {0};
		readlink("/proc/self/fd/3", l, sizeof(l) - 1);
		CHECK(!strcmp(l, "anon_inode:[io_uring]"), "fd 3 is %s", l);
		/* The ring still takes a (no-op) enter. */
		CHECK(syscall(SYS_io_uring_enter, 3, 0, 0, 0, NULL, 0) == 0, "io_uring_enter: %s", strerror(errno));
	} else if (kind_is("perf", argc, argv)) {
		uint64_t now = 0;
		for (volatile int i = 0; i < 10000000; i++)
			;
		CHECK(read(3, &now, 8) == 8 && now > count_before, "perf counter %lu -> %lu", (unsigned long)count_before, (unsigned long)now);
	} else if (kind_is("userfaultfd", argc, argv)) {
		struct uffdio_api api = {.api = UFFD_API};
		/* A second UFFDIO_API is refused: the first one took. */
		CHECK(ioctl(3, UFFDIO_API, &api) < 0 && errno == EINVAL, "userfaultfd lost its API handshake");
	} else if (kind_is("bpf", argc, argv)) {
		union bpf_attr a;
		uint32_t key = 0;
		uint64_t val = 0;
		memset(&a, 0, sizeof(a));
		a.map_fd = 3;
		a.key = (uintptr_t)&key;
		a.value = (uintptr_t)&val;
		CHECK(syscall(SYS_bpf, BPF_MAP_LOOKUP_ELEM, &a, sizeof(a)) == 0 && val == 0x5ca1ab1e, "bpf map holds %#lx", (unsigned long)val);
	} else if (kind_is("mqueue", argc, argv)) {
		char m[8192];
		ssize_t n = mq_receive(3, m, sizeof(m), NULL);
		CHECK(n == 6 && !memcmp(m, "queued", 6), "the message queue lost its message (%zd)", n);
		mq_unlink(mq_name);
	} else if (kind_is("netlink", argc, argv)) {
		int ty = 0;
		socklen_t l = sizeof(ty);
		CHECK(getsockopt(3, SOL_SOCKET, SO_PROTOCOL, &ty, &l) == 0 && ty == NETLINK_ROUTE, "netlink socket changed");
	} else if (kind_is("scm", argc, argv)) {
		char c = 0;
		struct iovec iov = {.iov_base = &c, .iov_len = 1};
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} u;
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
		CHECK(recvmsg(3, &m, MSG_DONTWAIT) == 1 && c == 'x', "the message with a descriptor is gone");
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		int got = -1;
		if (cm && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&got, CMSG_DATA(cm), sizeof(int));
		char l[64] = {0};
		if (got >= 0) {
			char p[64];
			snprintf(p, sizeof(p), "/proc/self/fd/%d", got);
			readlink(p, l, sizeof(l) - 1);
		}
		CHECK(!strcmp(l, "/dev/null"), "the descriptor in flight came out as \"%s\"", l);
	} else if (kind_is("unixpending", argc, argv)) {
		int s = accept(3, NULL, NULL);
		char c = 0;
		CHECK(s >= 0 && read(s, &c, 1) == 1 && c == 'x', "the waiting connection from outside is lost");
	} else if (kind_is("pending", argc, argv)) {
		int s = accept(3, NULL, NULL);
		CHECK(s >= 0, "the pending connection is gone");
		CHECK(write(tcp_client, "q", 1) == 1, "client write");
		char c = 0;
		CHECK(s >= 0 && read(s, &c, 1) == 1 && c == 'q', "the pending connection does not carry data");
	}
	wl_done();
}
