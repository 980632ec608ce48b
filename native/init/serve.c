/*
 * The poll loop: one thread, non-blocking fds, bounded buffers. Command pipes are read only
 * while the control channel's backlog is small, and fd 3 only while no command's stdin backlog
 * is large, so a slow supervisor or a slow command stalls pipes instead of growing init's memory.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "init.h"

int sig_fd = -1;

enum { P_CTL, P_SIG, P_OUT, P_ERR, P_IN, P_LISTEN, P_CONN_A, P_CONN_B };
struct slot {
	int kind;
	void *ptr;
};

static struct pollfd *pfds;
static struct slot *slots;
static size_t nslots, slots_cap;

static void add_poll(int fd, short events, int kind, void *ptr)
{
	if (nslots == slots_cap) {
		slots_cap = slots_cap ? slots_cap * 2 : 64;
		pfds = realloc(pfds, slots_cap * sizeof(*pfds));
		slots = realloc(slots, slots_cap * sizeof(*slots));
		if (!pfds || !slots)
			_exit(125);
	}
	pfds[nslots] = (struct pollfd){ .fd = fd, .events = events };
	slots[nslots] = (struct slot){ .kind = kind, .ptr = ptr };
	nslots++;
}

static void handle_signals(void)
{
	struct signalfd_siginfo si;
	while (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		/*
		 * Only a sender outside the cell's pid namespace (the host: runc kill) shows up with
		 * pid 0. A task must not be able to end its own cell (and cut its audit short) by
		 * signalling pid 1, so signals from inside are ignored like the kernel ignores
		 * SIGKILL/SIGSTOP from inside.
		 */
		if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && si.ssi_pid == 0)
			shutdown_cell(0);
	}
	reap_children();
}

static void add_conn_polls(struct conn *c)
{
	short ae = 0, be = 0;
	if (half_wants_read(&c->ab))
		ae |= POLLIN;
	if (half_wants_read(&c->ba))
		be |= POLLIN;
	if (c->ab.len)
		be |= POLLOUT;
	if (c->ba.len)
		ae |= POLLOUT;
	add_poll(c->a, ae, P_CONN_A, c);
	add_poll(c->b, be, P_CONN_B, c);
}

/* Fills the poll set; returns whether a reaped command's pipes still wait to be drained. */
static int build_poll_set(void)
{
	nslots = 0;
	int room = ctl_out.len < CTL_OUT_SOFT_LIMIT;
	int draining = 0;
	short ctl_events =
		(short)((stdin_backlog_high() ? 0 : POLLIN) | (ctl_out.len ? POLLOUT : 0));
	add_poll(NC_CTL_FD, ctl_events, P_CTL, NULL);
	add_poll(sig_fd, POLLIN, P_SIG, NULL);
	/* Without room a pipe is left out of the set, not polled for nothing: poll reports a
	 * hang-up whatever the events asked, so an exited command's pipes would spin the loop
	 * until the supervisor drained fd 3. */
	for (struct exec *e = execs; e; e = e->next) {
		if (e->out_fd >= 0 && room)
			add_poll(e->out_fd, POLLIN, P_OUT, e);
		if (e->err_fd >= 0 && room)
			add_poll(e->err_fd, POLLIN, P_ERR, e);
		if (e->in_fd >= 0 && e->in.len)
			add_poll(e->in_fd, POLLOUT, P_IN, e);
		if (e->reaped && room)
			draining = 1;
	}
	for (int i = 0; i < nbridges; i++)
		add_poll(bridges[i].fd, POLLIN, P_LISTEN, &bridges[i]);
	for (struct conn *c = conns; c; c = c->next)
		add_conn_polls(c);
	return draining;
}

static int conn_live(const struct conn *c)
{
	for (struct conn *live = conns; live; live = live->next)
		if (live == c)
			return 1;
	return 0;
}

static int exec_live(const struct exec *e)
{
	for (struct exec *live = execs; live; live = live->next)
		if (live == e)
			return 1;
	return 0;
}

static void handle_exec_slot(const struct slot *sl, const struct pollfd *ev, short re)
{
	struct exec *e = sl->ptr;
	if (!exec_live(e))
		return;
	if (sl->kind == P_IN) {
		if (re && e->in_fd == ev->fd)
			flush_stdin(e);
		return;
	}
	int which = sl->kind == P_ERR;
	if ((which ? e->err_fd : e->out_fd) != ev->fd)
		return;
	if ((re || e->reaped) && ctl_out.len < CTL_OUT_SOFT_LIMIT)
		pump_pipe(e, which);
}

/* Objects may be freed while handling; each slot's object is looked up again in the live lists,
 * and a slot whose fd number now belongs to something else is skipped. */
static void handle_slot(const struct slot *sl, const struct pollfd *ev, short re)
{
	switch (sl->kind) {
	case P_CONN_A:
	case P_CONN_B: {
		struct conn *c = sl->ptr;
		int is_a = sl->kind == P_CONN_A;
		if (re && conn_live(c) && (is_a ? c->a : c->b) == ev->fd)
			service_conn(c, is_a ? re : 0, is_a ? 0 : re);
		break;
	}
	case P_OUT:
	case P_ERR:
	case P_IN:
		handle_exec_slot(sl, ev, re);
		break;
	case P_CTL:
		if (re & POLLOUT)
			write_ctl();
		if (re & (POLLIN | POLLHUP | POLLERR))
			read_ctl();
		break;
	case P_SIG:
		if (re)
			handle_signals();
		break;
	case P_LISTEN:
		if (re)
			accept_bridge(sl->ptr);
		break;
	}
}

void serve(void)
{
	for (;;) {
		int draining = build_poll_set();
		int n = poll(pfds, nslots, draining ? 0 : -1);
		if (n < 0 && errno != EINTR)
			fatal("poll: %s", strerror(errno));
		/* Handle this round's events from a snapshot of the set they were polled with. */
		size_t count = nslots;
		struct pollfd *ev = malloc(count * sizeof(*ev));
		struct slot *sl = malloc(count * sizeof(*sl));
		if (!ev || !sl)
			_exit(125);
		memcpy(ev, pfds, count * sizeof(*ev));
		memcpy(sl, slots, count * sizeof(*sl));
		for (size_t i = 0; i < count; i++)
			handle_slot(&sl[i], &ev[i], n > 0 ? ev[i].revents : 0);
		free(ev);
		free(sl);
		write_ctl();
	}
}
