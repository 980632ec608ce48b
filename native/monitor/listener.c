/*
 * The seccomp listener: a unix socket (mode 0600) runc connects to once, sending the OCI state
 * JSON as data and the notify fd as SCM_RIGHTS. One fd per cell; the socket is removed after.
 * With a filter init installed itself, the fd comes from init instead (initfd.c); either way
 * adopt_notify_fd does what must follow.
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "monitor.h"

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS _IOW('!', 4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

int listen_fd = -1;
long init_pid = -1;
static const char *listener_path;

int open_listener(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		emit_error("listener path too long: %s", path);
		return -1;
	}
	listener_path = path;
	strcpy(sa.sun_path, path);
	unlink(path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* The socket file is created 0600 from the start, not chmod'ed after a window. */
	mode_t um = umask(0177);
	int rc = listen_fd < 0 ? -1 : bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(um);
	if (rc < 0 || chmod(path, 0600) < 0 || listen(listen_fd, 4) < 0) {
		emit_error("listener %s: %s", path, strerror(errno));
		if (rc == 0)
			unlink(path);
		return -1;
	}
	return 0;
}

void close_listener(void)
{
	if (listen_fd >= 0) {
		close(listen_fd);
		listen_fd = -1;
		unlink(listener_path);
	}
}

/* Keeps the first fd passed, closes any other. */
static void take_fds(struct msghdr *msg, int *got_fd)
{
	for (struct cmsghdr *h = CMSG_FIRSTHDR(msg); h; h = CMSG_NXTHDR(msg, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		int nfds = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int *fds = (int *)CMSG_DATA(h);
		for (int i = 0; i < nfds; i++) {
			if (*got_fd < 0)
				*got_fd = fds[i];
			else
				close(fds[i]);
		}
	}
}

/* Reads runc's whole message into state (NUL-terminated); returns the notify fd or -1. */
static int receive_state(int c, char *state, size_t cap)
{
	size_t len = 0;
	int got_fd = -1;
	for (;;) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int) * 8)];
		} cm;
		struct iovec iov = { .iov_base = state + len, .iov_len = cap - 1 - len };
		struct msghdr msg = { .msg_iov = &iov,
				      .msg_iovlen = 1,
				      .msg_control = cm.buf,
				      .msg_controllen = sizeof(cm.buf) };
		ssize_t n = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n >= 0)
			take_fds(&msg, &got_fd);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len >= cap - 1)
			break;
	}
	state[len] = 0;
	return got_fd;
}

/*
 * The supervisor counts the cell as started only with its proxy socket; without it the cell
 * must not run (fail closed). The socket needs the cell's namespaces, not its filter, so this
 * runs as soon as init's pid is known: from the runtime's pid file when init installs the
 * filter itself, which is milliseconds before the notify fd can be taken (initfd.c). The
 * capture's nft run then overlaps init's own start instead of following it.
 */
void start_proxy_port(void)
{
	static int started;
	if (proxy_port <= 0 || started)
		return;
	started = 1;
	if (init_pid <= 0) {
		emit_error("proxy listener: the runtime did not say which pid the cell has");
		return;
	}
	if (hand_over_proxy_listener(init_pid) < 0)
		kill((pid_t)init_pid, SIGKILL);
}

void accept_listener(void)
{
	int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	static char state[256 * 1024];
	int got_fd = receive_state(c, state, sizeof(state));
	close(c);
	if (got_fd < 0) {
		emit_error("listener connection without a seccomp fd");
		return;
	}
	if (notify_fd >= 0) {
		emit_error("second seccomp fd on the listener ignored");
		close(got_fd);
		return;
	}
	/* Go marshals the state's top-level "pid" before "bundle" and "annotations". */
	const char *p = strstr(state, "\"pid\":");
	if (p)
		init_pid = strtol(p + 6, NULL, 10);
	adopt_notify_fd(got_fd);
}

/* The cell's filter is in place and ours to answer: what must follow before any command. */
void adopt_notify_fd(int fd)
{
	notify_fd = fd;
	/* Linux 6.6+: the notifying task wakes the monitor synchronously (on its own CPU), which
	 * shortens every round trip (each exec and each library the loader maps is one). Older
	 * kernels refuse the flag; the round trips then keep the ordinary wake-up. */
	ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, (__u64)SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
	/* The supervisor starts no task command before the child reports "limits" (nslimits.c). */
	if (limit_cell_namespaces(init_pid) < 0 && init_pid > 0)
		kill((pid_t)init_pid, SIGKILL);
	start_proxy_port();
	struct out o = { 0 };
	out_fmt(&o, "{\"type\":\"listener\",\"pid\":%ld,\"initPid\":%ld}", init_pid, init_pid);
	emit(&o);
	/* One fd per cell: nobody else needs the socket. */
	close_listener();
}
