/*
 * nanocell-init: pid 1 of a cell.
 *
 * Runs as the unprivileged cell user with no capabilities and no_new_privs set by the runtime.
 * It serves the "Init control protocol" of docs/architecture.md over fd 3 (protocol.h): starts
 * commands (exec.c), streams their output, reports exit statuses, bridges 127.0.0.1 ports to
 * unix sockets (bridge.c, relay.c), and applies Landlock to itself, and so to every command
 * (landlock.c), before saying ready. serve.c is the poll loop; shutdown.c ends the cell. In a
 * Kubernetes pod the channel arrives over a unix socket instead (attach.c).
 *
 * main() parses everything first, then runs the setup steps in the order below; each step's
 * comment says why it sits where it does.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
#endif

#define MAX_LL_RULES 256

struct config {
	int probe;
	const char *control_listen;
	int landlock_required;
	int landlock_deferred;
	struct ll_rule rules[MAX_LL_RULES];
	int nrules;
};

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr, "usage: nanocell-init [--probe] [--control-listen /abs.sock] [--landlock "
			"required|off] [--landlock-deferred] [--ll-read PATH]... [--ll-exec "
			"PATH]... [--ll-write PATH]... "
			"[--bridge 127.0.0.1:PORT=/abs.sock]... [--seccomp-bpf HEX]\n"
			"       nanocell-init --attach /abs.sock\n");
	_exit(125);
}

static void parse_option(struct config *cfg, const char *a, const char *v)
{
	if (strcmp(a, "--landlock") == 0) {
		if (strcmp(v, "required") == 0)
			cfg->landlock_required = 1;
		else if (strcmp(v, "off") == 0)
			cfg->landlock_required = 0;
		else
			usage();
	} else if (strcmp(a, "--ll-read") == 0 || strcmp(a, "--ll-exec") == 0 ||
		   strcmp(a, "--ll-write") == 0) {
		if (cfg->nrules >= MAX_LL_RULES)
			usage();
		struct ll_rule *r = &cfg->rules[cfg->nrules++];
		r->kind = a[5] == 'r' ? LL_READ : a[5] == 'e' ? LL_EXEC : LL_WRITE;
		r->path = v;
	} else if (strcmp(a, "--bridge") == 0) {
		parse_bridge(v);
	} else if (strcmp(a, "--control-listen") == 0) {
		cfg->control_listen = v;
	} else if (strcmp(a, "--seccomp-bpf") == 0) {
		if (parse_seccomp_bpf(v) < 0)
			usage();
	} else {
		usage();
	}
}

static void parse_args(struct config *cfg, int argc, char **argv)
{
	cfg->landlock_required = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--probe") == 0) {
			cfg->probe = 1;
			continue;
		}
		if (strcmp(argv[i], "--landlock-deferred") == 0) {
			cfg->landlock_deferred = 1;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		parse_option(cfg, argv[i], argv[i + 1]);
		i++;
	}
}

/* SIGCHLD, SIGTERM and SIGINT arrive on a signalfd the poll loop reads. */
static void take_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0)
		fatal("signalfd: %s", strerror(errno));
}

static struct config cfg;
int landlock_pending;

/*
 * A warm cell's claim (frames.c, NC_FRAME_LANDLOCK): the workspace is now attached at its
 * path, so the rules open what the task will see. No command has run before this: exec
 * frames are refused while Landlock is pending. A rule that cannot be made ends the cell.
 */
void apply_deferred_landlock(void)
{
	if (!landlock_pending) {
		send_text(NC_FRAME_LOG, "landlock: not deferred; A frame ignored");
		return;
	}
	apply_landlock(ll_abi(), cfg.rules, cfg.nrules);
	landlock_pending = 0;
	send_frame(NC_FRAME_LANDLOCKED, 0, "landlock=on\n", 12);
}

static void say_ready(long abi, int landlock_on)
{
	char ready[128];
	int n = snprintf(ready, sizeof(ready), "landlock_abi=%ld\nlandlock=%s\nbridges=%d\n", abi,
			 landlock_pending ? "deferred"
			 : landlock_on	  ? "on"
					  : "off",
			 nbridges);
	send_frame(NC_FRAME_READY, 0, ready, (size_t)n);
	flush_blocking();
}

int main(int argc, char **argv)
{

	/* 1. Parse and validate every argument before acting: a bad one ends init with nothing
	 *    listening and no command started. */
	if (argc == 3 && strcmp(argv[1], "--attach") == 0)
		run_attach(argv[2]);
	parse_args(&cfg, argc, argv);
	if (cfg.probe) {
		printf("landlock_abi=%ld\n", ll_abi());
		return 0;
	}

	/* 2. First of all, before init holds anything worth reading: same-uid processes in the
	 *    cell must not read or write init's memory or environment. */
	prctl(PR_SET_DUMPABLE, 0);

	/* 3. Outside a pid namespace (tests) init cannot kill(-1), so it becomes the subreaper that
	 *    inherits what its commands leave behind; shutdown_cell() relies on this. */
	is_pid1 = getpid() == 1;
	if (!is_pid1)
		prctl(PR_SET_CHILD_SUBREAPER, 1);

	/* 3b. Hold the listener's fd number before anything below opens an fd. */
	reserve_notify_fd();

	/* 4. The control channel must exist before any error can be reported on it. In a pod
	 *    (--control-listen, attach.c) it arrives later, over a socket bound here, before
	 *    Landlock could refuse making it. */
	if (cfg.control_listen)
		control_listen_prepare(cfg.control_listen);
	else
		require_ctl_fd();

	/* 5. Nothing init inherited or opens from here on may leak into a command: mark every fd
	 *    from 3 up close-on-exec before the first command can start. */
	if (syscall(__NR_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 4096; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}

	/* 6. Signals before any child exists, so no SIGCHLD is lost. */
	take_signals();

	/* 7. Bridges listen before Landlock: binding needs no path access, but a listener that
	 *    cannot be made is a setup error the supervisor must see before ready. */
	listen_bridges();

	/* 8. Landlock last among the setup steps: it restricts init itself, so the steps above
	 *    run unrestricted, and every command, all started after it, inherits the domain. */
	long abi = 0;
	if (cfg.landlock_required) {
		abi = ll_abi();
		/* 8'. A warm pool's cell has no workspace yet, and Landlock's rules must open the
		 *     one the task will see: they are applied on the claim's A frame, before which
		 *     no command starts. landlock_* are allowed by the filter installed below. */
		if (abi < 1)
			apply_landlock(abi, cfg.rules, cfg.nrules); /* fails: not in this kernel */
		if (cfg.landlock_deferred)
			landlock_pending = 1;
		else
			apply_landlock(abi, cfg.rules, cfg.nrules);
	}

	/* 8a. seccomp after Landlock: the filter answers for init too, so landlock_* and every
	 *    setup call above run before it. Before ready: no command starts unfiltered. The
	 *    monitor takes the listener from NC_NOTIFY_FD (seccomp.c). */
	install_seccomp();

	/* 8b. In a pod, the session the supervisor attaches over pods/exec becomes fd 3. */
	if (cfg.control_listen)
		control_listen_accept();

	/* 9. Ready only once every control is in place: the supervisor starts no command before. */
	say_ready(abi, cfg.landlock_required);

	/* 10. From here fd 3 is served by the poll loop, which needs it non-blocking. */
	set_nonblock(NC_CTL_FD);
	serve();
}
