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

/* Node's IPC framing: one JSON line; SCM_RIGHTS with it makes the fd its handle. */
static int send_handle(int s)
{
	char line[128];
	int len = snprintf(line, sizeof(line),
			   "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Server\","
			   "\"msg\":{\"nanocell\":\"proxy-listener\",\"port\":%d}}\n",
			   proxy_port);
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	memset(&cm, 0, sizeof(cm));
	struct iovec iov = { .iov_base = line, .iov_len = (size_t)len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cm.buf,
			      .msg_controllen = sizeof(cm.buf) };
	struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &s, sizeof(int));
	return sendmsg(channel_fd, &msg, MSG_NOSIGNAL) == len ? 0 : -1;
}

/*
 * In the child: enter the cell's user and network namespaces (the netns checks CAP_SYS_ADMIN in
 * both its owner and the caller's user namespace, so rootless needs the userns first), listen
 * on 127.0.0.1:PORT and send the socket to the supervisor.
 */
static void __attribute__((noreturn)) listener_child(long pid)
{
	char path[64];
	const char *step = "open the cell's user namespace";
	snprintf(path, sizeof(path), "/proc/%ld/ns/user", pid);
	int userns = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
	int netns = open(path, O_RDONLY | O_CLOEXEC);
	int s = -1;
	if (userns < 0 || netns < 0)
		goto fail;
	step = "enter the cell's user namespace";
	if (setns(userns, CLONE_NEWUSER) < 0)
		goto fail;
	step = "enter the cell's network namespace";
	if (setns(netns, CLONE_NEWNET) < 0)
		goto fail;
	step = "listen";
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)proxy_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 512) < 0)
		goto fail;
	step = "send it to the supervisor";
	if (send_handle(s) < 0)
		goto fail;
	_exit(0);
fail:
	emit_error("proxy listener on 127.0.0.1:%d: cannot %s: %s", proxy_port, step,
		   strerror(errno));
	_exit(1);
}

/* A child does it: a process that entered the cell's user namespace cannot leave it, and the
 * monitor must stay on the host's side. */
int hand_over_proxy_listener(long pid)
{
	pid_t child = fork();
	if (child < 0) {
		emit_error("proxy listener: fork: %s", strerror(errno));
		return -1;
	}
	if (child == 0)
		listener_child(pid);
	int status;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}
