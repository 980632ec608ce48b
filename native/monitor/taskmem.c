/*
 * Reading what a notified task is doing while it waits on us: the path and argv of an exec
 * (from its memory, with process_vm_readv), its parent and its pid inside the cell (/proc). Everything read here is a hint the task
 * controls (it may change its memory after we answer), which the events say ("unverified").
 */
#include <fcntl.h>
#include <linux/audit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "monitor.h"

/* Reads len bytes at addr in the task's memory: one process_vm_readv, where /proc/PID/mem was
 * an open, a pread and a close (the same ptrace access check allows both). */
ssize_t task_read(pid_t pid, uint64_t addr, void *out, size_t len)
{
	struct iovec local = { .iov_base = out, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	return process_vm_readv(pid, &local, 1, &remote, 1, 0);
}

/* Reads a NUL-terminated string of at most max-1 bytes at addr; never crosses into an unmapped
 * page in one read, so a string near the end of a mapping is still read. Returns its length, or
 * -1 when no NUL came within max-1 readable bytes (out then holds what was read). */
ssize_t task_str(pid_t pid, uint64_t addr, char *out, size_t max)
{
	size_t got = 0;
	while (got + 1 < max) {
		uint64_t a = addr + got;
		size_t page_left = 4096 - (size_t)(a & 4095);
		size_t want = max - 1 - got;
		if (want > page_left)
			want = page_left;
		ssize_t n = task_read(pid, a, out + got, want);
		if (n <= 0)
			break;
		char *nul = memchr(out + got, 0, (size_t)n);
		if (nul) {
			got = (size_t)(nul - out);
			out[got] = 0;
			return (ssize_t)got;
		}
		got += (size_t)n;
	}
	out[got] = 0;
	return -1;
}

static size_t read_str(pid_t pid, uint64_t addr, char *out, size_t max)
{
	task_str(pid, addr, out, max);
	return strlen(out);
}

/* The pointers of argv, as many as one page holds from where the array starts. */
static int read_ptrs(pid_t pid, uint64_t addr, size_t ptr_size, uint64_t *ptrs)
{
	unsigned char raw[ARGV_MAX * 8];
	size_t want = ARGV_MAX * ptr_size, page_left = 4096 - (size_t)(addr & 4095);
	ssize_t n = task_read(pid, addr, raw, want < page_left ? want : page_left);
	if (n > 0 && (size_t)n < want) {
		ssize_t m = task_read(pid, addr + (uint64_t)n, raw + n, want - (size_t)n);
		n += m > 0 ? m : 0;
	}
	int count = n > 0 ? (int)((size_t)n / ptr_size) : 0;
	for (int i = 0; i < count; i++) {
		uint32_t p32;
		if (ptr_size == 4) {
			memcpy(&p32, raw + (size_t)i * 4, 4);
			ptrs[i] = p32;
		} else {
			memcpy(&ptrs[i], raw + (size_t)i * 8, 8);
		}
	}
	return count;
}

void read_exec_argv(pid_t pid, uint32_t arch, const __u64 *args, int is_at, struct exec_info *info)
{
	/* execveat(dirfd, path, argv, ...) has one argument more in front. */
	uint64_t argv_addr = is_at ? args[2] : args[1];
	info->argc = 0;
	info->truncated = 0;
	if (!argv_addr)
		return;
	size_t ptr_size = arch == AUDIT_ARCH_I386 ? 4 : 8;
	uint64_t ptrs[ARGV_MAX];
	int nptrs = read_ptrs(pid, argv_addr, ptr_size, ptrs);
	size_t total = 0;
	for (int i = 0; i < nptrs && ptrs[i]; i++) {
		size_t room = ARGV_TOTAL_BYTES - total;
		if (room < 2) {
			info->truncated = 1;
			break;
		}
		size_t cap = room < ARG_MAX_BYTES ? room : ARG_MAX_BYTES;
		total += read_str(pid, ptrs[i], info->argv[i], cap) + 1;
		info->argc = i + 1;
		if (i == ARGV_MAX - 1)
			info->truncated = 1;
	}
}

int read_exec_path(pid_t pid, const __u64 *args, int is_at, struct exec_info *info)
{
	return task_str(pid, is_at ? args[1] : args[0], info->path, sizeof(info->path)) >= 0;
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

void read_ppid(int procdir, long *ppid, long *nspid)
{
	*ppid = -1;
	*nspid = -1;
	char text[4096];
	int fd = procdir < 0 ? -1 : openat(procdir, "status", O_RDONLY | O_CLOEXEC);
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
