/*
 * Event output: one JSON object per line on stdout, the only channel to the supervisor.
 * Strings from the task (paths, argv) are escaped here; the supervisor parses nothing else.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "monitor.h"

void out_raw(struct out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 1024;
		while (cap < o->len + n + 1)
			cap *= 2;
		char *p = realloc(o->p, cap);
		if (!p)
			return;
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

void out_fmt(struct out *o, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		out_raw(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void out_str(struct out *o, const char *s, size_t n)
{
	out_raw(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			out_raw(o, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			out_fmt(o, "\\u%04x", c);
		} else {
			out_raw(o, (const char *)&c, 1);
		}
	}
	out_raw(o, "\"", 1);
}

void out_cstr(struct out *o, const char *s)
{
	out_str(o, s, strlen(s));
}

/* Write one complete line; a failed write is dropped (the supervisor may be gone). */
void emit(struct out *o)
{
	out_raw(o, "\n", 1);
	size_t off = 0;
	while (off < o->len) {
		ssize_t n = write(1, o->p + off, o->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	free(o->p);
	memset(o, 0, sizeof(*o));
}

void emit_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct out o = { 0 };
	out_fmt(&o, "{\"type\":\"error\",\"message\":");
	out_cstr(&o, msg);
	out_raw(&o, "}", 1);
	emit(&o);
}

long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
