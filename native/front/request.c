/*
 * The native front's wire: the runCli request and the stdin and cancel inputs it writes (JSON
 * strings and base64, the only encoding it does), and the frame reads. docs/architecture.md,
 * "The native front".
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "front.h"

extern char **environ;

void put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n > MAX_LINE_BYTES)
		node_cli(); /* too large for one line: the node CLI runs it in-process */
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		while (cap < b->len + n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			node_cli();
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* A JSON string. Bytes past ASCII pass as they are: the server decodes them as node decodes
 * its own argv and environment (UTF-8, a bad sequence becoming U+FFFD). */
static void put_json(struct buf *b, const char *s, size_t n)
{
	put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(b, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put(b, esc, 6);
		} else {
			put(b, (const char *)&s[i], 1);
		}
	}
	put(b, "\"", 1);
}

void put_base64(struct buf *b, const unsigned char *s, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		char q[4] = { tab[(v >> 18) & 63], tab[(v >> 12) & 63],
			      i + 1 < n ? tab[(v >> 6) & 63] : '=', i + 2 < n ? tab[v & 63] : '=' };
		put(b, q, 4);
	}
}

/* 0, or -1 with errno (EPIPE: the reader went away). */
int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

void __attribute__((noreturn)) server_gone(void)
{
	fprintf(stderr,
		"nanocell: the cell server on %s went away; its cells are gone with it (fix: start "
		"it again with nanocell serve, and create new cells)\n",
		sock_path_for_errors);
	exit(EXIT_NANOCELL);
}

void send_line(int sock, struct buf *b)
{
	put(b, "\n", 1);
	if (write_all(sock, b->p, b->len) != 0)
		server_gone();
	b->len = 0;
}

void send_input(int sock, const char *type, const char *rest)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "{\"v\":%d,\"id\":1,\"type\":\"%s\"%s}\n",
			 PROTOCOL_VERSION, type, rest);
	if (write_all(sock, line, (size_t)n) != 0)
		server_gone();
}

void send_request(int sock, char **args)
{
	struct buf b = { 0 };
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		node_cli(); /* a removed cwd: the node CLI says what it says of it */
	char head[64];
	snprintf(head, sizeof(head), "{\"v\":%d,\"id\":1,\"type\":\"runCli\",\"args\":[",
		 PROTOCOL_VERSION);
	puts_(&b, head);
	for (int i = 0; args[i]; i++) {
		if (i)
			put(&b, ",", 1);
		put_json(&b, args[i], strlen(args[i]));
	}
	puts_(&b, "],\"cwd\":");
	put_json(&b, cwd, strlen(cwd));
	puts_(&b, ",\"env\":{");
	int first = 1;
	for (char **e = environ; *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq || eq == *e)
			continue; /* node's process.env shows neither */
		if (!first)
			put(&b, ",", 1);
		first = 0;
		put_json(&b, *e, (size_t)(eq - *e));
		put(&b, ":", 1);
		put_json(&b, eq + 1, strlen(eq + 1));
	}
	puts_(&b, "}}");
	send_line(sock, &b);
	free(b.p);
}

/* Reads exactly n bytes; 0 at a clean end before the first byte, -1 on a cut-off frame. */
int read_exact(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return got == 0 && r == 0 ? 0 : -1;
		got += (size_t)r;
	}
	return 1;
}
