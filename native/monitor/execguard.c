/*
 * See execguard.h. Files are resolved the way the task resolves them: inside its root
 * (/proc/PID/root with RESOLVE_IN_ROOT), from its cwd or dirfd, so a symlink in the cell can
 * never point the monitor at a host file. A file is "allowed" when it or one of its ancestor
 * directories is an exec.allow path, compared by device and inode, which is what Landlock
 * checks. The kernel's own checks stay in force behind this: the decision here adds the record
 * and, for mmap of a file that sits on an executable mount but outside exec.allow, the refusal.
 */
#include "execguard.h"
#include "monitor.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef SECCOMP_ADDFD_FLAG_SEND
#define SECCOMP_ADDFD_FLAG_SEND (1UL << 1)
#endif

#define MAX_ALLOWED 256
static const char *allowed[MAX_ALLOWED];
static int nallowed;

void execguard_allow(const char *path)
{
	if (nallowed < MAX_ALLOWED)
		allowed[nallowed++] = path;
}

enum call { C_NONE, C_EXECVE, C_EXECVEAT, C_MMAP, C_MEMFD };

static enum call classify(uint32_t arch, int nr)
{
	if (arch == AUDIT_ARCH_X86_64)
		return nr == 59	   ? C_EXECVE
		       : nr == 322 ? C_EXECVEAT
		       : nr == 9   ? C_MMAP
		       : nr == 319 ? C_MEMFD
				   : C_NONE;
	if (arch == AUDIT_ARCH_AARCH64)
		return nr == 221   ? C_EXECVE
		       : nr == 281 ? C_EXECVEAT
		       : nr == 222 ? C_MMAP
		       : nr == 279 ? C_MEMFD
				   : C_NONE;
	return C_NONE;
}

/*
 * Opens (O_PATH) what the task names by dirfd + path, resolved inside the task's root, where
 * the kernel would resolve it. /proc/self and /dev/fd name the task's own fds: the monitor opens
 * those through /proc/PID/fd, since "self" would be the monitor. `procdir` is the task's
 * /proc/PID, opened once per notification.
 */
static int open_as_task(int procdir, int dirfd, const char *path)
{
	char p[PATH_MAX + 64];
	int n;
	if (procdir < 0)
		return -1;
	if (sscanf(path, "/proc/self/fd/%d", &n) == 1 ||
	    sscanf(path, "/proc/thread-self/fd/%d", &n) == 1 ||
	    sscanf(path, "/dev/fd/%d", &n) == 1) {
		snprintf(p, sizeof(p), "fd/%d", n);
		return openat(procdir, p, O_PATH | O_CLOEXEC);
	}
	int root = openat(procdir, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -1;
	char rel[PATH_MAX * 2];
	if (path[0] == '/') {
		snprintf(rel, sizeof(rel), "%s", path);
	} else {
		/* Relative to the task's cwd or dirfd; the link reads as the path inside its root. */
		char dir[PATH_MAX];
		if (dirfd == AT_FDCWD)
			snprintf(p, sizeof(p), "cwd");
		else
			snprintf(p, sizeof(p), "fd/%d", dirfd);
		ssize_t len = readlinkat(procdir, p, dir, sizeof(dir) - 1);
		if (len <= 0 || dir[0] != '/') {
			close(root);
			return -1;
		}
		dir[len] = 0;
		snprintf(rel, sizeof(rel), "%s/%s", dir, path);
	}
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
	int fd = (int)syscall(SYS_openat2, root, rel, &how, sizeof(how));
	close(root);
	return fd;
}

/* The canonical path of an open file as the cell sees it (its mount namespace's d_path). */
static int fd_path(int fd, char *out, size_t max)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, out, max - 1);
	if (n <= 0)
		return -1;
	out[n] = 0;
	return 0;
}

static int beneath_allowed(const char *path)
{
	for (int i = 0; i < nallowed; i++) {
		size_t l = strlen(allowed[i]);
		if (strncmp(path, allowed[i], l) == 0 &&
		    (path[l] == 0 || path[l] == '/' || (l == 1 && allowed[i][0] == '/')))
			return 1;
	}
	return 0;
}

/*
 * What the kernel refuses (or, for a mapping outside exec.allow on an executable mount, what
 * nanocell refuses) about running code from the open file `fd`; 0 when it may run.
 */
static int judge_file(int fd, const char *verb, char *why, size_t why_len)
{
	/* A mapping may also come from a read-only mount: the host's own libraries, which a list of
	 * single programs in exec.allow still needs. Landlock does not look at mmap at all. Such a
	 * mapping is decided by the mount alone (a memfd is never on a read-only mount), so the
	 * loader's libraries, one notification each, cost no path lookup. */
	int mapping = strncmp(verb, "mmap", 4) == 0;
	struct statvfs vfs;
	int have_vfs = fstatvfs(fd, &vfs) == 0;
	if (mapping && have_vfs && (vfs.f_flag & ST_RDONLY) && !(vfs.f_flag & ST_NOEXEC))
		return 0;
	char path[PATH_MAX];
	if (fd_path(fd, path, sizeof(path)) < 0)
		return 0;
	if (strncmp(path, "/memfd:", 7) == 0) {
		snprintf(why, why_len, "%s %s: code from a memory file never runs in a cell", verb,
			 path);
		return EACCES;
	}
	if (have_vfs && (vfs.f_flag & ST_NOEXEC)) {
		snprintf(why, why_len,
			 "%s %s: its mount is noexec (exec.allow does not reach it, or "
			 "exec.scratch is deny)",
			 verb, path);
		return EACCES;
	}
	if (nallowed && !beneath_allowed(path) &&
	    !(mapping && have_vfs && (vfs.f_flag & ST_RDONLY))) {
		snprintf(why, why_len, "%s %s: not in exec.allow", verb, path);
		return EACCES;
	}
	return 0;
}

/* The interpreter a script names on its #! line, judged like the script (one level deep). */
static int judge_interpreter(int procdir, int fd, char *why, size_t why_len)
{
	char p[64], line[256];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	int rfd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (rfd < 0)
		return 0;
	ssize_t n = read(rfd, line, sizeof(line) - 1);
	close(rfd);
	if (n < 3 || line[0] != '#' || line[1] != '!')
		return 0;
	line[n] = 0;
	char *interp = line + 2;
	while (*interp == ' ' || *interp == '\t')
		interp++;
	interp[strcspn(interp, " \t\n")] = 0;
	if (!*interp)
		return 0;
	int ifd = open_as_task(procdir, AT_FDCWD, interp);
	if (ifd < 0)
		return 0;
	int err = judge_file(ifd, "exec (a script's #! interpreter)", why, why_len);
	close(ifd);
	return err;
}

/* `path` is what the task names (read by the caller, which records it too), NULL when it could
 * not be read whole. */
static int check_exec(const struct seccomp_notif *req, int at, int procdir, const char *path,
		      char *why, size_t why_len)
{
	const __u64 *a = req->data.args;
	if (!path)
		return 0; /* the kernel answers EFAULT or ENAMETOOLONG itself */
	int fd = -1;
	if (at && !path[0] && (a[4] & AT_EMPTY_PATH)) {
		/* fexecve: the open file itself (a memfd is the usual way to run code never on disk). */
		char p[64];
		snprintf(p, sizeof(p), "fd/%d", (int)a[0]);
		fd = procdir < 0 ? -1 : openat(procdir, p, O_PATH | O_CLOEXEC);
	} else if (path[0]) {
		fd = open_as_task(procdir, at ? (int)a[0] : AT_FDCWD, path);
	}
	if (fd < 0)
		return 0; /* ENOENT, EBADF and friends: the kernel's answer is the right one */
	struct stat st;
	int err = 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		err = judge_file(fd, path[0] ? "exec" : "execveat(AT_EMPTY_PATH)", why, why_len);
		if (!err)
			err = judge_interpreter(procdir, fd, why, why_len);
	}
	close(fd);
	return err;
}

static int check_mmap(const struct seccomp_notif *req, char *why, size_t why_len)
{
	const __u64 *a = req->data.args;
	if (!(a[2] & PROT_EXEC) || (a[3] & MAP_ANONYMOUS))
		return 0;
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/fd/%d", (int)req->pid, (int)a[4]);
	int fd = open(p, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return 0; /* EBADF: the kernel says so */
	int err = judge_file(fd, "mmap(PROT_EXEC)", why, why_len);
	close(fd);
	/* The kernel's own answer for a noexec mount is EPERM; keep it. */
	return err && strstr(why, "noexec") ? EPERM : err;
}

/*
 * memfd_create: the monitor makes the memfd itself with MFD_NOEXEC_SEAL (no exec bits, and
 * F_SEAL_EXEC so none can be added) and installs it in the task as the call's result. Whatever
 * the pid namespace's vm.memfd_noexec says, no memfd in a cell can be executed.
 */
static int answer_memfd(int notify_fd, const struct seccomp_notif *req, char *why, size_t why_len)
{
	const __u64 *a = req->data.args;
	unsigned flags = (unsigned)a[1];
	if (flags & MFD_EXEC) {
		snprintf(why, why_len,
			 "memfd_create(MFD_EXEC): memory files in a cell are never executable");
		return EACCES;
	}
	char name[250];
	if (task_str((pid_t)req->pid, a[0], name, sizeof(name)) < 0)
		return EFAULT;
	unsigned base = (flags & ~MFD_CLOEXEC) | MFD_CLOEXEC;
	int fd = (int)syscall(SYS_memfd_create, name, base | MFD_NOEXEC_SEAL);
	if (fd < 0 && errno == EINVAL && !(flags & MFD_NOEXEC_SEAL)) {
		/* Before Linux 6.3 there is no exec seal: drop the exec bits. The task does not own
		 * the memfd (the monitor does), so in root mode it cannot add them back. */
		fd = (int)syscall(SYS_memfd_create, name, base);
		if (fd >= 0 && fchmod(fd, 0666) < 0) {
			int e = errno;
			close(fd);
			return e;
		}
	}
	if (fd < 0)
		return errno;
	struct seccomp_notif_addfd add = {
		.id = req->id,
		.flags = SECCOMP_ADDFD_FLAG_SEND,
		.srcfd = (__u32)fd,
		.newfd = 0,
		.newfd_flags = (flags & MFD_CLOEXEC) ? O_CLOEXEC : 0,
	};
	int r = ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
	int e = errno;
	close(fd);
	if (r < 0)
		return e == ENOENT ? EG_ANSWERED /* the task is gone */ : e;
	return EG_ANSWERED;
}

const char *execguard_call_name(const struct seccomp_notif *req)
{
	static const char *names[] = { "", "execve", "execveat", "mmap", "memfd_create" };
	return names[classify(req->data.arch, req->data.nr)];
}

int execguard_check(int notify_fd, const struct seccomp_notif *req, int procdir,
		    const char *exec_path, char *why, size_t why_len)
{
	why[0] = 0;
	switch (classify(req->data.arch, req->data.nr)) {
	case C_EXECVE:
		return check_exec(req, 0, procdir, exec_path, why, why_len);
	case C_EXECVEAT:
		return check_exec(req, 1, procdir, exec_path, why, why_len);
	case C_MMAP:
		return check_mmap(req, why, why_len);
	case C_MEMFD:
		return answer_memfd(notify_fd, req, why, why_len);
	case C_NONE:
		break;
	}
	return EG_NOT_MINE;
}
