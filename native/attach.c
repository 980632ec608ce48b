/*
 * nanocell-attach --pid PID --src DIR --dst PATH [--overlay DATA] [--noexec] [--ro REL]...
 * nanocell-attach --pid PID --wait
 *
 * Attaches a workspace into a running cell: the warm pool's claim (src/cell/pool.ts). DIR is
 * the workspace overlay, already mounted on the host; PATH is the (empty) placeholder the cell
 * was started with, at the project's own path. The cell's init applied Landlock to that path
 * at start, and Landlock checks a path's mount points too, so the rules hold for what is
 * mounted on top.
 *
 * With --overlay, DIR is first mounted as that overlay (DATA: lowerdir=...,upperdir=...,
 * workdir=..., as src/workspace/overlay.ts builds it), nosuid and nodev: one process does the
 * whole claim.
 *
 * The order is the point:
 *  1. Everything from the host is taken while this process still sees the host: a clone of
 *     DIR (open_tree), flags set on it (nosuid, nodev, and noexec when the policy forbids exec
 *     in the workspace), and a read-only clone of each protected path REL below DIR, resolved
 *     without following symlinks or leaving DIR.
 *  2. Only then the cell's mount namespace is joined (setns on a pidfd of its init). From here
 *     on no host path is opened.
 *  3. The clone is moved onto PATH, and each protected clone onto REL below it, resolved
 *     beneath the new workspace root without symlinks: no task has run in the cell yet, and a
 *     link could not lead a mount elsewhere even if one had.
 * With --wait (the pool starts one per warm cell, so a claim costs no process start), the
 * pidfd is taken at once and the rest of the arguments are read from stdin, NUL-separated,
 * up to its end; an empty request (the cell was destroyed unclaimed) exits 0 doing nothing.
 * Any failure exits 1 with one line; the caller destroys the cell, which drops whatever was
 * attached with its mount namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_open_tree
#define __NR_open_tree 428
#endif
#ifndef __NR_move_mount
#define __NR_move_mount 429
#endif
#ifndef __NR_openat2
#define __NR_openat2 437
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
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

struct nc_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

#define MAX_RO	    256
#define MAX_REQUEST (256 * 1024)
#define MAX_ARGS    (2 * MAX_RO + 16)

static void __attribute__((noreturn)) fail(const char *step, const char *what, int err)
{
	fprintf(stderr, "nanocell-attach: %s%s%s: %s\n", step, what ? " " : "", what ? what : "",
		strerror(err));
	exit(1);
}

/* A relative path with no empty, "." or ".." component: what a protected path must be. */
static int clean_rel(const char *p)
{
	if (!*p || *p == '/')
		return 0;
	for (const char *s = p; *s;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return 0;
		s += n + (e ? 1 : 0);
		if (e && !*s)
			return 0;
	}
	return 1;
}

static int beneath(int dirfd, const char *rel)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC | O_NOFOLLOW,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	return (int)syscall(__NR_openat2, dirfd, rel, &how, sizeof(how));
}

static int clone_tree(int fd, uint64_t attrs, const char *what)
{
	int tree = (int)syscall(__NR_open_tree, fd, "",
				OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree < 0)
		fail("open_tree", what, errno);
	struct nc_mount_attr attr = { .attr_set = attrs };
	if (syscall(__NR_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
		fail("mount_setattr", what, errno);
	return tree;
}

static void move_onto(int tree, int target, const char *what)
{
	if (syscall(__NR_move_mount, tree, "", target, "",
		    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		fail("move_mount", what, errno);
}

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr, "usage: nanocell-attach --pid PID (--wait | --src DIR --dst PATH "
			"[--overlay DATA] [--noexec] [--ro REL]...)\n");
	exit(2);
}

/* The --wait request: stdin to its end, split at NULs into argv[1..]. */
static int read_request(char **args)
{
	static char buf[MAX_REQUEST + 1];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(0, buf + len, MAX_REQUEST - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("read the request", NULL, errno);
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == MAX_REQUEST)
			fail("the request is too long", NULL, E2BIG);
	}
	if (len && buf[len - 1] != 0)
		fail("the request does not end with a NUL", NULL, EINVAL);
	int n = 1;
	for (size_t off = 0; off < len; off += strlen(buf + off) + 1) {
		if (n == MAX_ARGS)
			fail("the request has too many arguments", NULL, E2BIG);
		args[n++] = buf + off;
	}
	return n;
}

int main(int argc, char **argv)
{
	const char *src = NULL, *dst = NULL, *overlay = NULL, *ro[MAX_RO];
	int nro = 0, noexec = 0, wait = 0, pidfd = -1;
	long pid = 0;
	char *request[MAX_ARGS];
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 1; i < argc; i++) {
			const char *a = argv[i];
			if (strcmp(a, "--noexec") == 0) {
				noexec = 1;
			} else if (pass == 0 && strcmp(a, "--wait") == 0) {
				wait = 1;
			} else if (pass == 0 && i + 1 < argc && strcmp(a, "--pid") == 0) {
				char *end;
				pid = strtol(argv[++i], &end, 10);
				if (*end || pid <= 0)
					fail("bad --pid", argv[i], EINVAL);
			} else if (i + 1 < argc && strcmp(a, "--src") == 0) {
				src = argv[++i];
			} else if (i + 1 < argc && strcmp(a, "--overlay") == 0) {
				overlay = argv[++i];
			} else if (i + 1 < argc && strcmp(a, "--dst") == 0) {
				dst = argv[++i];
			} else if (i + 1 < argc && strcmp(a, "--ro") == 0) {
				if (nro == MAX_RO)
					fail("too many --ro paths", NULL, E2BIG);
				if (!clean_rel(argv[i + 1]))
					fail("bad --ro path", argv[i + 1], EINVAL);
				ro[nro++] = argv[++i];
			} else {
				usage();
			}
		}
		if (!pid)
			usage();
		/* The cell is named by a pidfd before anything else, so a recycled pid cannot turn
		 * the join below into a join of some other process's namespace; with --wait, that
		 * holds however long the cell waits for its claim. */
		if (pidfd < 0) {
			pidfd = (int)syscall(__NR_pidfd_open, (pid_t)pid, 0);
			if (pidfd < 0)
				fail("pidfd_open of the cell's init", NULL, errno);
		}
		if (!wait)
			break;
		if (src || dst || overlay || noexec || nro)
			usage();
		argc = read_request(request);
		if (argc == 1)
			return 0;
		argv = request;
		wait = 0;
	}
	if (!src || !dst || src[0] != '/' || dst[0] != '/')
		usage();
	const uint64_t flags =
		MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (noexec ? MOUNT_ATTR_NOEXEC : 0);

	/* 1. From the host. */
	if (overlay && mount("nanocell-overlay", src, "overlay", MS_NOSUID | MS_NODEV, overlay) < 0)
		fail("mount the workspace overlay at", src, errno);
	int srcfd = open(src, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (srcfd < 0)
		fail("open", src, errno);
	int tree = clone_tree(srcfd, flags, src);
	int ro_tree[MAX_RO];
	for (int i = 0; i < nro; i++) {
		int fd = beneath(srcfd, ro[i]);
		if (fd < 0)
			fail("open protected path", ro[i], errno);
		ro_tree[i] = clone_tree(fd, flags | MOUNT_ATTR_RDONLY, ro[i]);
		close(fd);
	}
	close(srcfd);

	/* 2. Into the cell's mount namespace: root and cwd become the cell's. */
	if (setns(pidfd, CLONE_NEWNS) < 0)
		fail("setns into the cell's mount namespace", NULL, errno);

	/* 3. In the cell. */
	int dstfd = open(dst, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dstfd < 0)
		fail("open the placeholder", dst, errno);
	move_onto(tree, dstfd, dst);
	close(dstfd);
	int ws = open(dst, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ws < 0)
		fail("open the attached workspace", dst, errno);
	for (int i = 0; i < nro; i++) {
		int target = beneath(ws, ro[i]);
		if (target < 0)
			fail("open protected path in the cell", ro[i], errno);
		move_onto(ro_tree[i], target, ro[i]);
		close(target);
	}
	return 0;
}
