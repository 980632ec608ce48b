/*
 * Landlock: init restricts itself, and so every command it starts, to the rules the plan gave
 * on its command line. Any rule that cannot be applied is fatal: the policy required it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

/* Older UAPI headers (Debian 12 ships 6.1) lack the newer Landlock bits. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

/* The full ruleset struct of ABI 6; older kernels accept it as long as unknown tails are zero. */
struct nc_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

long ll_abi(void)
{
	long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return abi < 0 ? 0 : abi;
}

static uint64_t ll_handled_fs(long abi)
{
	uint64_t all = (1ULL << 13) - 1; /* ABI 1: EXECUTE .. MAKE_SYM */
	if (abi >= 2)
		all |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		all |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		all |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return all;
}

static int create_ruleset(long abi, uint64_t handled)
{
	struct nc_ruleset_attr attr = { .handled_access_fs = handled };
	if (abi >= 6)
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
	size_t attr_size = abi >= 6 ? sizeof(attr) : abi >= 4 ? 16 : 8;
	int rs = (int)syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0);
	if (rs < 0)
		fatal("landlock: create_ruleset: %s", strerror(errno));
	return rs;
}

static void add_rule(int rs, uint64_t handled, const struct ll_rule *rule)
{
	const uint64_t read = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
	/* The rights that apply to a file; the rest only make sense beneath a directory. */
	const uint64_t file_rights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
				     LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |
				     LANDLOCK_ACCESS_FS_IOCTL_DEV;
	uint64_t access = rule->kind == LL_READ	  ? read
			  : rule->kind == LL_EXEC ? read | LANDLOCK_ACCESS_FS_EXECUTE
						  : handled & ~LANDLOCK_ACCESS_FS_EXECUTE;
	int fd = open(rule->path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		fatal("landlock: cannot open %s: %s", rule->path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0)
		fatal("landlock: stat %s: %s", rule->path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		access &= file_rights;
	struct landlock_path_beneath_attr pb = { .allowed_access = access & handled,
						 .parent_fd = fd };
	if (syscall(__NR_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
		fatal("landlock: add rule for %s: %s", rule->path, strerror(errno));
	close(fd);
}

void apply_landlock(long abi, const struct ll_rule *rules, int nrules)
{
	if (abi < 1)
		fatal("landlock: not available in this kernel (required by the policy)");
	uint64_t handled = ll_handled_fs(abi);
	int rs = create_ruleset(abi, handled);
	for (int i = 0; i < nrules; i++)
		add_rule(rs, handled, &rules[i]);
	if (syscall(__NR_landlock_restrict_self, rs, 0) < 0)
		fatal("landlock: restrict_self: %s", strerror(errno));
	close(rs);
}
