/*
 * The init end of the control protocol on fd 3 (protocol.h): frames out through a buffer the
 * poll loop drains, frames in parsed and dispatched. Input is bounded by NC_MAX_FRAME_PAYLOAD;
 * a larger frame is a protocol error that ends the cell.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "init.h"

struct buf ctl_out;
static struct buf ctl_in;
static int ctl_open = 1;
static int have_ctl_fd = 1;

void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = (v >> 24) & 0xff;
}

uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

void send_frame(char type, uint32_t id, const void *payload, size_t len)
{
	if (!ctl_open)
		return;
	unsigned char hdr[NC_FRAME_HEADER_BYTES];
	hdr[0] = (unsigned char)type;
	put_u32(hdr + 1, id);
	put_u32(hdr + 5, (uint32_t)len);
	buf_append(&ctl_out, hdr, sizeof(hdr));
	if (len)
		buf_append(&ctl_out, payload, len);
}

void send_u32(char type, uint32_t id, uint32_t v)
{
	unsigned char p[4];
	put_u32(p, v);
	send_frame(type, id, p, 4);
}

void send_text(char type, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	send_frame(type, 0, line, (size_t)n);
}

/* Before the loop runs, fd 3 is blocking: write everything now. */
void flush_blocking(void)
{
	while (ctl_open && ctl_out.len) {
		ssize_t n = write(NC_CTL_FD, ctl_out.data + ctl_out.start, ctl_out.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = NC_CTL_FD, .events = POLLOUT };
			poll(&p, 1, 1000);
			continue;
		}
		if (n <= 0)
			return;
		buf_consume(&ctl_out, (size_t)n);
	}
}

void require_ctl_fd(void)
{
	if (fcntl(NC_CTL_FD, F_GETFD) < 0) {
		have_ctl_fd = 0;
		fatal("fd %d (the control channel) is not open", NC_CTL_FD);
	}
}

void fatal(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (have_ctl_fd) {
		send_frame(NC_FRAME_FATAL, 0, line, strlen(line));
		flush_blocking();
	}
	fprintf(stderr, "nanocell-init: %s\n", line);
	_exit(125);
}

static void handle_frame(char type, uint32_t id, const unsigned char *payload, uint32_t len)
{
	/* The supervisor sends nothing before the monitor holds the seccomp listener. */
	release_notify_fd();
	/* Fail closed: no command runs in a warm cell before its claim applied Landlock. */
	if (landlock_pending && (type == NC_FRAME_EXEC || type == NC_FRAME_EXEC_TTY)) {
		send_text(NC_FRAME_LOG, "exec %u refused: Landlock is not applied yet", id);
		send_u32(NC_FRAME_FAILED, id, EPERM);
		return;
	}
	switch (type) {
	case NC_FRAME_EXEC:
		start_exec(id, payload, len);
		break;
	case NC_FRAME_EXEC_TTY:
		start_exec_tty(id, payload, len);
		break;
	case NC_FRAME_LANDLOCK:
		apply_deferred_landlock();
		break;
	case NC_FRAME_RESIZE:
		resize_exec(id, payload, len);
		break;
	case NC_FRAME_STDIN:
		stdin_data(id, payload, len);
		break;
	case NC_FRAME_KILL:
		signal_exec(id, payload, len);
		break;
	case NC_FRAME_QUIT:
		shutdown_cell(0);
		break;
	default:
		send_text(NC_FRAME_LOG, "unknown frame type 0x%02x ignored", (unsigned char)type);
	}
}

void read_ctl(void)
{
	buf_reserve(&ctl_in, PIPE_CHUNK);
	ssize_t n = read(NC_CTL_FD, ctl_in.data + ctl_in.start + ctl_in.len, PIPE_CHUNK);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0)
		shutdown_cell(0); /* the supervisor is gone: the cell dies with it */
	ctl_in.len += (size_t)n;
	while (ctl_in.len >= NC_FRAME_HEADER_BYTES) {
		const unsigned char *h = (const unsigned char *)ctl_in.data + ctl_in.start;
		uint32_t len = get_u32(h + 5);
		if (len > NC_MAX_FRAME_PAYLOAD) {
			send_text(NC_FRAME_FATAL, "protocol error: frame of %u bytes", len);
			flush_blocking();
			shutdown_cell(125);
		}
		size_t whole = NC_FRAME_HEADER_BYTES + (size_t)len;
		if (ctl_in.len < whole) {
			buf_reserve(&ctl_in, whole - ctl_in.len);
			return;
		}
		handle_frame((char)h[0], get_u32(h + 1), h + NC_FRAME_HEADER_BYTES, len);
		buf_consume(&ctl_in, whole);
	}
}

void write_ctl(void)
{
	while (ctl_out.len) {
		ssize_t n = write(NC_CTL_FD, ctl_out.data + ctl_out.start, ctl_out.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0)
			shutdown_cell(0);
		buf_consume(&ctl_out, (size_t)n);
	}
}
