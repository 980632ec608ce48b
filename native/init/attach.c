/*
 * Sessions for a Kubernetes sandbox pod (docs/kubernetes.md, "In the pod"). Nothing hands a
 * pod's init a socketpair on fd 3: the supervisor reaches the pod only through pods/exec, which
 * starts a new process with its own stdio. So:
 *   --control-listen PATH  init, as the pod's pid 1, listens on a unix socket and takes the first
 *       connection from its own uid as the control channel on fd 3. The listener is closed and
 *       the path removed at once: a pod serves one session, and the end of that session ends the
 *       cell exactly as EOF on fd 3 ends a local one.
 *   --attach PATH  the command pods/exec runs: connects to that socket and relays its stdin to
 *       it and it to its stdout, so the control protocol runs over the exec's stdio. stdin's EOF
 *       (the exec stream is gone: the supervisor ended or died) is passed on as EOF.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"

static int listen_fd = -1;
static const char *listen_path;

static int unix_addr(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (path[0] != '/' || strlen(path) >= sizeof(a->sun_path))
		return -1;
	memcpy(a->sun_path, path, strlen(path));
	return 0;
}

/* Step 4 of main() with --control-listen. fd 3 is held by /dev/null until the session arrives,
 * so no fd opened meanwhile (the signalfd, a bridge) can take the control channel's number, and
 * a fatal error before the session goes to stderr (the pod's log) instead of a stranger. */
void control_listen_prepare(const char *path)
{
	struct sockaddr_un a;
	if (unix_addr(path, &a) < 0)
		fatal("--control-listen %s: not an absolute socket path that fits", path);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || (null != NC_CTL_FD && dup3(null, NC_CTL_FD, O_CLOEXEC) < 0))
		fatal("reserving fd %d: %s", NC_CTL_FD, strerror(errno));
	if (null != NC_CTL_FD)
		close(null);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0)
		fatal("socket: %s", strerror(errno));
	/* A socket left by an earlier container of the pod would make bind fail. */
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	/* Bound and listening under a name of its own, then renamed into place: whoever sees the
	 * path can connect (a connect between bind and listen is refused, and the one session the
	 * pod serves would be lost). A path too long for the temporary name binds directly. */
	struct sockaddr_un t;
	char tmp[sizeof(t.sun_path) + 32];
	const char *slash = strrchr(path, '/');
	snprintf(tmp, sizeof(tmp), "%.*s/.nanocell-listen-%d", (int)(slash - path), path,
		 (int)getpid());
	int staged = unix_addr(tmp, &t) == 0;
	if (staged && lstat(tmp, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(tmp); /* an earlier init's, killed between its bind and its link */
	mode_t old = umask(0077);
	int r = bind(listen_fd, (struct sockaddr *)(staged ? &t : &a), sizeof(a));
	umask(old);
	/* link, not rename: like bind, it refuses a path that exists (anything but a stale socket,
	 * removed above), where rename would replace it. */
	if (r < 0 || listen(listen_fd, 1) < 0 || (staged && link(tmp, path) < 0)) {
		int e = errno;
		if (staged)
			unlink(tmp);
		fatal("listening on %s: %s", path, strerror(e));
	}
	if (staged)
		unlink(tmp);
	listen_path = path;
}

/* The peer must be this uid (or root): every exec in the pod runs as the pod's user. */
static int peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return 0;
	return cred.uid == getuid() || cred.uid == 0;
}

/* While no session is attached, init is an idle pid 1: it reaps what exec sessions orphan and
 * ends on the runtime's SIGTERM (pod deletion), as serve() would. */
static void idle_signals(void)
{
	struct signalfd_siginfo si;
	while (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && si.ssi_pid == 0)
			shutdown_cell(0);
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* Step 8b: waits for the session and makes it fd 3 (close-on-exec, like everything from 3 up). */
void control_listen_accept(void)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = listen_fd, .events = POLLIN },
				       { .fd = sig_fd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fatal("poll: %s", strerror(errno));
		}
		if (p[1].revents)
			idle_signals();
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (!peer_allowed(fd)) {
			close(fd);
			continue;
		}
		if (dup3(fd, NC_CTL_FD, O_CLOEXEC) < 0)
			fatal("dup3: %s", strerror(errno));
		close(fd);
		break;
	}
	close_fd(&listen_fd);
	/* Best effort (Landlock may not grant removal): with the listener closed, a connect to the
	 * path is refused either way. */
	unlink(listen_path);
}

static void __attribute__((noreturn)) attach_fail(const char *what, const char *path)
{
	fprintf(stderr, "nanocell-init: cannot attach to %s: %s: %s\n", path, what,
		strerror(errno));
	_exit(125);
}

/* --attach PATH: relays stdin → socket and socket → stdout until init closes the session. */
void __attribute__((noreturn)) run_attach(const char *path)
{
	prctl(PR_SET_DUMPABLE, 0);
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_un a;
	if (unix_addr(path, &a) < 0) {
		errno = ENAMETOOLONG;
		attach_fail("address", path);
	}
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		attach_fail("socket", path);
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		attach_fail("connect", path);
	struct half up, down;
	if (half_init(&up) < 0 || half_init(&down) < 0 || set_nonblock(0) < 0 ||
	    set_nonblock(1) < 0 || set_nonblock(s) < 0)
		attach_fail("setup", path);
	for (;;) {
		struct pollfd p[3] = {
			{ .fd = up.eof ? -1 : 0, .events = half_wants_read(&up) ? POLLIN : 0 },
			{ .fd = s,
			  .events = (short)((half_wants_read(&down) ? POLLIN : 0) |
					    (up.len ? POLLOUT : 0)) },
			{ .fd = 1, .events = down.len ? POLLOUT : 0 },
		};
		if (poll(p, 3, -1) < 0 && errno != EINTR)
			_exit(1);
		short rd = POLLIN | POLLHUP | POLLERR;
		if (relay_half(0, s, &up, p[0].revents & rd) < 0)
			_exit(1);
		if (relay_half(s, 1, &down, p[1].revents & rd) < 0)
			_exit(1);
		/* init closed the session (after a quit, or because its stdin ended): done. */
		if (down.eof && down.len == 0)
			_exit(0);
	}
}
