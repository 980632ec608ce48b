/*
 * The fork server's channel: messages out (with an fd), the request's encoding (base64 of
 * NUL-terminated fields), and the relay of a child's own IPC messages.
 */
#include "forkserver.h"

/* One message, with `fd` attached when >= 0; a short or failed write ends the server. */
void send_line(const char *line, size_t len, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	memset(&cm, 0, sizeof(cm));
	struct iovec iov = { .iov_base = (void *)line, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(channel, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len)
		_exit(0); /* the supervisor is gone */
}

void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void reply(const char *fmt, ...)
{
	char line[160];
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	send_line(line, (size_t)len, -1);
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes base64 in place; returns the decoded length, or -1 on a character outside it. */
ssize_t b64_decode(char *s, size_t n)
{
	size_t out = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=')
			break;
		int v = b64_value((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			s[out++] = (char)((acc >> bits) & 0xff);
		}
	}
	return (ssize_t)out;
}

/* The next NUL-terminated field of [*p, end), or NULL when none is left. */
char *field(char **p, char *end)
{
	char *s = *p;
	char *z = s < end ? memchr(s, 0, (size_t)(end - s)) : NULL;
	if (!z)
		return NULL;
	*p = z + 1;
	return s;
}

/*
 * One message from a child's IPC socket, relayed; returns 0 once the socket is done. Only a
 * NODE_HANDLE message with exactly one fd goes on: Node's channel would fail on anything else.
 */
int relay(struct child *c, int flags)
{
	char data[1024 + 32];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct iovec iov = { .iov_base = data, .iov_len = 1024 };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cm.buf,
			      .msg_controllen = sizeof(cm.buf) };
	ssize_t n = recvmsg(c->ipc, &msg, MSG_CMSG_CLOEXEC | flags);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return errno == EINTR;
	int fd = -1, extra = 0;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); n > 0 && h; h = CMSG_NXTHDR(&msg, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		int *fds = (int *)CMSG_DATA(h);
		for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			if (fd < 0)
				fd = fds[i];
			else {
				close(fds[i]);
				extra = 1;
			}
		}
	}
	if (n <= 0) {
		close(c->ipc);
		c->ipc = -1;
		return 0;
	}
	static const char key[] = "\"msg\":{";
	char *at = memmem(data, (size_t)n, key, sizeof(key) - 1);
	if (fd < 0 || extra || (msg.msg_flags & MSG_TRUNC) || !at ||
	    !memmem(data, (size_t)n, "\"NODE_HANDLE\"", 13) || data[n - 1] != '\n') {
		if (fd >= 0)
			close(fd);
		return 1;
	}
	char line[sizeof(data) + 32];
	size_t head = (size_t)(at - data) + sizeof(key) - 1;
	memcpy(line, data, head);
	int l = snprintf(line + head, 32, "\"fsid\":%lu,", c->id);
	memcpy(line + head + (size_t)l, data + head, (size_t)n - head);
	send_line(line, (size_t)n + (size_t)l, fd);
	close(fd);
	return 1;
}
