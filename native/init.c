/*
 * nanocell-init: pid 1 of a cell.
 *
 * Runs as the unprivileged cell user with no capabilities and no_new_privs set by the runtime.
 * It serves the "Init control protocol" of docs/architecture.md over fd 3: starts commands,
 * streams their output, reports exit statuses, bridges 127.0.0.1 ports to unix sockets, and
 * applies Landlock to itself (and so to every command) before saying ready.
 *
 * One thread, one poll() loop, non-blocking fds, bounded buffers: a slow supervisor stalls the
 * pipes of the commands instead of growing init's memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

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
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
#endif

/* The full ruleset struct of ABI 6; older kernels accept it as long as unknown tails are zero. */
struct nc_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

#define CTL_FD 3
#define MAX_FRAME_PAYLOAD (8u << 20)
#define CTL_OUT_SOFT_LIMIT (256u << 10) /* stop reading command pipes above this */
#define PIPE_CHUNK (64u << 10)
#define STDIN_PAUSE_LIMIT (4u << 20)  /* stop reading fd 3 while a command's stdin backlog is this big */
#define DRAIN_BUDGET (1u << 20)       /* bytes read from a pipe after its command was reaped */
#define RELAY_BUF (256u << 10)  /* per direction, only when no pipe could be made */
#define RELAY_PIPE_BULK (1u << 20) /* pipe size once a direction has carried RELAY_BULK_AFTER bytes */
#define RELAY_BULK_AFTER (256u << 10)
#define RELAY_ROUNDS 8           /* read/write rounds per wake-up, so one busy connection cannot starve the rest */
#define MAX_BRIDGES 16
#define MAX_LL_RULES 256

/* ---------- growable byte buffer with a consumed prefix ---------- */

struct buf {
	char *data;
	size_t start, len, cap;
};

static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->start + b->len + extra <= b->cap)
		return;
	if (b->start > 0) {
		memmove(b->data, b->data + b->start, b->len);
		b->start = 0;
	}
	if (b->len + extra <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + extra)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p) {
		/* Out of memory in pid 1: nothing sensible remains; the cell dies with us. */
		_exit(125);
	}
	b->data = p;
	b->cap = cap;
}

static void buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->start + b->len, p, n);
	b->len += n;
}

static void buf_consume(struct buf *b, size_t n)
{
	b->start += n;
	b->len -= n;
	if (b->len == 0)
		b->start = 0;
}

static void buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* ---------- state ---------- */

struct exec {
	uint32_t id;
	pid_t pid;
	int in_fd, out_fd, err_fd;
	struct buf in;
	int in_eof_requested;
	int reaped;
	int status;
	size_t drain_left[2];
	struct exec *next;
};

struct bridge {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	unsigned port;
};

/* One direction of a relayed connection. Bytes go through a pipe with splice(), so they are
 * never copied through init's memory; if no pipe could be made (fd limit), through a buffer. */
struct half {
	int pipe[2];   /* -1 when copying through buf */
	size_t moved;  /* bytes carried so far (until the pipe is grown) */
	int grown;     /* the pipe was enlarged for bulk transfer (or that failed) */
	char *buf;     /* RELAY_BUF bytes, copy mode only */
	size_t off;    /* copy mode: start of the unwritten bytes in buf */
	size_t len;    /* bytes read and not yet written (in the pipe or in buf) */
	int eof, wshut;
};

/* One relayed TCP connection: a = accepted TCP socket, b = unix socket to the supervisor. */
struct conn {
	int a, b;
	struct half ab, ba;
	struct conn *next;
};

static struct buf ctl_out, ctl_in;
static int ctl_open = 1;
static struct exec *execs;
static struct bridge bridges[MAX_BRIDGES];
static int nbridges;
static struct conn *conns;
static int sig_fd = -1;
static int is_pid1;

/* ---------- control channel output ---------- */

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = (v >> 24) & 0xff;
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void send_frame(char type, uint32_t id, const void *payload, size_t len)
{
	if (!ctl_open)
		return;
	unsigned char hdr[9];
	hdr[0] = (unsigned char)type;
	put_u32(hdr + 1, id);
	put_u32(hdr + 5, (uint32_t)len);
	buf_append(&ctl_out, hdr, sizeof(hdr));
	if (len)
		buf_append(&ctl_out, payload, len);
}

static void send_u32(char type, uint32_t id, uint32_t v)
{
	unsigned char p[4];
	put_u32(p, v);
	send_frame(type, id, p, 4);
}

static void send_text(char type, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	send_frame(type, 0, line, (size_t)n);
}

/* Before the loop runs, fd 3 is blocking: write everything now. */
static void flush_blocking(void)
{
	while (ctl_open && ctl_out.len) {
		ssize_t n = write(CTL_FD, ctl_out.data + ctl_out.start, ctl_out.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = CTL_FD, .events = POLLOUT};
			poll(&p, 1, 1000);
			continue;
		}
		if (n <= 0)
			return;
		buf_consume(&ctl_out, (size_t)n);
	}
}

static int have_ctl_fd = 1;

static void __attribute__((noreturn, format(printf, 1, 2))) fatal(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (have_ctl_fd) {
		send_frame('Z', 0, line, strlen(line));
		flush_blocking();
	}
	fprintf(stderr, "nanocell-init: %s\n", line);
	_exit(125);
}

/* ---------- cell shutdown ---------- */

static int read_children(pid_t *out, int max)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char text[8192];
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return -1;
	text[n] = 0;
	int count = 0;
	char *p = text;
	while (*p && count < max) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		out[count++] = (pid_t)v;
		p = end;
	}
	return count;
}

/* Kill every process in the cell and reap it. As pid 1 of the pid namespace kill(-1) reaches all
 * of them. Outside a pid namespace (tests, --probe) kill(-1) would hit the whole host, so init is
 * a child subreaper there and kills its descendants one generation at a time instead. */
static void __attribute__((noreturn)) shutdown_cell(int code)
{
	if (is_pid1) {
		for (;;) {
			kill(-1, SIGKILL);
			if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
				break;
		}
	} else {
		for (struct exec *e = execs; e; e = e->next)
			if (!e->reaped)
				kill(-e->pid, SIGKILL);
		for (;;) {
			pid_t kids[512];
			int n = read_children(kids, 512);
			for (int i = 0; i < n; i++) {
				kill(-kids[i], SIGKILL);
				kill(kids[i], SIGKILL);
			}
			pid_t r = waitpid(-1, NULL, n > 0 ? 0 : WNOHANG);
			if (r < 0 && errno == ECHILD)
				break;
			if (r == 0 && n <= 0)
				break;
		}
	}
	_exit(code);
}

/* ---------- commands ---------- */

static struct exec *find_exec(uint32_t id)
{
	for (struct exec *e = execs; e; e = e->next)
		if (e->id == id)
			return e;
	return NULL;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
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
		send_u32('X', e->id, (uint32_t)e->status);
		free_exec(e);
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void __attribute__((noreturn)) child_fail(int report_fd, int err)
{
	ssize_t ignored = write(report_fd, &err, sizeof(err));
	(void)ignored;
	_exit(127);
}

/* execvpe with the PATH of the request's environment, not init's. */
static void child_exec(int report_fd, char **argv, char **envp)
{
	const char *file = argv[0];
	if (strchr(file, '/')) {
		execve(file, argv, envp);
		child_fail(report_fd, errno);
	}
	const char *path = "/usr/local/bin:/usr/bin:/bin";
	for (char **e = envp; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	int saw_eacces = 0, last = ENOENT;
	size_t flen = strlen(file);
	for (const char *p = path;; p++) {
		const char *end = strchr(p, ':');
		if (!end)
			end = p + strlen(p);
		size_t dlen = (size_t)(end - p);
		char full[PATH_MAX];
		if (dlen + flen + 2 <= sizeof(full)) {
			if (dlen == 0) {
				memcpy(full, file, flen + 1); /* empty entry = current directory */
			} else {
				memcpy(full, p, dlen);
				full[dlen] = '/';
				memcpy(full + dlen + 1, file, flen + 1);
			}
			execve(full, argv, envp);
			last = errno;
			if (errno == EACCES)
				saw_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV &&
				 errno != ETIMEDOUT)
				child_fail(report_fd, errno);
		}
		if (!*end)
			break;
		p = end;
	}
	child_fail(report_fd, saw_eacces ? EACCES : last);
}

/* E payload: argc:u32 envc:u32 cwd\0 argv[i]\0... env[j]\0... */
static void start_exec(uint32_t id, const unsigned char *payload, uint32_t len)
{
	if (id == 0 || find_exec(id)) {
		send_u32('F', id, id == 0 ? EINVAL : EEXIST);
		return;
	}
	if (len < 8) {
		send_u32('F', id, EINVAL);
		return;
	}
	uint32_t argc = get_u32(payload), envc = get_u32(payload + 4);
	if (argc == 0 || argc > len || envc > len) {
		send_u32('F', id, EINVAL);
		return;
	}
	char *copy = malloc(len - 8 + 1);
	char **argv = calloc(argc + 1, sizeof(char *));
	char **envp = calloc(envc + 1, sizeof(char *));
	if (!copy || !argv || !envp)
		_exit(125);
	memcpy(copy, payload + 8, len - 8);
	copy[len - 8] = 0;
	char *p = copy, *end = copy + (len - 8);
	char *cwd = NULL;
	uint32_t total = 1 + argc + envc, i;
	for (i = 0; i < total && p < end; i++) {
		char *nul = memchr(p, 0, (size_t)(end - p));
		if (!nul)
			break;
		if (i == 0)
			cwd = p;
		else if (i <= argc)
			argv[i - 1] = p;
		else
			envp[i - 1 - argc] = p;
		p = nul + 1;
	}
	int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, rep[2] = {-1, -1};
	int err = 0;
	if (i != total || p != end)
		err = EINVAL;
	else if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) ||
		 pipe2(rep, O_CLOEXEC))
		err = errno;
	pid_t pid = -1;
	if (!err) {
		pid = fork();
		if (pid < 0)
			err = errno;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		if (dup2(in_pipe[0], 0) < 0 || dup2(out_pipe[1], 1) < 0 || dup2(err_pipe[1], 2) < 0)
			child_fail(rep[1], errno);
		if (chdir(cwd) < 0)
			child_fail(rep[1], errno);
		child_exec(rep[1], argv, envp);
	}
	int fds[] = {in_pipe[0], out_pipe[1], err_pipe[1], rep[1]};
	for (unsigned k = 0; k < 4; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	if (!err) {
		int child_err = 0;
		ssize_t n;
		do
			n = read(rep[0], &child_err, sizeof(child_err));
		while (n < 0 && errno == EINTR);
		if (n == (ssize_t)sizeof(child_err))
			err = child_err ? child_err : EINVAL;
		/* A failed child exits 127 and is reaped as an unknown pid. */
	}
	if (rep[0] >= 0)
		close(rep[0]);
	free(copy);
	free(argv);
	free(envp);
	if (err) {
		int left[] = {in_pipe[1], out_pipe[0], err_pipe[0]};
		for (unsigned k = 0; k < 3; k++)
			if (left[k] >= 0)
				close(left[k]);
		send_u32('F', id, (uint32_t)err);
		return;
	}
	struct exec *e = calloc(1, sizeof(*e));
	if (!e)
		_exit(125);
	e->id = id;
	e->pid = pid;
	e->in_fd = in_pipe[1];
	e->out_fd = out_pipe[0];
	e->err_fd = err_pipe[0];
	e->drain_left[0] = e->drain_left[1] = DRAIN_BUDGET;
	set_nonblock(e->in_fd);
	set_nonblock(e->out_fd);
	set_nonblock(e->err_fd);
	e->next = execs;
	execs = e;
	send_u32('S', id, (uint32_t)pid);
}

static void flush_stdin(struct exec *e)
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
static void pump_pipe(struct exec *e, int which)
{
	int *fd = which ? &e->err_fd : &e->out_fd;
	char type = which ? 'e' : 'O';
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

static void reap_children(void)
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

/* ---------- control channel input ---------- */

static void handle_frame(char type, uint32_t id, const unsigned char *payload, uint32_t len)
{
	struct exec *e;
	switch (type) {
	case 'E':
		start_exec(id, payload, len);
		break;
	case 'I':
		e = find_exec(id);
		if (!e || e->in_fd < 0 || e->in_eof_requested)
			break;
		if (len == 0)
			e->in_eof_requested = 1;
		else
			buf_append(&e->in, payload, len);
		flush_stdin(e);
		break;
	case 'K':
		e = find_exec(id);
		if (e && len == 4) {
			int sig = (int)get_u32(payload);
			if (kill(-e->pid, sig) < 0 && !e->reaped)
				kill(e->pid, sig);
		}
		break;
	case 'Q':
		shutdown_cell(0);
		break;
	default:
		send_text('L', "unknown frame type 0x%02x ignored", (unsigned char)type);
	}
}

static void read_ctl(void)
{
	buf_reserve(&ctl_in, PIPE_CHUNK);
	ssize_t n = read(CTL_FD, ctl_in.data + ctl_in.start + ctl_in.len, PIPE_CHUNK);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0)
		shutdown_cell(0); /* the supervisor is gone: the cell dies with it */
	ctl_in.len += (size_t)n;
	while (ctl_in.len >= 9) {
		const unsigned char *h = (const unsigned char *)ctl_in.data + ctl_in.start;
		uint32_t len = get_u32(h + 5);
		if (len > MAX_FRAME_PAYLOAD) {
			send_text('Z', "protocol error: frame of %u bytes", len);
			flush_blocking();
			shutdown_cell(125);
		}
		if (ctl_in.len < 9 + (size_t)len) {
			buf_reserve(&ctl_in, 9 + (size_t)len - ctl_in.len);
			return;
		}
		handle_frame((char)h[0], get_u32(h + 1), h + 9, len);
		buf_consume(&ctl_in, 9 + (size_t)len);
	}
}

static void write_ctl(void)
{
	while (ctl_out.len) {
		ssize_t n = write(CTL_FD, ctl_out.data + ctl_out.start, ctl_out.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0)
			shutdown_cell(0);
		buf_consume(&ctl_out, (size_t)n);
	}
}

/* ---------- bridges ---------- */

static void parse_bridge(const char *spec)
{
	if (nbridges >= MAX_BRIDGES)
		fatal("too many --bridge arguments (max %d)", MAX_BRIDGES);
	const char *prefix = "127.0.0.1:";
	const char *eq = strchr(spec, '=');
	if (strncmp(spec, prefix, strlen(prefix)) != 0 || !eq)
		fatal("bad --bridge '%s' (want 127.0.0.1:PORT=/abs/path.sock)", spec);
	char *endp;
	long port = strtol(spec + strlen(prefix), &endp, 10);
	const char *path = eq + 1;
	if (endp != eq || port <= 0 || port > 65535 || path[0] != '/' ||
	    strlen(path) >= sizeof(bridges[0].path))
		fatal("bad --bridge '%s' (want 127.0.0.1:PORT=/abs/path.sock)", spec);
	struct bridge *b = &bridges[nbridges++];
	b->port = (unsigned)port;
	b->fd = -1;
	strcpy(b->path, path);
}

static void listen_bridges(void)
{
	for (int i = 0; i < nbridges; i++) {
		struct bridge *b = &bridges[i];
		b->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (b->fd < 0)
			fatal("bridge 127.0.0.1:%u: socket: %s", b->port, strerror(errno));
		int one = 1;
		setsockopt(b->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b->port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(b->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(b->fd, 128) < 0)
			fatal("bridge 127.0.0.1:%u: %s", b->port, strerror(errno));
	}
}

static int half_init(struct half *h)
{
	memset(h, 0, sizeof(*h));
	if (pipe2(h->pipe, O_CLOEXEC | O_NONBLOCK) == 0)
		return 0;
	h->pipe[0] = h->pipe[1] = -1;
	h->buf = malloc(RELAY_BUF);
	return h->buf ? 0 : -1;
}

static void half_free(struct half *h)
{
	if (h->pipe[0] >= 0) {
		close(h->pipe[0]);
		close(h->pipe[1]);
	}
	free(h->buf);
}

/* Read from a socket into the half. Returns bytes read, 0 at EOF, -1 with errno. */
static ssize_t half_fill(int from, struct half *h)
{
	if (h->pipe[0] >= 0) {
		/* A bulk transfer gets a larger pipe: each wake-up of init then moves up to 1 MiB
		 * instead of 64 KiB. Only then, so that many small connections do not use up the
		 * user's pipe memory (pipe-user-pages-soft); if enlarging fails, 64 KiB still work. */
		if (!h->grown && h->moved >= RELAY_BULK_AFTER) {
			h->grown = 1;
			fcntl(h->pipe[1], F_SETPIPE_SZ, (int)RELAY_PIPE_BULK);
		}
		/* The pipe is empty here (see half_wants_read), so its whole capacity is free; splice
		 * stops when the pipe is full. */
		ssize_t n = splice(from, NULL, h->pipe[1], NULL, RELAY_PIPE_BULK,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0 && !h->grown)
			h->moved += (size_t)n;
		if (n >= 0 || (errno != EINVAL && errno != ENOSYS && errno != EPERM))
			return n;
		/* splice is not available for this socket: copy instead, from now on. */
		close(h->pipe[0]);
		close(h->pipe[1]);
		h->pipe[0] = h->pipe[1] = -1;
		if (!(h->buf = malloc(RELAY_BUF)))
			return -1;
	}
	return read(from, h->buf + h->off + h->len, RELAY_BUF - h->off - h->len);
}

/* Write what the half holds to a socket. Returns -1 on a fatal error; EAGAIN is not one. */
static int half_flush(int to, struct half *h)
{
	while (h->len) {
		ssize_t n = h->pipe[0] >= 0 ? splice(h->pipe[0], NULL, to, NULL, h->len,
						     SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
					    : write(to, h->buf + h->off, h->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -1;
		h->off += h->pipe[0] >= 0 ? 0 : (size_t)n;
		h->len -= (size_t)n;
	}
	if (h->len == 0)
		h->off = 0;
	return 0;
}

/* A pipe is refilled only once empty: its free space in bytes says nothing about its free
 * slots, and polling for input it cannot take would spin. */
static int half_wants_read(const struct half *h)
{
	return !h->eof && (h->pipe[0] >= 0 ? h->len == 0 : h->off + h->len < RELAY_BUF);
}

static void free_conn(struct conn *c)
{
	struct conn **pp = &conns;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	close(c->a);
	if (c->b >= 0)
		close(c->b);
	half_free(&c->ab);
	half_free(&c->ba);
	free(c);
}

static void service_conn(struct conn *c, short a_rev, short b_rev);

static void accept_bridge(struct bridge *br)
{
	for (;;) {
		int a = accept4(br->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (a < 0)
			return;
		int b = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		strcpy(sa.sun_path, br->path);
		/* A unix connect completes at once or fails; it does not wait for the server's accept. */
		if (b < 0 || connect(b, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			send_text('L', "bridge 127.0.0.1:%u: connect %s: %s", br->port, br->path,
				  strerror(errno));
			if (b >= 0)
				close(b);
			close(a);
			continue;
		}
		set_nonblock(b);
		/* Requests and replies are small writes that should leave at once: no Nagle. */
		int one = 1;
		setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = calloc(1, sizeof(*c));
		if (!c || half_init(&c->ab) < 0 || half_init(&c->ba) < 0)
			_exit(125);
		c->a = a;
		c->b = b;
		c->next = conns;
		conns = c;
		/* By the time init gets to the accept, the client has often sent its request: relay it
		 * now rather than after another poll. Under CPU contention every wake-up of init costs
		 * a scheduling delay. */
		service_conn(c, POLLIN, 0);
	}
}

/* Move bytes from `from` to `to` through the half: write what it holds, then read and write
 * again while both sides keep up. Returns -1 on a fatal error of the connection. */
static int relay_half(int from, int to, struct half *h, int readable)
{
	for (int round = 0; round < RELAY_ROUNDS; round++) {
		if (half_flush(to, h) < 0)
			return -1;
		if (!readable || !half_wants_read(h))
			break;
		ssize_t n = half_fill(from, h);
		if (n == 0) {
			h->eof = 1;
		} else if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				return -1;
			break;
		} else {
			h->len += (size_t)n;
		}
	}
	if (h->eof && h->len == 0 && !h->wshut) {
		shutdown(to, SHUT_WR);
		h->wshut = 1;
	}
	return 0;
}

static void service_conn(struct conn *c, short a_rev, short b_rev)
{
	int err = 0;
	if (a_rev & POLLERR || b_rev & POLLERR)
		err = 1;
	if (!err)
		err = relay_half(c->a, c->b, &c->ab, (a_rev & (POLLIN | POLLHUP)) != 0) < 0;
	if (!err)
		err = relay_half(c->b, c->a, &c->ba, (b_rev & (POLLIN | POLLHUP)) != 0) < 0;
	if (err || (c->ab.wshut && c->ba.wshut))
		free_conn(c);
}

/* ---------- Landlock ---------- */

enum ll_kind { LL_READ, LL_EXEC, LL_WRITE };
struct ll_rule {
	enum ll_kind kind;
	const char *path;
};

static long ll_abi(void)
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

static void apply_landlock(long abi, struct ll_rule *rules, int nrules)
{
	if (abi < 1)
		fatal("landlock: not available in this kernel (required by the policy)");
	uint64_t handled = ll_handled_fs(abi);
	struct nc_ruleset_attr attr = {.handled_access_fs = handled};
	if (abi >= 6)
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
	size_t attr_size = abi >= 6 ? sizeof(attr) : abi >= 4 ? 16 : 8;
	int rs = (int)syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0);
	if (rs < 0)
		fatal("landlock: create_ruleset: %s", strerror(errno));
	const uint64_t read = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
	const uint64_t file_rights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
				     LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |
				     LANDLOCK_ACCESS_FS_IOCTL_DEV;
	for (int i = 0; i < nrules; i++) {
		uint64_t access = rules[i].kind == LL_READ   ? read
				  : rules[i].kind == LL_EXEC ? read | LANDLOCK_ACCESS_FS_EXECUTE
							     : handled & ~LANDLOCK_ACCESS_FS_EXECUTE;
		int fd = open(rules[i].path, O_PATH | O_CLOEXEC);
		if (fd < 0)
			fatal("landlock: cannot open %s: %s", rules[i].path, strerror(errno));
		struct stat st;
		if (fstat(fd, &st) < 0)
			fatal("landlock: stat %s: %s", rules[i].path, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			access &= file_rights;
		struct landlock_path_beneath_attr pb = {.allowed_access = access & handled,
							.parent_fd = fd};
		if (syscall(__NR_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
			fatal("landlock: add rule for %s: %s", rules[i].path, strerror(errno));
		close(fd);
	}
	if (syscall(__NR_landlock_restrict_self, rs, 0) < 0)
		fatal("landlock: restrict_self: %s", strerror(errno));
	close(rs);
}

/* ---------- main loop ---------- */

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
	pfds[nslots] = (struct pollfd){.fd = fd, .events = events};
	slots[nslots] = (struct slot){.kind = kind, .ptr = ptr};
	nslots++;
}

static int stdin_backlog_high(void)
{
	for (struct exec *e = execs; e; e = e->next)
		if (e->in.len > STDIN_PAUSE_LIMIT)
			return 1;
	return 0;
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

static void serve(void)
{
	for (;;) {
		nslots = 0;
		int room = ctl_out.len < CTL_OUT_SOFT_LIMIT;
		int draining = 0;
		add_poll(CTL_FD, (short)((stdin_backlog_high() ? 0 : POLLIN) | (ctl_out.len ? POLLOUT : 0)),
			 P_CTL, NULL);
		add_poll(sig_fd, POLLIN, P_SIG, NULL);
		for (struct exec *e = execs; e; e = e->next) {
			if (e->out_fd >= 0)
				add_poll(e->out_fd, room ? POLLIN : 0, P_OUT, e);
			if (e->err_fd >= 0)
				add_poll(e->err_fd, room ? POLLIN : 0, P_ERR, e);
			if (e->in_fd >= 0 && e->in.len)
				add_poll(e->in_fd, POLLOUT, P_IN, e);
			if (e->reaped && room)
				draining = 1;
		}
		for (int i = 0; i < nbridges; i++)
			add_poll(bridges[i].fd, POLLIN, P_LISTEN, &bridges[i]);
		for (struct conn *c = conns; c; c = c->next) {
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
		int n = poll(pfds, nslots, draining ? 0 : -1);
		if (n < 0 && errno != EINTR)
			fatal("poll: %s", strerror(errno));
		/* Objects may be freed while handling; handle one slot at a time and look the object
		 * up again through the live lists. */
		size_t count = nslots;
		struct pollfd *ev = malloc(count * sizeof(*ev));
		struct slot *sl = malloc(count * sizeof(*sl));
		if (!ev || !sl)
			_exit(125);
		memcpy(ev, pfds, count * sizeof(*ev));
		memcpy(sl, slots, count * sizeof(*sl));
		for (size_t i = 0; i < count; i++) {
			short re = n > 0 ? ev[i].revents : 0;
			if (sl[i].kind == P_CONN_A || sl[i].kind == P_CONN_B) {
				if (!re)
					continue;
				struct conn *c = sl[i].ptr, *live;
				for (live = conns; live && live != c; live = live->next)
					;
				if (!live || (sl[i].kind == P_CONN_A ? c->a : c->b) != ev[i].fd)
					continue;
				service_conn(c, sl[i].kind == P_CONN_A ? re : 0, sl[i].kind == P_CONN_B ? re : 0);
				continue;
			}
			if (sl[i].kind == P_OUT || sl[i].kind == P_ERR || sl[i].kind == P_IN) {
				struct exec *e = sl[i].ptr, *live;
				for (live = execs; live && live != e; live = live->next)
					;
				if (!live)
					continue;
				if (sl[i].kind == P_IN) {
					if (re && e->in_fd == ev[i].fd)
						flush_stdin(e);
					continue;
				}
				int which = sl[i].kind == P_ERR;
				int fd = which ? e->err_fd : e->out_fd;
				if (fd != ev[i].fd)
					continue;
				if ((re || e->reaped) && ctl_out.len < CTL_OUT_SOFT_LIMIT)
					pump_pipe(e, which);
				continue;
			}
			if (!re)
				continue;
			if (sl[i].kind == P_CTL) {
				if (re & POLLOUT)
					write_ctl();
				if (re & (POLLIN | POLLHUP | POLLERR))
					read_ctl();
			} else if (sl[i].kind == P_SIG) {
				handle_signals();
			} else if (sl[i].kind == P_LISTEN) {
				accept_bridge(sl[i].ptr);
			}
		}
		free(ev);
		free(sl);
		write_ctl();
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: nanocell-init [--probe] [--landlock required|off] [--ll-read PATH]... "
			"[--ll-exec PATH]... [--ll-write PATH]... [--bridge 127.0.0.1:PORT=/abs.sock]...\n");
	_exit(125);
}

int main(int argc, char **argv)
{
	static struct ll_rule rules[MAX_LL_RULES];
	int nrules = 0, landlock_required = 1;
	int probe = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--probe") == 0) {
			probe = 1;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (strcmp(a, "--landlock") == 0) {
			if (strcmp(v, "required") == 0)
				landlock_required = 1;
			else if (strcmp(v, "off") == 0)
				landlock_required = 0;
			else
				usage();
		} else if (strcmp(a, "--ll-read") == 0 || strcmp(a, "--ll-exec") == 0 ||
			   strcmp(a, "--ll-write") == 0) {
			if (nrules >= MAX_LL_RULES)
				usage();
			rules[nrules].kind = a[5] == 'r' ? LL_READ : a[5] == 'e' ? LL_EXEC : LL_WRITE;
			rules[nrules].path = v;
			nrules++;
		} else if (strcmp(a, "--bridge") == 0) {
			parse_bridge(v);
		} else {
			usage();
		}
	}
	if (probe) {
		printf("landlock_abi=%ld\n", ll_abi());
		return 0;
	}

	/* Same-uid processes in the cell must not read or write init's memory or environment. */
	prctl(PR_SET_DUMPABLE, 0);
	is_pid1 = getpid() == 1;
	if (!is_pid1)
		prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (fcntl(CTL_FD, F_GETFD) < 0) {
		have_ctl_fd = 0;
		fatal("fd 3 (the control channel) is not open");
	}
	/* Nothing init holds may leak into a command. */
	if (syscall(__NR_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 4096; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}

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

	listen_bridges();

	long abi = 0;
	if (landlock_required) {
		abi = ll_abi();
		apply_landlock(abi, rules, nrules);
	}
	char ready[128];
	int rn = snprintf(ready, sizeof(ready), "landlock_abi=%ld\nlandlock=%s\nbridges=%d\n", abi,
			  landlock_required ? "on" : "off", nbridges);
	send_frame('R', 0, ready, (size_t)rn);
	flush_blocking();
	set_nonblock(CTL_FD);
	serve();
	return 0;
}
