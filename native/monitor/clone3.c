/*
 * clone3 passes its flags in a struct in the task's memory, where a seccomp filter cannot look,
 * so the filter sends every clone3 here. The flags are read from the task's memory: a request
 * for any new namespace is refused with EPERM and recorded; threads and forks (glibc's
 * pthread_create uses clone3) continue. The read is advisory: another thread of the task can
 * rewrite the struct after we read it and before the kernel does. The wall that holds is the
 * cell's namespace limits (nslimits.c: every max_*_namespaces is 0 in the cell's user
 * namespace), so a raced request still fails, with ENOSPC from the kernel.
 */
#include <errno.h>
#include <linux/audit.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "monitor.h"

#ifndef AUDIT_ARCH_AARCH64
#define AUDIT_ARCH_AARCH64 (EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE)
#endif

/* clone3 is 435 on x86_64, i386 and the generic table (aarch64). */
#define NR_CLONE3 435

static const struct {
	uint64_t bit;
	const char *name;
} ns_flags[] = {
	{ 0x00020000ULL, "CLONE_NEWNS" },   { 0x02000000ULL, "CLONE_NEWCGROUP" },
	{ 0x04000000ULL, "CLONE_NEWUTS" },  { 0x08000000ULL, "CLONE_NEWIPC" },
	{ 0x10000000ULL, "CLONE_NEWUSER" }, { 0x20000000ULL, "CLONE_NEWPID" },
	{ 0x40000000ULL, "CLONE_NEWNET" },  { 0x00000080ULL, "CLONE_NEWTIME" },
};

int is_clone3(uint32_t arch, int nr)
{
	return nr == NR_CLONE3 &&
	       (arch == AUDIT_ARCH_X86_64 || arch == AUDIT_ARCH_AARCH64 || arch == AUDIT_ARCH_I386);
}

/* clone_args.flags is its first field, a u64 at args[0]; args[1] is the struct's size. One
 * process_vm_readv (taskmem.c): the kernel reads the struct the same way, so memory it could
 * not read either fails here too, and the call is refused. */
static int read_flags(pid_t pid, uint64_t addr, uint64_t size, uint64_t *flags)
{
	if (size < sizeof(*flags))
		return -1;
	return task_read(pid, addr, flags, sizeof(*flags)) == (ssize_t)sizeof(*flags) ? 0 : -1;
}

int clone3_check(const struct seccomp_notif *req, char *why, size_t why_len)
{
	uint64_t flags = 0;
	if (read_flags((pid_t)req->pid, req->data.args[0], req->data.args[1], &flags) < 0) {
		/* Fail closed: flags we cannot see may ask for anything. */
		snprintf(why, why_len, "clone3: its clone_args could not be read (size %llu)",
			 (unsigned long long)req->data.args[1]);
		return EPERM;
	}
	size_t len = 0;
	why[0] = 0;
	for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++) {
		if (!(flags & ns_flags[i].bit))
			continue;
		int n = snprintf(why + len, why_len - len, "%s%s", len ? "|" : "clone3 asked for ",
				 ns_flags[i].name);
		if (n < 0 || (size_t)n >= why_len - len)
			break;
		len += (size_t)n;
	}
	if (!len)
		return 0;
	snprintf(why + len, why_len - len, ": a new namespace is refused");
	return EPERM;
}
