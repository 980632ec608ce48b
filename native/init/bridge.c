/*
 * Bridges: TCP listeners on 127.0.0.1:PORT inside the cell, each accepted connection relayed
 * to a unix socket of the supervisor (relay.c moves the bytes).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init.h"

struct bridge bridges[MAX_BRIDGES];
int nbridges;
struct conn *conns;

void parse_bridge(const char *spec)
{
	if (nbridges >= MAX_BRIDGES)
		fatal("too many --bridge arguments (max %d)", MAX_BRIDGES);
	const char *prefix = "127.0.0.1:";
	const char *eq = strchr(spec, '=');
	if (strncmp(spec, prefix, strlen(prefix)) != 0 || !eq)
		fatal("bad --bridge '%s' (want 127.0.0.1:PORT=/abs/path.sock)", spec);
	char *endp;
	long port = strtol(spec + strlen(prefix), &endp, 10);
	const char *path = eq + 1;
	if (endp != eq || port <= 0 || port > 65535 || path[0] != '/' ||
	    strlen(path) >= sizeof(bridges[0].path))
		fatal("bad --bridge '%s' (want 127.0.0.1:PORT=/abs/path.sock)", spec);
	struct bridge *b = &bridges[nbridges++];
	b->port = (unsigned)port;
	b->fd = -1;
	strcpy(b->path, path);
}

void listen_bridges(void)
{
	for (int i = 0; i < nbridges; i++) {
		struct bridge *b = &bridges[i];
		b->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (b->fd < 0)
			fatal("bridge 127.0.0.1:%u: socket: %s", b->port, strerror(errno));
		int one = 1;
		setsockopt(b->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_port = htons((uint16_t)b->port) };
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(b->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(b->fd, 128) < 0)
			fatal("bridge 127.0.0.1:%u: %s", b->port, strerror(errno));
	}
}

static void free_conn(struct conn *c)
{
	struct conn **pp = &conns;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	close(c->a);
	if (c->b >= 0)
		close(c->b);
	half_free(&c->ab);
	half_free(&c->ba);
	free(c);
}

/* The supervisor's end; -1 (after an L frame) when it cannot be reached. */
static int connect_upstream(const struct bridge *br)
{
	int b = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, br->path);
	/* A unix connect completes at once or fails; it does not wait for the server's accept. */
	if (b < 0 || connect(b, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		send_text(NC_FRAME_LOG, "bridge 127.0.0.1:%u: connect %s: %s", br->port, br->path,
			  strerror(errno));
		if (b >= 0)
			close(b);
		return -1;
	}
	set_nonblock(b);
	return b;
}

void accept_bridge(struct bridge *br)
{
	for (;;) {
		int a = accept4(br->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (a < 0)
			return;
		int b = connect_upstream(br);
		if (b < 0) {
			close(a);
			continue;
		}
		/* Requests and replies are small writes that should leave at once: no Nagle. */
		int one = 1;
		setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = calloc(1, sizeof(*c));
		if (!c || half_init(&c->ab) < 0 || half_init(&c->ba) < 0)
			_exit(125);
		c->a = a;
		c->b = b;
		c->next = conns;
		conns = c;
		/* By the time init gets to the accept, the client has often sent its request: relay it
		 * now rather than after another poll. Under CPU contention every wake-up of init costs
		 * a scheduling delay. */
		service_conn(c, POLLIN, 0);
	}
}

void service_conn(struct conn *c, short a_rev, short b_rev)
{
	int err = 0;
	if (a_rev & POLLERR || b_rev & POLLERR)
		err = 1;
	if (!err)
		err = relay_half(c->a, c->b, &c->ab, (a_rev & (POLLIN | POLLHUP)) != 0) < 0;
	if (!err)
		err = relay_half(c->b, c->a, &c->ba, (b_rev & (POLLIN | POLLHUP)) != 0) < 0;
	if (err || (c->ab.wshut && c->ba.wshut))
		free_conn(c);
}
