/*
 * nanocell-monitor: per-cell shim between the supervisor and the runtime.
 *
 *   nanocell-monitor --listener /abs/seccomp.sock [--pid-file /abs/init.pid]
 *                    [--notify-from-init] [--syscall-table FILE] [--max-events N] [--max-exec-events N]
 *                    [--proxy-port PORT [--capture RULES --nft PATH]]
 *                    [--exec-allow PATH]... -- RUNTIME ARGV...
 *
 * Node can neither reap orphans nor receive an fd over SCM_RIGHTS, so this process does both:
 * it is the child subreaper that inherits the cell's init once `runc run --detach` exits
 * (runtime.c), and the seccomp agent that receives runc's notify fd on the listener socket
 * (listener.c) and answers every notification (notify.c). Events go to stdout as JSON lines
 * (events.c). With --proxy-port it also makes the egress proxy's socket in the cell's network
 * namespace (proxyport.c); with --capture, the transparent capture there too (netns.c), and it
 * reports the packets that capture drops (nflog.c).
 *
 * If this process dies, the kernel fails pending and future notified calls with ENOSYS: that
 * is the intended fail-closed behaviour.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "execguard.h"
#include "monitor.h"

struct config {
	const char *listener;
	const char *table;
	char **runtime_argv;
};

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr, "usage: nanocell-monitor --listener /abs/seccomp.sock [--pid-file FILE] "
			"[--notify-from-init] [--syscall-table FILE] [--max-events N] "
			"[--max-exec-events N] "
			"[--proxy-port PORT [--capture RULES --nft PATH]] [--exec-allow PATH]... "
			"-- RUNTIME ARGV...\n");
	exit(2);
}

static void parse_option(struct config *cfg, const char *a, const char *v)
{
	if (strcmp(a, "--listener") == 0)
		cfg->listener = v;
	else if (strcmp(a, "--pid-file") == 0)
		pid_file = v;
	else if (strcmp(a, "--syscall-table") == 0)
		cfg->table = v;
	else if (strcmp(a, "--max-events") == 0)
		max_events = atol(v);
	else if (strcmp(a, "--max-exec-events") == 0)
		max_exec_events = atol(v);
	else if (strcmp(a, "--proxy-port") == 0)
		proxy_port = atoi(v);
	else if (strcmp(a, "--capture") == 0)
		capture_rules = v;
	else if (strcmp(a, "--nft") == 0)
		capture_nft = v;
	else if (strcmp(a, "--exec-allow") == 0)
		execguard_allow(v);
	else
		usage();
}

static void parse_args(struct config *cfg, int argc, char **argv)
{
	int i;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "--notify-from-init") == 0) {
			notify_from_init = 1;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		parse_option(cfg, argv[i], argv[i + 1]);
		i++;
	}
	if (!cfg->listener || cfg->listener[0] != '/' || i >= argc)
		usage();
	if (proxy_port != -1 &&
	    (proxy_port <= 0 || proxy_port > 65535 || !getenv("NODE_CHANNEL_FD")))
		usage();
	if (!capture_rules != !capture_nft || (capture_rules && proxy_port == -1))
		usage();
	cfg->runtime_argv = argv + i;
}

/* Hold fd 3's number with a CLOEXEC placeholder when it is not open, so none of our own fds
 * lands on 3 and gets closed when the control socket's number is given up. */
static void hold_ctl_fd(void)
{
	if (fcntl(NC_CTL_FD, F_GETFD) >= 0)
		return;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && fd != NC_CTL_FD) {
		dup3(fd, NC_CTL_FD, O_CLOEXEC);
		close(fd);
	}
}

static int take_signals(sigset_t *old)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, old);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		emit_error("signalfd: %s", strerror(errno));
	return sfd;
}

static void handle_signals(int sfd)
{
	struct signalfd_siginfo si;
	int stop = 0;
	while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (si.ssi_signo != SIGCHLD)
			stop = 1;
	if (stop)
		terminate();
	if (runtime_exited == 0 && listen_fd >= 0) {
		/* Pick up a connection made just before the runtime exited. */
		struct pollfd lp = { .fd = listen_fd, .events = POLLIN };
		if (poll(&lp, 1, 0) > 0)
			accept_listener();
	}
	reap(WNOHANG);
}

/* The cell is over: answer what is still queued so no task is left waiting on us, then exit. */
static void __attribute__((noreturn)) finish(void)
{
	if (init_pid <= 0 && runtime_status != 0)
		emit_error("runtime exited with status %d before the cell's init was known",
			   runtime_status);
	while (notify_fd >= 0) {
		struct pollfd p = { .fd = notify_fd, .events = POLLIN };
		if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
			break;
		handle_notification();
	}
	if (nflog_fd >= 0) {
		nflog_read();
		nflog_summary();
	}
	reap(WNOHANG);
	cleanup_and_exit(0);
}

static void __attribute__((noreturn)) serve(int sfd)
{
	long long last_summary = mono_ms();
	for (;;) {
		struct pollfd p[5];
		int np = 0, li = -1, ni = -1, fi = -1, si = -1;
		p[np++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		if (listen_fd >= 0) {
			li = np;
			p[np++] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
		}
		if (notify_fd >= 0) {
			ni = np;
			p[np++] = (struct pollfd){ .fd = notify_fd, .events = POLLIN };
		}
		if (nflog_fd >= 0) {
			fi = np;
			p[np++] = (struct pollfd){ .fd = nflog_fd, .events = POLLIN };
		}
		if (sync_fd >= 0) {
			si = np;
			p[np++] = (struct pollfd){ .fd = sync_fd, .events = POLLIN };
		}
		/* While init's filter is awaited (initfd.c), poll briefly and try again. */
		int wait = poll_init_notify();
		int n = poll(p, (nfds_t)np, wait >= 0 ? wait : 1000);
		if (n < 0 && errno != EINTR) {
			emit_error("poll: %s", strerror(errno));
			terminate();
		}
		/* The listener goes first: runc connects before `run --detach` returns. */
		if (li >= 0 && (p[li].revents & POLLIN))
			accept_listener();
		if (ni >= 0 && (p[ni].revents & POLLIN)) {
			handle_notification();
		} else if (ni >= 0 && (p[ni].revents & (POLLHUP | POLLERR))) {
			/* No task uses the filter any more. */
			close(notify_fd);
			notify_fd = -1;
		}
		if (fi >= 0 && (p[fi].revents & POLLIN))
			nflog_read();
		/* After the notification: a barrier answered now follows what was written before. */
		if (si >= 0 && (p[si].revents & (POLLIN | POLLHUP | POLLERR)))
			handle_sync();
		if (p[0].revents & POLLIN)
			handle_signals(sfd);
		check_init_gone();
		long long t = mono_ms();
		if (t - last_summary >= 1000) {
			emit_summaries();
			nflog_summary();
			last_summary = t;
		}
		if (runtime_exited && (init_reaped || init_pid <= 0))
			finish();
	}
}

int main(int argc, char **argv)
{
	static struct config cfg;

	/* 1. Parse and validate every argument before acting. */
	parse_args(&cfg, argc, argv);

	/* 2. Take the supervisor's IPC channel away from what we will exec, first: the runtime and
	 *    the cell must never inherit it. */
	if (proxy_port != -1 && take_node_channel() < 0)
		return 1;

	/* 3. Die with the supervisor. The parent check after arming PDEATHSIG closes the window in
	 *    which the supervisor died before it was armed. Subreaper before the runtime is forked,
	 *    so init is reparented to us, not to the host's init. */
	pid_t parent = getppid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		return 1;
	signal(SIGPIPE, SIG_IGN);

	/* 4. Before opening any fd of our own: keep fd 3 for the control socket. Then the sync
	 *    requests' pipe moves off fd 0, which the runtime and init inherit (sync.c). */
	hold_ctl_fd();
	take_sync_fd();

	/* 5. Everything that can fail on bad input or a missing kernel feature, before the runtime
	 *    starts: a cell must never run without its agent. */
	if (cfg.table && load_table(cfg.table) < 0) {
		emit_error("cannot read syscall table %s: %s", cfg.table, strerror(errno));
		return 1;
	}
	if (notify_init() < 0)
		return 1;

	/* 6. Signals before any child exists, so no SIGCHLD is lost. */
	sigset_t old;
	int sfd = take_signals(&old);
	if (sfd < 0)
		return 1;

	/* 7. The listener must exist before the runtime, which connects to it while it starts. */
	if (open_listener(cfg.listener) < 0)
		return 1;

	/* 8. The runtime, with the signal mask it would have had without us. */
	if (start_runtime(cfg.runtime_argv, &old) < 0)
		cleanup_and_exit(1);

	/* 9. Only the supervisor and the cell's init may hold the control socket: the runtime has
	 *    its copy now, so ours goes. */
	close(NC_CTL_FD);

	serve(sfd);
}
