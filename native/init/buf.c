/* Bounded byte buffers and fd helpers of nanocell-init. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init.h"

void buf_reserve(struct buf *b, size_t extra)
{
	if (b->start + b->len + extra <= b->cap)
		return;
	if (b->start > 0) {
		memmove(b->data, b->data + b->start, b->len);
		b->start = 0;
	}
	if (b->len + extra <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + extra)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p) {
		/* Out of memory in pid 1: nothing sensible remains; the cell dies with us. */
		_exit(125);
	}
	b->data = p;
	b->cap = cap;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->start + b->len, p, n);
	b->len += n;
}

void buf_consume(struct buf *b, size_t n)
{
	b->start += n;
	b->len -= n;
	if (b->len == 0)
		b->start = 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}
