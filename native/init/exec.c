/*
 * Commands: an E frame becomes a child in its own session with three pipes; their output goes
 * out as O/e frames, the reaped status as X after both EOFs, a failure to start as F. A T frame
 * does the same on a pseudo-terminal (tty.c): the slave is the child's controlling terminal and
 * stdio, the master carries stdin and output (as O), and stderr is at EOF from the start.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "init.h"

struct exec *execs;

/* A parsed E payload: argc:u32 envc:u32 cwd\0 argv[i]\0... env[j]\0... */
struct exec_request {
	char *strings; /* one allocation holding every string below */
	char *cwd;
	char **argv, **envp;
};

struct exec_pipes {
	int in[2], out[2], err[2], report[2];
	int tty;
};

struct exec *find_exec(uint32_t id)
{
	for (struct exec *e = execs; e; e = e->next)
		if (e->id == id)
			return e;
	return NULL;
}

static void free_exec(struct exec *e)
{
	struct exec **pp = &execs;
	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp)
		*pp = e->next;
	close_fd(&e->in_fd);
	close_fd(&e->out_fd);
	close_fd(&e->err_fd);
	buf_free(&e->in);
	free(e);
}

static void maybe_finish(struct exec *e)
{
	if (e->reaped && e->out_fd < 0 && e->err_fd < 0) {
		send_u32(NC_FRAME_EXITED, e->id, (uint32_t)e->status);
		free_exec(e);
	}
}

static void free_request(struct exec_request *r)
{
	free(r->strings);
	free(r->argv);
	free(r->envp);
}

/* Returns 0 or an errno. Every string must be NUL-terminated and the payload hold no more. */
static int parse_request(const unsigned char *payload, uint32_t len, struct exec_request *r)
{
	memset(r, 0, sizeof(*r));
	if (len < NC_EXEC_HEADER_BYTES)
		return EINVAL;
	uint32_t argc = get_u32(payload), envc = get_u32(payload + 4);
	if (argc == 0 || argc > len || envc > len)
		return EINVAL;
	size_t n = len - NC_EXEC_HEADER_BYTES;
	r->strings = malloc(n + 1);
	r->argv = calloc(argc + 1, sizeof(char *));
	r->envp = calloc(envc + 1, sizeof(char *));
	if (!r->strings || !r->argv || !r->envp)
		_exit(125);
	memcpy(r->strings, payload + NC_EXEC_HEADER_BYTES, n);
	r->strings[n] = 0;
	char *p = r->strings, *end = r->strings + n;
	uint32_t total = 1 + argc + envc, i;
	for (i = 0; i < total && p < end; i++) {
		char *nul = memchr(p, 0, (size_t)(end - p));
		if (!nul)
			break;
		if (i == 0)
			r->cwd = p;
		else if (i <= argc)
			r->argv[i - 1] = p;
		else
			r->envp[i - 1 - argc] = p;
		p = nul + 1;
	}
	return i == total && p == end ? 0 : EINVAL;
}

/* The pty as the three pipes: the child's ends are the slave, init's ends the master. */
static int open_tty_pipes(struct exec_pipes *pp, const struct winsize *ws)
{
	int master, slave;
	int err = open_pty(ws, &master, &slave);
	if (err)
		return err;
	pp->tty = 1;
	pp->out[0] = master;
	pp->in[0] = slave;
	pp->in[1] = fcntl(master, F_DUPFD_CLOEXEC, 0);
	pp->out[1] = fcntl(slave, F_DUPFD_CLOEXEC, 0);
	pp->err[1] = fcntl(slave, F_DUPFD_CLOEXEC, 0);
	if (pp->in[1] < 0 || pp->out[1] < 0 || pp->err[1] < 0 || pipe2(pp->report, O_CLOEXEC))
		return errno;
	return 0;
}

static int open_pipes(struct exec_pipes *pp)
{
	if (pipe2(pp->in, O_CLOEXEC) || pipe2(pp->out, O_CLOEXEC) || pipe2(pp->err, O_CLOEXEC) ||
	    pipe2(pp->report, O_CLOEXEC))
		return errno;
	return 0;
}

static void close_pipe(int p[2])
{
	close_fd(&p[0]);
	close_fd(&p[1]);
}

static void close_pipes(struct exec_pipes *pp)
{
	close_pipe(pp->in);
	close_pipe(pp->out);
	close_pipe(pp->err);
	close_pipe(pp->report);
}

/* In the child: its own session, default signals, the pipes as stdio, then the command. */
static void __attribute__((noreturn)) run_child(struct exec_pipes *pp, struct exec_request *r)
{
	sigset_t none;
	sigemptyset(&none);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	if (dup2(pp->in[0], 0) < 0 || dup2(pp->out[1], 1) < 0 || dup2(pp->err[1], 2) < 0)
		child_fail(pp->report[1], errno);
	/* The new session's controlling terminal; its foreground group gets ^C as SIGINT. */
	if (pp->tty && ioctl(0, TIOCSCTTY, 0) < 0)
		child_fail(pp->report[1], errno);
	if (chdir(r->cwd) < 0)
		child_fail(pp->report[1], errno);
	child_exec(pp->report[1], r->argv, r->envp);
}

/* Forks the command; returns 0 with *pid set once it has exec'd, or an errno. */
static int spawn(struct exec_pipes *pp, struct exec_request *r, pid_t *pid)
{
	*pid = fork();
	if (*pid < 0)
		return errno;
	if (*pid == 0)
		run_child(pp, r);
	close_fd(&pp->in[0]);
	close_fd(&pp->out[1]);
	close_fd(&pp->err[1]);
	close_fd(&pp->report[1]);
	int child_err = 0, err = 0;
	ssize_t n;
	do
		n = read(pp->report[0], &child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(child_err))
		err = child_err ? child_err : EINVAL;
	/* A failed child exits 127 and is reaped as an unknown pid. */
	return err;
}

static void add_exec(uint32_t id, pid_t pid, struct exec_pipes *pp)
{
	struct exec *e = calloc(1, sizeof(*e));
	if (!e)
		_exit(125);
	e->id = id;
	e->pid = pid;
	e->in_fd = pp->in[1];
	e->out_fd = pp->out[0];
	e->err_fd = pp->err[0];
	e->tty = pp->tty;
	e->drain_left[0] = e->drain_left[1] = DRAIN_BUDGET;
	set_nonblock(e->in_fd);
	set_nonblock(e->out_fd);
	if (e->err_fd >= 0)
		set_nonblock(e->err_fd);
	e->next = execs;
	execs = e;
	send_u32(NC_FRAME_STARTED, id, (uint32_t)pid);
	if (e->tty)
		send_frame(NC_FRAME_STDERR, id, NULL, 0);
}

static void start(uint32_t id, const unsigned char *payload, uint32_t len, const struct winsize *ws)
{
	if (id == 0 || find_exec(id)) {
		send_u32(NC_FRAME_FAILED, id, id == 0 ? EINVAL : EEXIST);
		return;
	}
	struct exec_request r;
	struct exec_pipes pp = { { -1, -1 }, { -1, -1 }, { -1, -1 }, { -1, -1 }, 0 };
	pid_t pid = -1;
	int err = parse_request(payload, len, &r);
	if (!err)
		err = ws ? open_tty_pipes(&pp, ws) : open_pipes(&pp);
	if (!err)
		err = spawn(&pp, &r, &pid);
	free_request(&r);
	if (err) {
		close_pipes(&pp);
		send_u32(NC_FRAME_FAILED, id, (uint32_t)err);
		return;
	}
	close_fd(&pp.report[0]);
	add_exec(id, pid, &pp);
}

void start_exec(uint32_t id, const unsigned char *payload, uint32_t len)
{
	start(id, payload, len, NULL);
}

void start_exec_tty(uint32_t id, const unsigned char *payload, uint32_t len)
{
	struct winsize ws;
	if (parse_winsize(payload, len, &ws)) {
		send_u32(NC_FRAME_FAILED, id, EINVAL);
		return;
	}
	start(id, payload + NC_TTY_HEADER_BYTES, len - NC_TTY_HEADER_BYTES, &ws);
}

/* TIOCSWINSZ on the master also sends SIGWINCH to the terminal's foreground group. */
void resize_exec(uint32_t id, const unsigned char *payload, uint32_t len)
{
	struct exec *e = find_exec(id);
	struct winsize ws;
	if (!e || !e->tty || e->out_fd < 0 || parse_winsize(payload, len, &ws))
		return;
	if (ioctl(e->out_fd, TIOCSWINSZ, &ws) < 0)
		send_text(NC_FRAME_LOG, "exec %u: resize: %s", id, strerror(errno));
}

void stdin_data(uint32_t id, const unsigned char *payload, uint32_t len)
{
	struct exec *e = find_exec(id);
	if (!e || e->in_fd < 0 || e->in_eof_requested)
		return;
	if (len == 0)
		e->in_eof_requested = 1;
	else
		buf_append(&e->in, payload, len);
	flush_stdin(e);
}

void signal_exec(uint32_t id, const unsigned char *payload, uint32_t len)
{
	struct exec *e = find_exec(id);
	if (!e || len != 4)
		return;
	int sig = (int)get_u32(payload);
	if (kill(-e->pid, sig) < 0 && !e->reaped)
		kill(e->pid, sig);
}

void flush_stdin(struct exec *e)
{
	while (e->in_fd >= 0 && e->in.len) {
		ssize_t n = write(e->in_fd, e->in.data + e->in.start, e->in.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* The command closed its stdin: drop what it will never read. */
			buf_free(&e->in);
			close_fd(&e->in_fd);
			return;
		}
		buf_consume(&e->in, (size_t)n);
	}
	if (e->in.len == 0 && e->in_eof_requested)
		close_fd(&e->in_fd);
}

/* Read one chunk of a command's stdout (which=0) or stderr (which=1). */
void pump_pipe(struct exec *e, int which)
{
	int *fd = which ? &e->err_fd : &e->out_fd;
	char type = which ? NC_FRAME_STDERR : NC_FRAME_STDOUT;
	static char chunk[PIPE_CHUNK];
	if (*fd < 0)
		return;
	size_t want = sizeof(chunk);
	if (e->reaped && e->drain_left[which] < want)
		want = e->drain_left[which];
	ssize_t n = want ? read(*fd, chunk, want) : 0;
	if (n < 0 && errno == EINTR)
		return;
	if (n < 0 && errno == EAGAIN && !e->reaped)
		return;
	if (n > 0) {
		send_frame(type, e->id, chunk, (size_t)n);
		if (e->reaped)
			e->drain_left[which] -= (size_t)n;
		return;
	}
	/* EOF, an error, or the command is gone and only a background process keeps the pipe open. */
	close_fd(fd);
	send_frame(type, e->id, NULL, 0);
	maybe_finish(e);
}

void reap_children(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		for (struct exec *e = execs; e; e = e->next) {
			if (e->pid == pid && !e->reaped) {
				e->reaped = 1;
				e->status = status;
				maybe_finish(e);
				break;
			}
		}
	}
}

int stdin_backlog_high(void)
{
	for (struct exec *e = execs; e; e = e->next)
		if (e->in.len > STDIN_PAUSE_LIMIT)
			return 1;
	return 0;
}
