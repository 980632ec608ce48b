/*
 * The syscall table (--syscall-table: "arch nr name errno" lines written by the supervisor from
 * its own table) names a denied syscall and gives the errno it is answered with.
 */
#include <errno.h>
#include <linux/audit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor.h"

#ifndef AUDIT_ARCH_AARCH64
#define AUDIT_ARCH_AARCH64 (EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE)
#endif

static struct sysent *table;
static size_t table_len, table_cap;

const char *arch_name(uint32_t arch)
{
	switch (arch) {
	case AUDIT_ARCH_X86_64:
		return "x86_64";
	case AUDIT_ARCH_I386:
		return "i386";
	case AUDIT_ARCH_AARCH64:
		return "aarch64";
	default:
		return "unknown";
	}
}

static uint32_t arch_of(const char *name)
{
	return strcmp(name, "x86_64") == 0    ? AUDIT_ARCH_X86_64
	       : strcmp(name, "i386") == 0    ? AUDIT_ARCH_I386
	       : strcmp(name, "aarch64") == 0 ? AUDIT_ARCH_AARCH64
					      : 0;
}

static struct sysent *table_add(void)
{
	if (table_len == table_cap) {
		size_t cap = table_cap ? table_cap * 2 : 512;
		struct sysent *t = realloc(table, cap * sizeof(*t));
		if (!t)
			return NULL;
		table = t;
		table_cap = cap;
	}
	return &table[table_len++];
}

int load_table(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		char arch[16], name[48];
		int nr, err;
		if (line[0] == '#' || sscanf(line, "%15s %d %47s %d", arch, &nr, name, &err) != 4)
			continue;
		uint32_t a = arch_of(arch);
		if (!a)
			continue;
		struct sysent *e = table_add();
		if (!e) {
			fclose(f);
			errno = ENOMEM;
			return -1;
		}
		e->arch = a;
		e->nr = nr;
		e->err = err;
		snprintf(e->name, sizeof(e->name), "%s", name);
	}
	fclose(f);
	return 0;
}

const struct sysent *lookup_syscall(uint32_t arch, int nr)
{
	for (size_t i = 0; i < table_len; i++)
		if (table[i].arch == arch && table[i].nr == nr)
			return &table[i];
	return NULL;
}

int is_exec(uint32_t arch, int nr, int *is_at)
{
	*is_at = 0;
	switch (arch) {
	case AUDIT_ARCH_X86_64:
		*is_at = nr == 322;
		return nr == 59 || nr == 322;
	case AUDIT_ARCH_I386:
		*is_at = nr == 358;
		return nr == 11 || nr == 358;
	case AUDIT_ARCH_AARCH64:
		*is_at = nr == 281;
		return nr == 221 || nr == 281;
	}
	return 0;
}
