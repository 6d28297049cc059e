/*
 * A datagram socket (fd 3) connected to a socket outside the tree, whose
 * path is the argument after DIR: it sends "before" at start and
 * "after-restore" on "check now".
 */
#include "wl.h"
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	wl_init(argc, argv);
	if (argc < 3)
		wl_die("no peer path");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[2]);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd != 3 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		wl_die("connect to the outside socket");
	if (send(3, "before", 6, 0) != 6)
		wl_die("send");
	wl_ready();
	wl_wait();
	CHECK(send(3, "after-restore", 13, 0) == 13, "send after restore: %s", strerror(errno));
	wl_done();
}
