/*
 * nanocell-forkserver
 *
 * Starts the supervisor's helper programs (mount, nanocell-idmap, runc delete, ...) for it.
 * Node forks its whole process for every child it spawns, and the fork copies the page tables
 * of everything the supervisor has touched: at 150 MB of RSS each spawn stops the event loop
 * for 4 to 5 ms, every cell's start and end take several, and a server's other cells wait.
 * This process is a few hundred KB, so its fork costs microseconds, and the supervisor only
 * writes one line per child. src/util/forkServer.ts is the other side.
 *
 * Started by the supervisor with Node's IPC channel (NODE_CHANNEL_FD) and nothing else. On it:
 *   - in: Node's JSON lines. A request is a JSON string, the base64 of NUL-terminated fields:
 *     id, cwd ("" keeps ours), one letter per child fd from 0 ('p' a socket whose other end
 *     comes back, 'n' /dev/null, 'i' the child's own IPC channel, see below), the program's
 *     path, argc, the args, envc, the env entries. Objects (Node's own
 *     NODE_HANDLE_ACK) are ignored.
 *   - out: per 'p' fd, a NODE_HANDLE message (a net.Socket) {"fs":"fd","id":N,"fd":I}; then
 *     {"fs":"spawned","id":N,"pid":P} or {"fs":"error","id":N,"errno":E}; once reaped,
 *     {"fs":"exit","id":N,"status":S} (a wait status).
 * A child's 'i' fd is a seqpacket socket this process reads: each NODE_HANDLE message the child
 * sends there (one fd with each, as Node's own channel takes them) is relayed on ours with
 * "fsid":N added to its msg, so the supervisor knows whose it is. That is how the cell's
 * monitor hands over the sockets it made in the cell (native/monitor/proxyport.c).
 * It dies with the supervisor (PDEATHSIG); its children are left to end on their own, as a
 * child of a dead Node process would be (the monitor's own PDEATHSIG then ends its cell).
 */
#include "forkserver.h"

int channel = -1;
pid_t supervisor;
static sigset_t child_mask;
struct child children[MAX_CHILDS];

/*
 * The supervisor's umask now, which a child Node spawned would have had: it can change after
 * this process started (the server holds 077 while it binds its socket). -1 if unreadable.
 */
static int supervisor_umask(void)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)supervisor);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int m = -1;
	while (m < 0 && fgets(line, sizeof(line), f))
		if (strncmp(line, "Umask:", 6) == 0)
			m = (int)strtol(line + 6, NULL, 8);
	fclose(f);
	return m;
}

static void __attribute__((noreturn))
exec_child(const char *exe, char *cwd, const char *fds, int *child_ends, char **argv, char **envp,
	   int err_fd, int mask)
{
	sigprocmask(SIG_UNBLOCK, &child_mask, NULL);
	signal(SIGPIPE, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, 0);
	if (mask >= 0)
		umask((mode_t)mask);
	int nfds = (int)strlen(fds);
	/* First off the low numbers, so that one dup2 cannot overwrite another's source. */
	for (int i = 0; i < nfds; i++) {
		int moved = fcntl(child_ends[i], F_DUPFD_CLOEXEC, MAX_FDS + 3);
		if (moved < 0)
			goto fail;
		child_ends[i] = moved;
	}
	for (int i = 0; i < nfds; i++)
		if (dup2(child_ends[i], i) < 0)
			goto fail;
	if (*cwd && chdir(cwd) < 0)
		goto fail;
	execve(exe, argv, envp);
fail:;
	int e = errno;
	ssize_t w = write(err_fd, &e, sizeof(e));
	(void)w;
	_exit(127);
}

static void spawn_request(char *line, size_t len)
{
	ssize_t n = b64_decode(line, len);
	if (n < 0)
		return;
	char *p = line, *end = line + n;
	char *id_s = field(&p, end), *cwd = field(&p, end), *fds = field(&p, end);
	char *exe = field(&p, end), *argc_s = field(&p, end);
	if (!id_s || !cwd || !fds || !exe || !argc_s)
		return;
	unsigned long id = strtoul(id_s, NULL, 10);
	long argc = strtol(argc_s, NULL, 10);
	if (argc < 1 || argc > MAX_ARGS || strlen(fds) > MAX_FDS) {
		reply("{\"fs\":\"error\",\"id\":%lu,\"errno\":%d}\n", id, E2BIG);
		return;
	}
	static char *argv[MAX_ARGS + 1], *envp[MAX_ARGS + 1];
	for (long i = 0; i < argc; i++)
		if (!(argv[i] = field(&p, end)))
			return;
	argv[argc] = NULL;
	char *envc_s = field(&p, end);
	long envc = envc_s ? strtol(envc_s, NULL, 10) : -1;
	if (envc < 0 || envc > MAX_ARGS) {
		reply("{\"fs\":\"error\",\"id\":%lu,\"errno\":%d}\n", id, E2BIG);
		return;
	}
	for (long i = 0; i < envc; i++)
		if (!(envp[i] = field(&p, end)))
			return;
	envp[envc] = NULL;

	int slot = -1;
	for (int i = 0; i < MAX_CHILDS && slot < 0; i++)
		if (children[i].pid == 0)
			slot = i;
	int nfds = (int)strlen(fds), ours[MAX_FDS], theirs[MAX_FDS], made = 0, err = 0;
	int errp[2] = { -1, -1 };
	for (; made < nfds && !err; made++) {
		int sp[2];
		if (fds[made] == 'p' || fds[made] == 'i') {
			int type = fds[made] == 'p' ? SOCK_STREAM : SOCK_SEQPACKET;
			if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sp) < 0)
				err = errno;
		} else {
			sp[0] = -1;
			sp[1] = open("/dev/null", O_RDWR | O_CLOEXEC);
			if (sp[1] < 0)
				err = errno;
		}
		if (err)
			break;
		ours[made] = sp[0];
		theirs[made] = sp[1];
	}
	if (!err && slot < 0)
		err = EAGAIN;
	if (!err && pipe2(errp, O_CLOEXEC) < 0)
		err = errno;
	pid_t pid = -1;
	int mask = supervisor_umask();
	if (!err) {
		pid = fork();
		if (pid < 0)
			err = errno;
		else if (pid == 0)
			exec_child(exe, cwd, fds, theirs, argv, envp, errp[1], mask);
	}
	if (errp[1] >= 0)
		close(errp[1]);
	for (int i = 0; i < made; i++)
		close(theirs[i]);
	if (!err) {
		/* The pipe closes on exec; anything read is why the child could not get there. */
		int e = 0;
		ssize_t r;
		do
			r = read(errp[0], &e, sizeof(e));
		while (r < 0 && errno == EINTR);
		if (r == (ssize_t)sizeof(e))
			err = e ? e : EIO;
	}
	if (errp[0] >= 0)
		close(errp[0]);
	if (err) {
		for (int i = 0; i < made; i++)
			if (ours[i] >= 0)
				close(ours[i]);
		/* The failed child's exit is still reaped, but nobody waits for it. */
		reply("{\"fs\":\"error\",\"id\":%lu,\"errno\":%d}\n", id, err);
		return;
	}
	children[slot] = (struct child){ .pid = pid, .id = id, .ipc = -1 };
	for (int i = 0; i < made; i++) {
		if (ours[i] < 0)
			continue;
		if (fds[i] == 'i') {
			if (children[slot].ipc >= 0)
				close(children[slot].ipc);
			children[slot].ipc = ours[i];
			continue;
		}
		char line[128];
		int l = snprintf(line, sizeof(line),
				 "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Socket\","
				 "\"msg\":{\"fs\":\"fd\",\"id\":%lu,\"fd\":%d}}\n",
				 id, i);
		send_line(line, (size_t)l, ours[i]);
		close(ours[i]);
	}
	reply("{\"fs\":\"spawned\",\"id\":%lu,\"pid\":%d}\n", id, pid);
}

static void reap(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		for (int i = 0; i < MAX_CHILDS; i++) {
			if (children[i].pid != pid)
				continue;
			/* What it sent before it exited goes first. */
			while (children[i].ipc >= 0 && relay(&children[i], MSG_DONTWAIT))
				;
			if (children[i].ipc >= 0)
				close(children[i].ipc);
			children[i].ipc = -1;
			children[i].pid = 0;
			reply("{\"fs\":\"exit\",\"id\":%lu,\"status\":%d}\n", children[i].id,
			      status);
			break;
		}
	}
}

/* Splits what arrived into lines; a request is a JSON string ("..."), anything else is Node's. */
static void take_lines(char *buf, size_t *len)
{
	size_t start = 0;
	for (size_t i = 0; i < *len; i++) {
		if (buf[i] != '\n')
			continue;
		char *l = buf + start;
		size_t n = i - start;
		if (n >= 2 && l[0] == '"' && l[n - 1] == '"')
			spawn_request(l + 1, n - 2);
		start = i + 1;
	}
	memmove(buf, buf + start, *len - start);
	*len -= start;
}

int main(void)
{
	const char *ch = getenv("NODE_CHANNEL_FD");
	if (!ch)
		return 2;
	channel = atoi(ch);
	fcntl(channel, F_SETFD, FD_CLOEXEC);
	pid_t parent = getppid();
	supervisor = parent;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&child_mask);
	sigaddset(&child_mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &child_mask, NULL);
	int sfd = signalfd(-1, &child_mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return 1;
	static char buf[MAX_LINE];
	size_t len = 0;
	static struct pollfd p[2 + MAX_IPC];
	static struct child *owner[2 + MAX_IPC];
	for (;;) {
		p[0] = (struct pollfd){ .fd = channel, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		nfds_t np = 2;
		for (int i = 0; i < MAX_CHILDS && np < 2 + MAX_IPC; i++) {
			if (children[i].pid == 0 || children[i].ipc < 0)
				continue;
			owner[np] = &children[i];
			p[np++] = (struct pollfd){ .fd = children[i].ipc, .events = POLLIN };
		}
		if (poll(p, np, -1) < 0 && errno != EINTR)
			return 1;
		for (nfds_t i = 2; i < np; i++)
			if (p[i].revents && owner[i]->ipc == p[i].fd)
				relay(owner[i], 0);
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				;
			reap();
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(channel, buf + len, sizeof(buf) - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return 0; /* the supervisor closed the channel */
			len += (size_t)n;
			take_lines(buf, &len);
			if (len == sizeof(buf))
				len = 0; /* a line this long is no request of ours */
		}
	}
}
