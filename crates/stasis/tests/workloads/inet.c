/*
 * Inet sockets: a TCP listener and a loopback connection with data queued
 * both ways and common options set; a connection whose sender filled the
 * receiver's window, so data waits in both the send and the receive
 * queue; UDP sockets (bound, connected) with queued datagrams; IPv6 TCP
 * and UDP; and, with "peer=PORT", a connection to a server run by the
 * test outside the dumped tree. After restore every byte arrives in
 * order, connections carry data both ways, the listeners accept, the
 * options are as set, and the outside server's connection was neither
 * reset nor lost data while the process was away.
 */
#include "wl.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

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

static struct sockaddr_in v4(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static struct sockaddr_in6 v6(uint16_t port)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	return a;
}

static uint16_t port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &l))
		wl_die("getsockname");
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void listen_on(int fd, struct sockaddr *a, socklen_t l)
{
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, a, l) || listen(fd, 16))
		wl_die("listen");
}

static void send_str(int fd, const char *s)
{
	if (send(fd, s, strlen(s), 0) != (ssize_t)strlen(s))
		wl_die("send");
}

/* Read exactly len bytes, waiting up to timeout_ms in total. */
static ssize_t read_full(int fd, void *buf, size_t len, int timeout_ms)
{
	size_t got = 0;
	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		ssize_t n = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);
		if (n <= 0) {
			if (n < 0 && errno == EAGAIN)
				continue;
			return n < 0 ? -errno : (ssize_t)got;
		}
		got += n;
	}
	return (ssize_t)got;
}

static void expect(int fd, const char *want, const char *what)
{
	char buf[256] = {0};
	ssize_t n = read_full(fd, buf, strlen(want), 5000);
	CHECK(n == (ssize_t)strlen(want) && !memcmp(buf, want, strlen(want)), "%s: read %zd bytes \"%s\", expected \"%s\"", what, n,
	      buf, want);
}

static void talk(int a, int b, const char *what)
{
	send_str(a, "ping-after-restore");
	expect(b, "ping-after-restore", what);
	send_str(b, "pong");
	expect(a, "pong", what);
}

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);
	getsockopt(fd, level, name, &v, &l);
	return v;
}

int main(int argc, char **argv)
{
	int one = 1, peer_port = 0;
	struct sockaddr_in a4;
	struct sockaddr_in6 a6;
	static uint8_t bulk[8 << 20];
	size_t bulk_len = 0;
	int sndbuf = 0, rcvbuf = 0;

	wl_init(argc, argv);
	for (int i = 2; i < argc; i++)
		if (!strncmp(argv[i], "peer=", 5))
			peer_port = atoi(argv[i] + 5);

	/* 3 listens; 4 connected to it, accepted as 5; data queued both ways */
	at(socket(AF_INET, SOCK_STREAM, 0), 3);
	a4 = v4(0);
	listen_on(3, (struct sockaddr *)&a4, sizeof(a4));
	uint16_t lport = port_of(3);
	at(socket(AF_INET, SOCK_STREAM, 0), 4);
	a4 = v4(lport);
	if (connect(4, (struct sockaddr *)&a4, sizeof(a4)))
		wl_die("connect");
	at(accept(3, NULL, NULL), 5);
	send_str(4, "client-to-server");
	send_str(5, "server-to-client");
	setsockopt(4, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(4, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	int v = 77;
	setsockopt(4, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v));
	v = 11;
	setsockopt(4, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v));
	v = 5;
	setsockopt(4, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v));
	v = 256 * 1024;
	setsockopt(4, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	setsockopt(4, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	sndbuf = opt(4, SOL_SOCKET, SO_SNDBUF);
	rcvbuf = opt(4, SOL_SOCKET, SO_RCVBUF);
	struct timeval tv = {.tv_sec = 7, .tv_usec = 250000};
	setsockopt(5, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	tv.tv_sec = 3;
	setsockopt(5, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* the kernel keeps timeouts in ticks: compare with what it reports */
	struct timeval rcvtmo, sndtmo;
	socklen_t tl = sizeof(rcvtmo);
	getsockopt(5, SOL_SOCKET, SO_RCVTIMEO, &rcvtmo, &tl);
	tl = sizeof(sndtmo);
	getsockopt(5, SOL_SOCKET, SO_SNDTIMEO, &sndtmo, &tl);

	/* 6 -> 7: 6 writes until it can't; 7 reads nothing */
	at(socket(AF_INET, SOCK_STREAM, 0), 6);
	a4 = v4(lport);
	if (connect(6, (struct sockaddr *)&a4, sizeof(a4)))
		wl_die("connect 6");
	at(accept(3, NULL, NULL), 7);
	fcntl(6, F_SETFL, O_NONBLOCK);
	wl_fill(bulk, sizeof(bulk), 5);
	for (;;) {
		ssize_t n = send(6, bulk + bulk_len, 65536, 0);
		if (n <= 0)
			break;
		bulk_len += n;
		if (bulk_len + 65536 > sizeof(bulk))
			break;
	}
	/* Let the receiver's window close, then top up the send queue. */
	usleep(100000);
	for (;;) {
		ssize_t n = send(6, bulk + bulk_len, 4096, 0);
		if (n <= 0 || bulk_len + 8192 > sizeof(bulk))
			break;
		bulk_len += n;
	}
	int unsent = 0;
	ioctl(6, TIOCOUTQ, &unsent);

	/* UDP: 8 bound, 9 connected to it; two datagrams queued at 8 */
	at(socket(AF_INET, SOCK_DGRAM, 0), 8);
	a4 = v4(0);
	if (bind(8, (struct sockaddr *)&a4, sizeof(a4)))
		wl_die("bind udp");
	at(socket(AF_INET, SOCK_DGRAM, 0), 9);
	a4 = v4(port_of(8));
	if (connect(9, (struct sockaddr *)&a4, sizeof(a4)))
		wl_die("connect udp");
	send_str(9, "udp-one");
	send_str(9, "udp-two-longer");

	/* IPv6: 10 listens on ::1, 11 connected, accepted as 12; UDP 13
	 * v6-only */
	at(socket(AF_INET6, SOCK_STREAM, 0), 10);
	a6 = v6(0);
	listen_on(10, (struct sockaddr *)&a6, sizeof(a6));
	at(socket(AF_INET6, SOCK_STREAM, 0), 11);
	a6 = v6(port_of(10));
	if (connect(11, (struct sockaddr *)&a6, sizeof(a6)))
		wl_die("connect v6");
	at(accept(10, NULL, NULL), 12);
	send_str(11, "v6-c2s");
	send_str(12, "v6-s2c");
	at(socket(AF_INET6, SOCK_DGRAM, 0), 13);
	setsockopt(13, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	a6 = v6(0);
	if (bind(13, (struct sockaddr *)&a6, sizeof(a6)))
		wl_die("bind udp v6");

	/* 14: a connection to the test's server, outside the tree */
	if (peer_port) {
		at(socket(AF_INET, SOCK_STREAM, 0), 14);
		a4 = v4(peer_port);
		if (connect(14, (struct sockaddr *)&a4, sizeof(a4)))
			wl_die("connect to peer");
		send_str(14, "hello-from-workload");
		char buf[64] = {0};
		if (read_full(14, buf, 15, 10000) != 15 || memcmp(buf, "hello-from-test", 15))
			wl_die("peer greeting");
	}

	wl_ready();
	wl_wait();

	expect(5, "client-to-server", "accepted side");
	expect(4, "server-to-client", "client side");
	talk(4, 5, "loopback connection");
	CHECK(opt(4, IPPROTO_TCP, TCP_NODELAY) == 1, "TCP_NODELAY lost");
	CHECK(opt(4, SOL_SOCKET, SO_KEEPALIVE) == 1, "SO_KEEPALIVE lost");
	CHECK(opt(4, IPPROTO_TCP, TCP_KEEPIDLE) == 77 && opt(4, IPPROTO_TCP, TCP_KEEPINTVL) == 11 && opt(4, IPPROTO_TCP, TCP_KEEPCNT) == 5,
	      "keepalive timing %d/%d/%d", opt(4, IPPROTO_TCP, TCP_KEEPIDLE), opt(4, IPPROTO_TCP, TCP_KEEPINTVL),
	      opt(4, IPPROTO_TCP, TCP_KEEPCNT));
	CHECK(opt(4, SOL_SOCKET, SO_SNDBUF) == sndbuf && opt(4, SOL_SOCKET, SO_RCVBUF) == rcvbuf, "buffer sizes %d/%d, expected %d/%d",
	      opt(4, SOL_SOCKET, SO_SNDBUF), opt(4, SOL_SOCKET, SO_RCVBUF), sndbuf, rcvbuf);
	CHECK(opt(3, SOL_SOCKET, SO_REUSEADDR) == 1, "SO_REUSEADDR lost on the listener");
	{
		struct timeval r = {0}, s = {0};
		socklen_t l = sizeof(r);
		getsockopt(5, SOL_SOCKET, SO_RCVTIMEO, &r, &l);
		l = sizeof(s);
		getsockopt(5, SOL_SOCKET, SO_SNDTIMEO, &s, &l);
		CHECK(r.tv_sec == rcvtmo.tv_sec && r.tv_usec == rcvtmo.tv_usec && s.tv_sec == sndtmo.tv_sec && s.tv_usec == sndtmo.tv_usec &&
			      r.tv_sec == 7,
		      "timeouts %ld.%06ld / %ld.%06ld, expected %ld.%06ld / %ld.%06ld", (long)r.tv_sec, (long)r.tv_usec, (long)s.tv_sec,
		      (long)s.tv_usec, (long)rcvtmo.tv_sec, (long)rcvtmo.tv_usec, (long)sndtmo.tv_sec, (long)sndtmo.tv_usec);
	}
	{
		/* The listener accepts a new connection. */
		int c = socket(AF_INET, SOCK_STREAM, 0);
		a4 = v4(lport);
		CHECK(connect(c, (struct sockaddr *)&a4, sizeof(a4)) == 0, "connect to the restored listener: %s", strerror(errno));
		int s = accept(3, NULL, NULL);
		CHECK(s >= 0, "restored listener does not accept");
		if (s >= 0)
			talk(c, s, "new connection");
		close(c);
		close(s);
	}

	{
		/* Everything 6 sent, queued on both sides, arrives in order. */
		uint8_t *got = malloc(bulk_len);
		ssize_t n = read_full(7, got, bulk_len, 5000);
		CHECK(n == (ssize_t)bulk_len, "bulk: %zd of %zu bytes arrived (%d were unsent at dump)", n, bulk_len, unsent);
		long bad = n > 0 ? wl_verify(got, n, 5) : -1;
		CHECK(bad < 0, "bulk data differs at byte %ld", bad);
		CHECK(unsent > 0, "the test did not leave data in the send queue");
		free(got);
		talk(6, 7, "bulk connection");
	}

	{
		char buf[64] = {0};
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(8, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		CHECK(n == 7 && !memcmp(buf, "udp-one", 7), "udp: first datagram \"%s\"", buf);
		n = recv(8, buf, sizeof(buf), MSG_DONTWAIT);
		CHECK(n == 14 && !memcmp(buf, "udp-two-longer", 14), "udp: second datagram %zd", n);
		CHECK(recv(8, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN, "udp: more datagrams than queued");
		send_str(9, "udp-after");
		expect(8, "udp-after", "connected udp socket");
		struct sockaddr_in pa;
		socklen_t pl = sizeof(pa);
		CHECK(getpeername(9, (struct sockaddr *)&pa, &pl) == 0 && ntohs(pa.sin_port) == port_of(8), "udp peer lost");
		/* The bound socket answers to 9's address. */
		struct sockaddr_in me;
		socklen_t ml = sizeof(me);
		getsockname(9, (struct sockaddr *)&me, &ml);
		CHECK(sendto(8, "back", 4, 0, (struct sockaddr *)&me, ml) == 4, "udp sendto failed");
		expect(9, "back", "udp reply");
	}

	expect(12, "v6-c2s", "v6 accepted side");
	expect(11, "v6-s2c", "v6 client side");
	talk(11, 12, "v6 connection");
	CHECK(opt(13, IPPROTO_IPV6, IPV6_V6ONLY) == 1, "IPV6_V6ONLY lost");
	{
		int c = socket(AF_INET6, SOCK_DGRAM, 0);
		a6 = v6(port_of(13));
		sendto(c, "v6-udp", 6, 0, (struct sockaddr *)&a6, sizeof(a6));
		expect(13, "v6-udp", "v6 udp");
		close(c);
	}

	if (peer_port) {
		/* The test wrote while we were away; then we answer. */
		expect(14, "written-during-the-gap", "outside peer");
		send_str(14, "answer-after-restore");
	}
	wl_done();
}
