/*
 * The notify fd of the filter init installs on itself (native/init/seccomp.c), for runtimes
 * given no seccomp profile: once the runtime has exited and its pid file names init, the
 * monitor duplicates init's NC_NOTIFY_FD with pidfd_getfd, retrying until init has installed
 * the filter. It takes only a seccomp listener: before the filter, that number holds a
 * placeholder. Root may do this to any process; rootless, the monitor's user owns the cell's
 * user namespace, which is what ptrace access asks of a non-dumpable init.
 *
 * Rootless, a refusal can also be transient: a runtime may exit (crun's `run --detach`) while
 * its child is still the runtime's own image, whose memory belongs to the host's user
 * namespace, so ptrace access is refused until that child has executed init. A refusal counts
 * only once the process runs init, which its comm (the last part of CELL_INIT) tells without
 * ptrace access.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../protocol.h"
#include "monitor.h"

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif

/* Generous, as the supervisor's own start timeout: init installs the filter within
 * milliseconds of starting, but a loaded host can queue it. */
#define TAKE_TIMEOUT_MS 60000
#define RETRY_MS	2

int notify_from_init;
static int init_pidfd = -1;
static long long deadline;

static int is_seccomp_listener(int fd)
{
	char link[64], target[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return 0;
	target[n] = 0;
	return strcmp(target, "anon_inode:seccomp notify") == 0;
}

/* What the user can do about an errno of pidfd_open/pidfd_getfd. */
static const char *fix_for(int err)
{
	if (err == ENOSYS)
		return " (pidfd_getfd needs Linux 5.6 or later)";
	if (err == EPERM || err == EACCES)
		return " (a ptrace restriction forbids it: with Yama, set kernel.yama.ptrace_scope "
		       "to 2 "
		       "or lower)";
	return "";
}

/* Whether init_pid already runs the cell's init rather than the runtime that will exec it. */
static int runs_init(void)
{
	char path[64], comm[32] = { 0 };
	snprintf(path, sizeof(path), "/proc/%ld/comm", init_pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 1; /* gone: the refusal stands and the caller sees init's end */
	size_t n = fread(comm, 1, sizeof(comm) - 1, f);
	fclose(f);
	comm[n] = 0;
	return strcmp(comm, "init\n") == 0;
}

static void give_up(const char *what, const char *fix)
{
	emit_error("seccomp listener from init: %s%s", what, fix);
	notify_from_init = 0;
	if (init_pidfd >= 0)
		close(init_pidfd);
	init_pidfd = -1;
	/* A cell must never run without its agent. */
	kill((pid_t)init_pid, SIGKILL);
}

int poll_init_notify(void)
{
	if (!notify_from_init || notify_fd >= 0 || init_pid <= 0 || init_reaped)
		return -1;
	if (init_pidfd < 0) {
		init_pidfd = (int)syscall(__NR_pidfd_open, (pid_t)init_pid, 0);
		if (init_pidfd < 0) {
			int err = errno;
			give_up(strerror(err), fix_for(err));
			return -1;
		}
		deadline = mono_ms() + TAKE_TIMEOUT_MS;
	}
	int fd = (int)syscall(__NR_pidfd_getfd, init_pidfd, NC_NOTIFY_FD, 0);
	if (fd >= 0 && is_seccomp_listener(fd)) {
		close(init_pidfd);
		init_pidfd = -1;
		notify_from_init = 0;
		adopt_notify_fd(fd);
		return -1;
	}
	if (fd >= 0)
		close(fd);
	else if ((errno == EPERM || errno == EACCES) && !runs_init()) {
		/* Not yet init: try again (the deadline below still bounds it). */
	} else if (errno != EBADF) {
		int err = errno;
		give_up(strerror(err), fix_for(err));
		return -1;
	}
	if (mono_ms() > deadline) {
		give_up("init installed no filter in time", "");
		return -1;
	}
	return RETRY_MS;
}
