/*
 * Event barriers: the supervisor writes one byte 'S' on the monitor's stdin when a command of
 * the cell ends, and the monitor answers {"type":"sync"} on stdout. The answer follows every
 * event written before it on the same pipe, so once the supervisor has read it, it has read
 * every denial of that command (notify.c writes a denial's record before its answer, and a
 * command cannot end before its last call is answered). Only then does the supervisor end the
 * command's stderr, so the denial's note lands on it however the host schedules the two pipes
 * (src/cell/denialNotes.ts, src/cell/monitorSync.ts).
 *
 * The requests come on stdin, which the runtime and the cell's init would inherit: they get
 * /dev/null there instead, and the monitor keeps the pipe on a close-on-exec fd of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "monitor.h"

int sync_fd = -1;

void take_sync_fd(void)
{
	struct stat st;
	if (fstat(0, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
		sync_fd = fcntl(0, F_DUPFD_CLOEXEC, 10);
		if (sync_fd >= 0)
			fcntl(sync_fd, F_SETFL, fcntl(sync_fd, F_GETFL) | O_NONBLOCK);
	}
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null >= 0 && null != 0) {
		dup2(null, 0);
		close(null);
	}
}

void handle_sync(void)
{
	char b[256];
	ssize_t n = read(sync_fd, b, sizeof(b));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The supervisor is gone (its death signal follows) or closed its end. */
		close(sync_fd);
		sync_fd = -1;
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (b[i] != 'S')
			continue;
		struct out o = { 0 };
		out_raw(&o, "{\"type\":\"sync\"}", 15);
		emit(&o);
	}
}
