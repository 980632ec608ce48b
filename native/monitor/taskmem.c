/*
 * Reading what a notified task is doing, from /proc while it waits on us: the path and argv of
 * an exec, its parent and its pid inside the cell. Everything read here is a hint the task
 * controls (it may change its memory after we answer), which the events say ("unverified").
 */
#include <fcntl.h>
#include <linux/audit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monitor.h"

/* Read a NUL-terminated string of at most max-1 bytes at addr; never crosses into an unmapped
 * page in one read, so a string near the end of a mapping is still read. */
static size_t read_str(int mem, uint64_t addr, char *out, size_t max)
{
	size_t got = 0;
	while (got + 1 < max) {
		uint64_t a = addr + got;
		size_t page_left = 4096 - (size_t)(a & 4095);
		size_t want = max - 1 - got;
		if (want > page_left)
			want = page_left;
		ssize_t n = pread(mem, out + got, want, (off_t)a);
		if (n <= 0)
			break;
		char *nul = memchr(out + got, 0, (size_t)n);
		if (nul) {
			got = (size_t)(nul - out);
			out[got] = 0;
			return got;
		}
		got += (size_t)n;
	}
	out[got] = 0;
	return got;
}

static void read_argv(int mem, uint32_t arch, uint64_t argv_addr, struct exec_info *info)
{
	size_t ptr_size = arch == AUDIT_ARCH_I386 ? 4 : 8;
	size_t total = 0;
	for (int i = 0; argv_addr && i < ARGV_MAX; i++) {
		uint64_t ptr = 0;
		if (pread(mem, &ptr, ptr_size, (off_t)(argv_addr + (uint64_t)i * ptr_size)) !=
		    (ssize_t)ptr_size)
			break;
		if (!ptr)
			break;
		size_t room = ARGV_TOTAL_BYTES - total;
		if (room < 2) {
			info->truncated = 1;
			break;
		}
		size_t cap = room < ARG_MAX_BYTES ? room : ARG_MAX_BYTES;
		total += read_str(mem, ptr, info->argv[i], cap) + 1;
		info->argc = i + 1;
		if (i == ARGV_MAX - 1)
			info->truncated = 1;
	}
}

void read_exec(pid_t pid, uint32_t arch, const __u64 *args, int is_at, struct exec_info *info)
{
	memset(info, 0, sizeof(*info));
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/mem", (int)pid);
	int mem = open(p, O_RDONLY | O_CLOEXEC);
	if (mem < 0)
		return;
	/* execveat(dirfd, path, argv, ...) has one argument more in front. */
	uint64_t path_addr = is_at ? args[1] : args[0];
	uint64_t argv_addr = is_at ? args[2] : args[1];
	read_str(mem, path_addr, info->path, sizeof(info->path));
	read_argv(mem, arch, argv_addr, info);
	close(mem);
}

/* An NS* line of /proc/PID/status lists the id in every namespace down to the task's own: the
 * last one is the cell's. */
static long last_ns_field(const char *text, const char *key)
{
	const char *l = strstr(text, key);
	if (!l)
		return -1;
	size_t k = strlen(key);
	const char *end = strchr(l + 1, '\n');
	const char *last = l + k;
	for (const char *q = l + k; end ? q < end : *q; q++)
		if (*q == '\t' || *q == ' ')
			last = q + 1;
	return strtol(last, NULL, 10);
}

void read_ppid(pid_t pid, long *ppid, long *nspid)
{
	*ppid = -1;
	*nspid = -1;
	char p[64], text[4096];
	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return;
	text[n] = 0;
	char *l = strstr(text, "\nPPid:");
	if (l)
		*ppid = strtol(l + 6, NULL, 10);
	*nspid = last_ns_field(text, "\nNSpid:");
}

/*
 * The session id in the cell: init starts each command in a session of its own (setsid), so
 * this names the command a process belongs to (the supervisor's denial notes use it).
 */
long read_cell_sid(pid_t pid)
{
	char p[64], text[4096];
	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = 0;
	return last_ns_field(text, "\nNSsid:");
}
