/*
 * A pseudo-terminal inside the tree: the workload holds the master (fd 3);
 * its child C starts a session with the slave as controlling terminal,
 * sets the line (no echo, an odd interrupt character, 33x101); C's child G
 * is the terminal's foreground group and reads lines from it. After
 * restore the workload types "ping" into the master; G, still blocked in
 * its read, gets the line and answers with what it sees of the terminal
 * (session, foreground group, size, echo, interrupt character); then G
 * and C exit and the workload checks the answer.
 */
#include "wl.h"
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

static int read_line(int fd, char *buf, size_t len, int timeout_ms)
{
	size_t got = 0;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	for (int waited = 0; got + 1 < len && waited < timeout_ms;) {
		ssize_t n = read(fd, buf + got, 1);
		if (n == 1) {
			if (buf[got] == '\n') {
				got++;
				break;
			}
			if (buf[got] != '\r')
				got++;
			continue;
		}
		usleep(10000);
		waited += 10;
	}
	buf[got] = 0;
	fcntl(fd, F_SETFL, 0);
	return (int)got;
}

static void grandchild(void)
{
	char line[256];

	setpgid(0, 0);
	/* taking the terminal from the background: SIGTTOU must not stop us */
	signal(SIGTTOU, SIG_IGN);
	tcsetpgrp(0, getpid());
	signal(SIGTTOU, SIG_DFL);
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		_exit(3);
	struct winsize ws = {0};
	struct termios t;
	ioctl(0, TIOCGWINSZ, &ws);
	tcgetattr(0, &t);
	printf("got=%s sid=%d fg=%d me=%d size=%dx%d echo=%d intr=%d\n", strtok(line, "\n"), (int)tcgetsid(0), (int)tcgetpgrp(0),
	       (int)getpid(), ws.ws_row, ws.ws_col, !!(t.c_lflag & ECHO), t.c_cc[VINTR]);
	fflush(stdout);
	_exit(0);
}

static void child(const char *slave)
{
	setsid();
	int s = open(slave, O_RDWR); /* the first terminal a leader opens becomes its own */
	if (s < 0)
		_exit(2);
	dup2(s, 0);
	dup2(s, 1);
	dup2(s, 2);
	if (s > 2)
		close(s);
	struct termios t;
	tcgetattr(0, &t);
	t.c_lflag &= ~ECHO;
	t.c_cc[VINTR] = 7;
	tcsetattr(0, TCSANOW, &t);
	struct winsize ws = {.ws_row = 33, .ws_col = 101};
	ioctl(0, TIOCSWINSZ, &ws);
	pid_t g = fork();
	if (g == 0)
		grandchild();
	int st = 0;
	waitpid(g, &st, 0);
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st));
}

int main(int argc, char **argv)
{
	char line[512], slave[64];

	wl_init(argc, argv);
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m))
		wl_die("openpt");
	if (m != 3) {
		dup2(m, 3);
		close(m);
	}
	snprintf(slave, sizeof(slave), "%s", ptsname(3));
	pid_t c = fork();
	if (c == 0) {
		close(3);
		child(slave);
	}
	if (read_line(3, line, sizeof(line), 10000) <= 0 || strcmp(line, "ready\n"))
		wl_die("the terminal's reader did not start");
	/* G is blocked in its read now. */
	usleep(100000);

	wl_ready();
	wl_wait();

	CHECK(!strcmp(ptsname(3), slave), "the pty is now %s, was %s", ptsname(3), slave);
	CHECK(write(3, "ping\n", 5) == 5, "write to the master failed");
	int n = read_line(3, line, sizeof(line), 10000);
	int sid = 0, fg = 0, me = 0, rows = 0, cols = 0, echo = -1, intr = -1;
	char got[32] = {0};
	int k = sscanf(line, "got=%31s sid=%d fg=%d me=%d size=%dx%d echo=%d intr=%d", got, &sid, &fg, &me, &rows, &cols, &echo, &intr);
	CHECK(n > 0 && k == 8, "the terminal's reader answered \"%s\"", line);
	if (k == 8) {
		CHECK(!strcmp(got, "ping"), "the reader got \"%s\"", got);
		CHECK(sid == c, "the terminal belongs to session %d, expected %d", sid, c);
		CHECK(fg == me && me != c, "the foreground group is %d, expected the reader %d", fg, me);
		CHECK(rows == 33 && cols == 101, "the terminal is %dx%d", rows, cols);
		CHECK(echo == 0 && intr == 7, "line settings: echo %d, interrupt character %d", echo, intr);
	}
	int st = -1;
	CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the session leader ended with status %#x", st);
	wl_done();
}
