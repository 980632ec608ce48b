/*
 * The cell's namespace limits: a child enters the cell's user namespace (where it holds every
 * capability, as its owner) and sets each /proc/sys/user/max_*_namespaces to 0 there. The
 * kernel checks these counts for every namespace created under the cell's user namespace, by
 * any call (clone, clone3, unshare), so this holds even when the seccomp filter is raced
 * (clone3's flags are read from memory the task controls) or re-allowed by a policy. The
 * monitor does not wait for the child: under crun the cell's process is not dumpable until it
 * executes init (its namespaces cannot be opened, EACCES, as in proxyport.c), and that execve
 * may need the monitor to answer a seccomp notification. The supervisor starts no task command
 * before the "limits" event (src/cell/launch.ts); a failure kills the cell (fail closed).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor.h"

static const char *const limits[] = {
	"user", "mnt", "pid", "net", "ipc", "uts", "cgroup", "time",
};

static void __attribute__((noreturn)) limits_child(long pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/ns/user", pid);
	int userns = -1;
	for (int i = 0; i < 500; i++) {
		userns = open(path, O_RDONLY | O_CLOEXEC);
		if (userns >= 0 || errno != EACCES)
			break;
		usleep(10000);
	}
	if (userns < 0 || setns(userns, CLONE_NEWUSER) < 0) {
		emit_error("namespace limits: cannot enter the cell's user namespace: %s",
			   strerror(errno));
		_exit(1);
	}
	/* /proc/sys/user is looked up in the opener's user namespace: now the cell's. */
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		snprintf(path, sizeof(path), "/proc/sys/user/max_%s_namespaces", limits[i]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			continue; /* an older kernel without this namespace type */
		if (fd < 0 || write(fd, "0\n", 2) != 2) {
			emit_error("namespace limits: cannot set %s: %s", path, strerror(errno));
			_exit(1);
		}
		close(fd);
	}
	_exit(0);
}

static pid_t limits_pid = -1;

int limit_cell_namespaces(long pid)
{
	if (pid <= 0) {
		emit_error("namespace limits: the runtime did not say which pid the cell has");
		return -1;
	}
	pid_t child = fork();
	if (child < 0) {
		emit_error("namespace limits: fork: %s", strerror(errno));
		return -1;
	}
	if (child == 0)
		limits_child(pid);
	limits_pid = child;
	return 0;
}

/* Called by reap for each child; returns whether it was the limits child. */
int limits_reaped(pid_t pid, int status)
{
	if (pid != limits_pid)
		return 0;
	limits_pid = -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		struct out o = { 0 };
		out_fmt(&o, "{\"type\":\"limits\"}");
		emit(&o);
	} else if (init_pid > 0) {
		kill((pid_t)init_pid, SIGKILL);
	}
	return 1;
}
