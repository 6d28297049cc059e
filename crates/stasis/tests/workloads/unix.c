/*
 * Unix sockets: stream, datagram and seqpacket socketpairs with data queued
 * both ways; a listening stream socket bound to a path with an accepted
 * connection and one not yet accepted; an abstract-name datagram socket that received messages
 * from a bound and an unbound sender; a half-closed pair; buffer sizes,
 * SO_PASSCRED and O_NONBLOCK. After restore every queue reads back with
 * its message boundaries, every connection carries data both ways and the
 * listener accepts a new connection on its path.
 */
#include "wl.h"
#include <sys/socket.h>
#include <stddef.h>
#include <sys/un.h>

static int at(int fd, int want)
{
	if (fd < 0)
		wl_die("socket");
	if (fd != want) {
		if (dup2(fd, want) < 0)
			wl_die("dup2");
		close(fd);
	}
	return want;
}

static void pair(int type, int a, int b)
{
	int sv[2];

	if (socketpair(AF_UNIX, type, 0, sv))
		wl_die("socketpair");
	at(sv[0], a);
	at(sv[1], b);
}

static socklen_t path_addr(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	wl_path(sa->sun_path, sizeof(sa->sun_path), name);
	return sizeof(*sa);
}

static socklen_t abstract_addr(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "%s-%d", name, getpid());
	return offsetof(struct sockaddr_un, sun_path) + 1 + n;
}

static void send_str(int fd, const char *s)
{
	if (send(fd, s, strlen(s), 0) != (ssize_t)strlen(s))
		wl_die("send");
}

/* Read one message (or up to len bytes of a stream) without blocking. */
static int recv_str(int fd, char *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len - 1, MSG_DONTWAIT);
	buf[n > 0 ? n : 0] = 0;
	return (int)n;
}

static void expect(int fd, const char *want, const char *what)
{
	char buf[4096];
	int n = recv_str(fd, buf, sizeof(buf));
	CHECK(n == (int)strlen(want) && !strcmp(buf, want), "%s: read %d bytes \"%s\", expected \"%s\"", what, n, buf, want);
}

static void expect_empty(int fd, const char *what)
{
	char buf[16];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	CHECK(n < 0 && errno == EAGAIN, "%s: more data queued than expected (%zd)", what, n);
}

/* Both ends of a connection still talk. */
static void talk(int a, int b, const char *what)
{
	char m[64];
	snprintf(m, sizeof(m), "after-restore-%d", a);
	send_str(a, m);
	expect(b, m, what);
	snprintf(m, sizeof(m), "reply-%d", b);
	send_str(b, m);
	expect(a, m, what);
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa, got;
	socklen_t sl, gl;
	char buf[4096];
	int big = 0;

	wl_init(argc, argv);

	/* 3/4: stream pair, data queued both ways, the second partly read */
	pair(SOCK_STREAM, 3, 4);
	send_str(3, "stream-3-to-4");
	send_str(4, "xxstream-4-to-3");
	recv(3, buf, 2, 0);

	/* 5/6: datagram pair, three messages one way, one the other */
	pair(SOCK_DGRAM, 5, 6);
	send_str(5, "d1");
	send_str(5, "d22");
	send_str(5, "d333");
	send_str(6, "back");

	/* 7/8: seqpacket pair, boundaries kept */
	pair(SOCK_SEQPACKET, 7, 8);
	send_str(7, "seq-one");
	send_str(7, "seq-two-longer");

	/* 9: a listener on a path; 10 connected to it, accepted as 11 */
	at(socket(AF_UNIX, SOCK_STREAM, 0), 9);
	sl = path_addr(&sa, "srv.sock");
	if (bind(9, (struct sockaddr *)&sa, sl) || listen(9, 8))
		wl_die("listen");
	at(socket(AF_UNIX, SOCK_STREAM, 0), 10);
	if (connect(10, (struct sockaddr *)&sa, sl))
		wl_die("connect");
	at(accept(9, NULL, NULL), 11);
	send_str(10, "client-hello");
	send_str(11, "server-hello");

	/* 12: abstract-name datagram socket; 13 (bound to a path) and 14
	 * (unbound, connected) send to it */
	at(socket(AF_UNIX, SOCK_DGRAM, 0), 12);
	sl = abstract_addr(&sa, "stasis-wl-unix");
	if (bind(12, (struct sockaddr *)&sa, sl))
		wl_die("bind abstract");
	at(socket(AF_UNIX, SOCK_DGRAM, 0), 13);
	{
		struct sockaddr_un me;
		socklen_t ml = path_addr(&me, "sender.sock");
		if (bind(13, (struct sockaddr *)&me, ml))
			wl_die("bind sender");
	}
	if (sendto(13, "from-13", 7, 0, (struct sockaddr *)&sa, sl) != 7)
		wl_die("sendto");
	at(socket(AF_UNIX, SOCK_DGRAM, 0), 14);
	if (connect(14, (struct sockaddr *)&sa, sl))
		wl_die("connect dgram");
	send_str(14, "from-14");

	/* 17: connected to the listener 9, not yet accepted */
	at(socket(AF_UNIX, SOCK_STREAM, 0), 17);
	sl = path_addr(&sa, "srv.sock");
	if (connect(17, (struct sockaddr *)&sa, sl))
		wl_die("connect pending");

	/* 15/16: 15 wrote and shut down its sending side */
	pair(SOCK_STREAM, 15, 16);
	send_str(15, "last-words");
	shutdown(15, SHUT_WR);

	/* options on 3, non-blocking 4 */
	int v = 65536;
	setsockopt(3, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	v = 1;
	setsockopt(3, SOL_SOCKET, SO_PASSCRED, &v, sizeof(v));
	fcntl(4, F_SETFL, O_NONBLOCK);
	socklen_t bl = sizeof(big);
	getsockopt(3, SOL_SOCKET, SO_SNDBUF, &big, &bl);

	wl_ready();
	wl_wait();

	expect(4, "stream-3-to-4", "stream 3->4");
	expect(3, "stream-4-to-3", "stream 4->3 (after a partial read)");
	talk(3, 4, "stream pair");

	expect(6, "d1", "dgram 1");
	expect(6, "d22", "dgram 2");
	expect(6, "d333", "dgram 3");
	expect_empty(6, "dgram pair");
	expect(5, "back", "dgram back");
	talk(5, 6, "dgram pair");

	expect(8, "seq-one", "seqpacket 1");
	expect(8, "seq-two-longer", "seqpacket 2");
	talk(7, 8, "seqpacket pair");

	expect(11, "client-hello", "accepted side");
	expect(10, "server-hello", "client side");
	talk(10, 11, "accepted connection");
	gl = sizeof(got);
	path_addr(&sa, "srv.sock");
	CHECK(getsockname(9, (struct sockaddr *)&got, &gl) == 0 && !strcmp(got.sun_path, sa.sun_path), "listener is bound to %s",
	      got.sun_path);
	gl = sizeof(got);
	CHECK(getpeername(10, (struct sockaddr *)&got, &gl) == 0 && !strcmp(got.sun_path, sa.sun_path), "client's peer is %s", got.sun_path);
	{
		/* The connection that was waiting is accepted now. */
		int s = accept4(9, NULL, NULL, SOCK_NONBLOCK);
		CHECK(s >= 0, "the waiting connection is gone: %s", strerror(errno));
		if (s >= 0)
			talk(17, s, "connection accepted after restore");
		close(s);
	}
	{
		/* The listener accepts a new connection on its path. */
		int c = socket(AF_UNIX, SOCK_STREAM, 0);
		sl = path_addr(&sa, "srv.sock");
		CHECK(connect(c, (struct sockaddr *)&sa, sl) == 0, "connect to the restored listener: %s", strerror(errno));
		int s = accept4(9, NULL, NULL, SOCK_NONBLOCK);
		CHECK(s >= 0, "the restored listener does not accept: %s", strerror(errno));
		if (s >= 0)
			talk(c, s, "new connection");
		close(c);
		close(s);
	}

	{
		struct sockaddr_un from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(12, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		buf[n > 0 ? n : 0] = 0;
		CHECK(n == 7 && !strcmp(buf, "from-13"), "abstract socket: first message \"%s\"", buf);
		path_addr(&sa, "sender.sock");
		CHECK(fl > offsetof(struct sockaddr_un, sun_path) && !strcmp(from.sun_path, sa.sun_path),
		      "first message's sender is \"%s\", expected %s", from.sun_path, sa.sun_path);
		expect(12, "from-14", "abstract socket: second message");
		expect_empty(12, "abstract socket");
		gl = sizeof(got);
		sl = abstract_addr(&sa, "stasis-wl-unix");
		CHECK(getsockname(12, (struct sockaddr *)&got, &gl) == 0 && gl == sl && !memcmp(&got, &sa, sl), "abstract name changed");
		send_str(14, "again");
		expect(12, "again", "connected datagram socket after restore");
	}

	expect(16, "last-words", "half-closed pair");
	CHECK(recv(16, buf, sizeof(buf), MSG_DONTWAIT) == 0, "half-closed pair: no end of file after the data");
	send_str(16, "still-open");
	expect(15, "still-open", "half-closed pair, other way");

	{
		int cur = 0, pc = 0;
		socklen_t l = sizeof(cur);
		getsockopt(3, SOL_SOCKET, SO_SNDBUF, &cur, &l);
		CHECK(cur == big, "SO_SNDBUF %d, expected %d", cur, big);
		l = sizeof(pc);
		getsockopt(3, SOL_SOCKET, SO_PASSCRED, &pc, &l);
		CHECK(pc == 1, "SO_PASSCRED lost");
		CHECK(fcntl(4, F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost on fd 4");
		int ty = 0;
		l = sizeof(ty);
		getsockopt(7, SOL_SOCKET, SO_TYPE, &ty, &l);
		CHECK(ty == SOCK_SEQPACKET, "fd 7 has type %d", ty);
	}
	wl_done();
}
