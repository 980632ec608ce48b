/*
 * The egress proxy's listening socket (--proxy-port): a TCP socket on 127.0.0.1:PORT inside the
 * cell's network namespace, created by a child that enters the cell's namespaces before the
 * cell's init runs, and handed to the supervisor over Node's IPC channel (NODE_CHANNEL_FD),
 * where the proxy accepts on it. The cell's connections then reach the proxy with no relay.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor.h"

int proxy_port = -1;
static int channel_fd = -1;

/* Neither the runtime nor the cell may inherit the supervisor's IPC channel. */
int take_node_channel(void)
{
	const char *ch = getenv("NODE_CHANNEL_FD");
	if (!ch)
		return -1;
	channel_fd = atoi(ch);
	if (fcntl(channel_fd, F_SETFD, FD_CLOEXEC) < 0) {
		emit_error("NODE_CHANNEL_FD %s: %s", ch, strerror(errno));
		return -1;
	}
	unsetenv("NODE_CHANNEL_FD");
	unsetenv("NODE_CHANNEL_SERIALIZATION_MODE");
	return 0;
}

/* One message of `len` bytes with `fd` attached (SCM_RIGHTS); 0 when all of it was sent. */
static int send_with_fd(int sock, const void *data, size_t len, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	memset(&cm, 0, sizeof(cm));
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cm.buf,
			      .msg_controllen = sizeof(cm.buf) };
	struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/*
 * Node's IPC framing: one JSON line; SCM_RIGHTS with it makes the fd its handle. Each handle
 * goes in its own sendmsg (Node takes at most one per read).
 */
static int send_handle(int s, const char *tag, const char *type, int port)
{
	char line[192];
	int len;
	if (strncmp(type, "net.", 4) == 0)
		len = snprintf(line, sizeof(line),
			       "{\"cmd\":\"NODE_HANDLE\",\"type\":\"%s\","
			       "\"msg\":{\"nanocell\":\"%s\",\"port\":%d}}\n",
			       type, tag, port);
	else
		len = snprintf(line, sizeof(line),
			       "{\"cmd\":\"NODE_HANDLE\",\"type\":\"dgram.Socket\","
			       "\"dgramType\":\"%s\",\"msg\":{\"nanocell\":\"%s\",\"port\":%d}}\n",
			       type, tag, port);
	int rc = send_with_fd(channel_fd, line, (size_t)len, s);
	close(s);
	return rc;
}

/* Passes the NFLOG socket to the monitor (back_fd: a socketpair with it). */
static int send_fd(int back_fd, int fd)
{
	char b = 'n';
	return send_with_fd(back_fd, &b, 1, fd);
}

static int recv_fd(int back_fd)
{
	char b;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cm.buf,
			      .msg_controllen = sizeof(cm.buf) };
	if (recvmsg(back_fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT) != 1)
		return -1;
	struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
	if (!h || h->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(h), sizeof(int));
	return fd;
}

/*
 * The capture's sockets, after its routes and rules (netns.c): the transparent listeners, the
 * DNS stub's UDP sockets, then the NFLOG socket for the monitor. Returns the failed step.
 */
static const char *hand_over_capture(int back_fd)
{
	const char *step = capture_setup();
	if (step)
		return step;
	int fd = transparent_listener(AF_INET, CAPTURE_TCP_PORT);
	if (fd < 0 || send_handle(fd, "transparent4", "net.Server", CAPTURE_TCP_PORT) < 0)
		return "listen transparently on 127.0.0.1";
	fd = transparent_listener(AF_INET6, CAPTURE_TCP_PORT);
	if (fd < 0 || send_handle(fd, "transparent6", "net.Server", CAPTURE_TCP_PORT) < 0)
		return "listen transparently on ::1";
	fd = loopback_udp(AF_INET, 53);
	if (fd < 0 || send_handle(fd, "dns4", "udp4", 53) < 0)
		return "bind the DNS stub on 127.0.0.1:53";
	fd = loopback_udp(AF_INET6, 53);
	if (fd < 0 || send_handle(fd, "dns6", "udp6", 53) < 0)
		return "bind the DNS stub on [::1]:53";
	fd = nflog_open();
	if (fd < 0 || send_fd(back_fd, fd) < 0)
		return "open the NFLOG group for dropped packets";
	close(fd);
	return NULL;
}

/*
 * crun hands over the seccomp fd before it executes init, while the process is not dumpable
 * and its memory still belongs to the host's user namespace: until that execve, an
 * unprivileged user may not open its namespaces (EACCES). The exec comes right after.
 */
static int open_ns(long pid, const char *ns)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/ns/%s", pid, ns);
	for (int i = 0;; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 || errno != EACCES || i >= 500)
			return fd;
		usleep(10000);
	}
}

/*
 * In the child: enter the cell's user and network namespaces (the netns checks CAP_SYS_ADMIN in
 * both its owner and the caller's user namespace, so rootless needs the userns first), listen
 * on 127.0.0.1:PORT and send the socket to the supervisor.
 */
static void __attribute__((noreturn)) listener_child(long pid, int back_fd)
{
	const char *step = "open the cell's user namespace";
	int userns = open_ns(pid, "user");
	int netns = open_ns(pid, "net");
	int s = -1;
	if (userns < 0 || netns < 0)
		goto fail;
	step = "enter the cell's user namespace";
	if (setns(userns, CLONE_NEWUSER) < 0)
		goto fail;
	step = "enter the cell's network namespace";
	if (setns(netns, CLONE_NEWNET) < 0)
		goto fail;
	if (capture_rules) {
		const char *failed = hand_over_capture(back_fd);
		if (failed) {
			emit_error("proxy listener: capture: cannot %s: %s", failed,
				   strerror(errno));
			_exit(1);
		}
	}
	step = "listen";
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)proxy_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 512) < 0)
		goto fail;
	/* The supervisor's start check: a connection from inside the cell to its proxy, made now
	 * (the backlog completes it) so the check crosses the cell's loopback and the listener. */
	step = "connect the start check's socket";
	int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0 || connect(probe, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto fail;
	step = "send it to the supervisor";
	if (send_handle(s, "proxy-listener", "net.Server", proxy_port) < 0 ||
	    send_handle(probe, "proxy-probe", "net.Socket", proxy_port) < 0)
		goto fail;
	_exit(0);
fail:
	emit_error("proxy listener on 127.0.0.1:%d: cannot %s: %s", proxy_port, step,
		   strerror(errno));
	_exit(1);
}

static pid_t handover_pid = -1;
static int handover_fd = -1;

/*
 * A child does it: a process that entered the cell's user namespace cannot leave it, and the
 * monitor must stay on the host's side. The monitor does not wait for it: until the cell's
 * init has been executed the child may have to retry (open_ns), and that execve can need the
 * monitor to answer a seccomp notification. handover_reaped finishes the job.
 */
int hand_over_proxy_listener(long pid)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) < 0) {
		emit_error("proxy listener: socketpair: %s", strerror(errno));
		return -1;
	}
	pid_t child = fork();
	if (child < 0) {
		emit_error("proxy listener: fork: %s", strerror(errno));
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	if (child == 0) {
		close(sp[0]);
		listener_child(pid, sp[1]);
	}
	close(sp[1]);
	handover_pid = child;
	handover_fd = sp[0];
	return 0;
}

/* Called by reap for each child; returns whether it was the hand-over child. Fails closed: a
 * cell whose proxy socket or capture is missing is killed (the child said why). */
int handover_reaped(pid_t pid, int status)
{
	if (pid != handover_pid)
		return 0;
	handover_pid = -1;
	int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (ok && capture_rules && (nflog_fd = recv_fd(handover_fd)) < 0) {
		emit_error("proxy listener: capture: no NFLOG socket from the child");
		ok = 0;
	}
	close(handover_fd);
	handover_fd = -1;
	if (!ok && init_pid > 0)
		kill((pid_t)init_pid, SIGKILL);
	return 1;
}
