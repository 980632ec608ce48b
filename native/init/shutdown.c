/* Ending the cell: every process in it is killed and reaped before init exits. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"

int is_pid1;

static int read_children(pid_t *out, int max)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char text[8192];
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return -1;
	text[n] = 0;
	int count = 0;
	char *p = text;
	while (*p && count < max) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		out[count++] = (pid_t)v;
		p = end;
	}
	return count;
}

/* Outside a pid namespace: kill the descendants one generation at a time. */
static void kill_descendants(void)
{
	for (struct exec *e = execs; e; e = e->next)
		if (!e->reaped)
			kill(-e->pid, SIGKILL);
	for (;;) {
		pid_t kids[512];
		int n = read_children(kids, 512);
		for (int i = 0; i < n; i++) {
			kill(-kids[i], SIGKILL);
			kill(kids[i], SIGKILL);
		}
		pid_t r = waitpid(-1, NULL, n > 0 ? 0 : WNOHANG);
		if (r < 0 && errno == ECHILD)
			break;
		if (r == 0 && n <= 0)
			break;
	}
}

/* Kill every process in the cell and reap it. As pid 1 of the pid namespace kill(-1) reaches all
 * of them. Outside a pid namespace (tests, --probe) kill(-1) would hit the whole host, so init is
 * a child subreaper there and kills its descendants one generation at a time instead. */
void shutdown_cell(int code)
{
	if (is_pid1) {
		for (;;) {
			kill(-1, SIGKILL);
			if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
				break;
		}
	} else {
		kill_descendants();
	}
	_exit(code);
}
