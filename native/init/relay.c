/*
 * One direction of a relayed connection: splice() through a pipe, so bytes never pass through
 * init's memory; a RELAY_BUF copy when no pipe could be made or splice does not apply.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "init.h"

#define RELAY_BUF	 (256u << 10) /* per direction, only when no pipe could be made */
#define RELAY_PIPE_BULK	 (1u << 20)   /* pipe size once a direction has carried RELAY_BULK_AFTER */
#define RELAY_BULK_AFTER (256u << 10)
#define RELAY_ROUNDS	 8 /* rounds per wake-up, so one busy connection cannot starve the rest */

int half_init(struct half *h)
{
	memset(h, 0, sizeof(*h));
	if (pipe2(h->pipe, O_CLOEXEC | O_NONBLOCK) == 0)
		return 0;
	h->pipe[0] = h->pipe[1] = -1;
	h->buf = malloc(RELAY_BUF);
	return h->buf ? 0 : -1;
}

void half_free(struct half *h)
{
	if (h->pipe[0] >= 0) {
		close(h->pipe[0]);
		close(h->pipe[1]);
	}
	free(h->buf);
}

/* Read from a socket into the half. Returns bytes read, 0 at EOF, -1 with errno. */
static ssize_t half_fill(int from, struct half *h)
{
	if (h->pipe[0] >= 0) {
		/* A bulk transfer gets a larger pipe: each wake-up of init then moves up to 1 MiB
		 * instead of 64 KiB. Only then, so that many small connections do not use up the
		 * user's pipe memory (pipe-user-pages-soft); if enlarging fails, 64 KiB still work. */
		if (!h->grown && h->moved >= RELAY_BULK_AFTER) {
			h->grown = 1;
			fcntl(h->pipe[1], F_SETPIPE_SZ, (int)RELAY_PIPE_BULK);
		}
		/* The pipe is empty here (see half_wants_read), so its whole capacity is free; splice
		 * stops when the pipe is full. */
		ssize_t n = splice(from, NULL, h->pipe[1], NULL, RELAY_PIPE_BULK,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0 && !h->grown)
			h->moved += (size_t)n;
		if (n >= 0 || (errno != EINVAL && errno != ENOSYS && errno != EPERM))
			return n;
		/* splice is not available for this socket: copy instead, from now on. */
		close(h->pipe[0]);
		close(h->pipe[1]);
		h->pipe[0] = h->pipe[1] = -1;
		if (!(h->buf = malloc(RELAY_BUF)))
			return -1;
	}
	return read(from, h->buf + h->off + h->len, RELAY_BUF - h->off - h->len);
}

/* Write what the half holds to a socket. Returns -1 on a fatal error; EAGAIN is not one. */
static int half_flush(int to, struct half *h)
{
	while (h->len) {
		ssize_t n = h->pipe[0] >= 0 ? splice(h->pipe[0], NULL, to, NULL, h->len,
						     SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
					    : write(to, h->buf + h->off, h->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -1;
		h->off += h->pipe[0] >= 0 ? 0 : (size_t)n;
		h->len -= (size_t)n;
	}
	if (h->len == 0)
		h->off = 0;
	return 0;
}

/* A pipe is refilled only once empty: its free space in bytes says nothing about its free
 * slots, and polling for input it cannot take would spin. */
int half_wants_read(const struct half *h)
{
	return !h->eof && (h->pipe[0] >= 0 ? h->len == 0 : h->off + h->len < RELAY_BUF);
}

/* Move bytes from `from` to `to` through the half: write what it holds, then read and write
 * again while both sides keep up. Returns -1 on a fatal error of the connection. */
int relay_half(int from, int to, struct half *h, int readable)
{
	for (int round = 0; round < RELAY_ROUNDS; round++) {
		if (half_flush(to, h) < 0)
			return -1;
		if (!readable || !half_wants_read(h))
			break;
		ssize_t n = half_fill(from, h);
		if (n == 0) {
			h->eof = 1;
		} else if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				return -1;
			break;
		} else {
			h->len += (size_t)n;
		}
	}
	if (h->eof && h->len == 0 && !h->wshut) {
		shutdown(to, SHUT_WR);
		h->wshut = 1;
	}
	return 0;
}
