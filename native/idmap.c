/*
 * nanocell-idmap [--rw] --uid FROM:TO --gid FROM:TO SRC DST [--overlay DATA TARGET]
 * nanocell-idmap --umount TARGET...
 *
 * Bind-mounts directory SRC at the existing directory DST, read-only, nosuid, nodev, with an
 * idmap under which SRC's on-disk owner FROM appears as TO. The cell uses it as the lower layer
 * of the workspace overlay, so the project owner's files appear owned by the cell user.
 * With --rw the mount is writable (toolchain caches under the state root), still nosuid, nodev
 * and noexec: a cache holds data the tools read, never programs the cell runs.
 *
 * The idmap needs a user namespace holding the mapping; a short-lived child creates one and
 * waits while this process writes its maps and borrows its ns fd.
 *
 * --overlay then mounts an overlay at TARGET (nosuid, nodev) with DATA as its fs options
 * (lowerdir=...,upperdir=...,workdir=...), normally over DST: the workspace's two mounts in one
 * process, since on a loaded host each process a cell start spawns costs milliseconds.
 * --umount unmounts every mount stacked at each TARGET in order, detaching one that is busy; a
 * TARGET that is no mount point (or is gone) is left alone. The caller checks the mount table.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __NR_open_tree
#define __NR_open_tree 428
#endif
#ifndef __NR_move_mount
#define __NR_move_mount 429
#endif
#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef MOUNT_ATTR_NOEXEC
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef MOUNT_ATTR_NOSUID
#define MOUNT_ATTR_NOSUID 0x00000002
#endif
#ifndef MOUNT_ATTR_NODEV
#define MOUNT_ATTR_NODEV 0x00000004
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif

/* Defined locally: older glibc/UAPI combinations lack struct mount_attr. */
struct nc_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

static pid_t child = -1;

static void __attribute__((noreturn)) fail(const char *step, int err)
{
	fprintf(stderr, "nanocell-idmap: %s: %s\n", step, strerror(err));
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	exit(1);
}

static void parse_map(const char *s, unsigned long *from, unsigned long *to)
{
	char *end;
	errno = 0;
	*from = strtoul(s, &end, 10);
	if (errno || end == s || *end != ':')
		fail("bad id map (want FROM:TO)", EINVAL);
	const char *t = end + 1;
	*to = strtoul(t, &end, 10);
	if (errno || end == t || *end || *from > UINT32_MAX - 1 || *to > UINT32_MAX - 1)
		fail("bad id map (want FROM:TO)", EINVAL);
}

static void write_file(pid_t pid, const char *name, const char *text)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		fail(name, errno);
	ssize_t n = write(fd, text, strlen(text));
	if (n != (ssize_t)strlen(text))
		fail(name, n < 0 ? errno : EIO);
	close(fd);
}

/*
 * A child holds a new user namespace mapping one uid and one gid; returns an fd of it. The
 * child lives until *hold_w is closed (or the parent dies).
 */
static int map_userns(unsigned long ufrom, unsigned long uto, unsigned long gfrom,
		      unsigned long gto, int *hold_w)
{
	int ready[2], hold[2];
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0)
		fail("pipe", errno);
	child = fork();
	if (child < 0)
		fail("fork", errno);
	if (child == 0) {
		char c = unshare(CLONE_NEWUSER) < 0 ? 1 : 0;
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		/* Wait until the parent closes its end (or dies). */
		close(hold[1]);
		while (read(hold[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	char c = 1;
	if (read(ready[0], &c, 1) != 1 || c != 0)
		fail("unshare user namespace", EPERM);

	char map[64];
	write_file(child, "setgroups", "deny");
	snprintf(map, sizeof(map), "%lu %lu 1\n", ufrom, uto);
	write_file(child, "uid_map", map);
	snprintf(map, sizeof(map), "%lu %lu 1\n", gfrom, gto);
	write_file(child, "gid_map", map);
	char nspath[64];
	snprintf(nspath, sizeof(nspath), "/proc/%d/ns/user", (int)child);
	int userns = open(nspath, O_RDONLY | O_CLOEXEC);
	if (userns < 0)
		fail("open user namespace", errno);
	*hold_w = hold[1];
	return userns;
}

/* Clones the tree at src_fd, idmaps it through userns and mounts it on dst_fd. */
static void idmap_mount(int src_fd, int dst_fd, int userns, int rw)
{
	int tree = (int)syscall(__NR_open_tree, src_fd, "",
				OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree < 0)
		fail("open_tree", errno);
	struct nc_mount_attr attr = {
		.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
			    (rw ? MOUNT_ATTR_NOEXEC : MOUNT_ATTR_RDONLY),
		.userns_fd = (uint64_t)userns,
	};
	if (syscall(__NR_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
		fail("mount_setattr", errno);
	if (syscall(__NR_move_mount, tree, "", dst_fd, "",
		    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		fail("move_mount", errno);
}

/* Every mount stacked at each target, topmost first; busy ones detached. */
static int umount_all(int n, char **targets)
{
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < 16; k++) {
			if (umount2(targets[i], UMOUNT_NOFOLLOW) == 0)
				continue;
			if (errno == EBUSY &&
			    umount2(targets[i], MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
				continue;
			if (errno == EINVAL || errno == ENOENT)
				break;
			fprintf(stderr, "nanocell-idmap: umount %s: %s\n", targets[i],
				strerror(errno));
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *uid = NULL, *gid = NULL;
	int rw = 0;
	int i = 1;
	if (argc >= 2 && strcmp(argv[1], "--umount") == 0)
		return umount_all(argc - 2, argv + 2);
	if (i < argc && strcmp(argv[i], "--rw") == 0) {
		rw = 1;
		i++;
	}
	for (; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--uid") == 0)
			uid = argv[i + 1];
		else if (strcmp(argv[i], "--gid") == 0)
			gid = argv[i + 1];
		else
			break;
	}
	const char *overlay = NULL, *overlay_target = NULL;
	if (argc - i == 5 && strcmp(argv[i + 2], "--overlay") == 0) {
		overlay = argv[i + 3];
		overlay_target = argv[i + 4];
	} else if (argc - i != 2) {
		uid = NULL;
	}
	if (!uid || !gid) {
		fprintf(stderr, "usage: nanocell-idmap [--rw] --uid FROM:TO --gid FROM:TO SRC DST "
				"[--overlay DATA TARGET]\n"
				"       nanocell-idmap --umount TARGET...\n");
		return 2;
	}
	const char *src = argv[i], *dst = argv[i + 1];
	unsigned long ufrom, uto, gfrom, gto;
	parse_map(uid, &ufrom, &uto);
	parse_map(gid, &gfrom, &gto);

	/* A symlink SRC or DST could point anywhere on the host: refuse it. */
	int src_fd = open(src, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (src_fd < 0)
		fail("open source", errno);
	int dst_fd = open(dst, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (dst_fd < 0)
		fail("open target", errno);

	int hold_w;
	int userns = map_userns(ufrom, uto, gfrom, gto, &hold_w);
	idmap_mount(src_fd, dst_fd, userns, rw);

	close(hold_w);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	child = -1;
	if (overlay &&
	    mount("nanocell-overlay", overlay_target, "overlay", MS_NOSUID | MS_NODEV, overlay) < 0)
		fail("overlay mount", errno);
	return 0;
}
