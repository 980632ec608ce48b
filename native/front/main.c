/*
 * nanocell (the native front)
 *
 * What `nanocell` on the PATH is. Node takes most of a tenth of a second to start, and an agent
 * harness calls `nanocell run` once per tool call: with `nanocell serve` running, the front
 * carries a run to it in about a millisecond of its own. It decides nothing: it sends the
 * arguments after `run`, the cwd and the environment as one `runCli` request
 * (docs/architecture.md, "The native front"), and relays bytes both ways. The server reads the
 * arguments with the CLI's own code, runs the task, and sends the task's output, nanocell's
 * notes and the exit status back as binary frames.
 *
 * Everything else is the node CLI's, and the front execs it with the same arguments
 * (dist/cli/nanocell.mjs beside this checkout's native/build/): every verb but `run`, a run
 * with a terminal on stdin, stdout or stderr (the live status line and raw mode are the CLI's),
 * no server listening, NANOCELL_NO_SERVER, a request too large for one line, and whatever
 * the server hands back (a bad flag, --help, --tty, --from, the Kubernetes backend). A
 * server that cannot read runCli (another version, another uid) answers with a JSON line; its
 * first byte is no frame kind, so that too is handed to the node CLI, which says why.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "front.h"

const char *sock_path_for_errors;
static char **orig_argv;
static sigset_t orig_mask;

/* The node CLI, with the arguments the front was given. */
void __attribute__((noreturn)) node_cli(void)
{
	char self[PATH_MAX], cli[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		fprintf(stderr, "nanocell: cannot find the front's own path (fix: mount /proc)\n");
		exit(EXIT_NANOCELL);
	}
	self[n] = 0;
	char *slash = strrchr(self, '/');
	*slash = 0;
	snprintf(cli, sizeof(cli), "%s/../../dist/cli/nanocell.mjs", self);
	int argc = 0;
	while (orig_argv[argc])
		argc++;
	char **args = calloc(argc + 2, sizeof(char *));
	if (!args)
		exit(EXIT_NANOCELL);
	args[0] = "node";
	args[1] = cli;
	for (int i = 1; i < argc; i++)
		args[i + 1] = orig_argv[i];
	sigprocmask(SIG_SETMASK, &orig_mask, NULL);
	signal(SIGPIPE, SIG_DFL);
	execvp("node", args);
	fprintf(stderr,
		"nanocell: cannot run node: %s (fix: install Node.js 20, or run scripts/setup.sh "
		"install)\n",
		strerror(errno));
	exit(EXIT_NANOCELL);
}

/* Where the server of this state root listens, as src/cell/state.ts decides the root:
 * --state-root, then NANOCELL_STATE_ROOT, then /var/lib/nanocell for root, then
 * $XDG_STATE_HOME/nanocell or ~/.local/state/nanocell. A relative root stays relative: connect()
 * reads it against the cwd, as node's path.resolve does. */
static int socket_path(const char *flag, char *out, size_t size)
{
	const char *env = getenv("NANOCELL_STATE_ROOT");
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	int n;
	/* An empty value means something else to node (a relative root, or none): its call, so
	 * the front finds no socket and the node CLI runs. */
	if (flag)
		n = *flag ? snprintf(out, size, "%s/%s", flag, SOCKET_NAME) : -1;
	else if (env)
		n = *env ? snprintf(out, size, "%s/%s", env, SOCKET_NAME) : -1;
	else if (geteuid() == 0)
		n = snprintf(out, size, "/var/lib/nanocell/%s", SOCKET_NAME);
	else if (xdg && *xdg)
		n = snprintf(out, size, "%s/nanocell/%s", xdg, SOCKET_NAME);
	else {
		if (!home) {
			struct passwd *pw = getpwuid(geteuid());
			home = pw ? pw->pw_dir : NULL;
		}
		if (!home || !*home)
			return -1;
		n = snprintf(out, size, "%s/.local/state/nanocell/%s", home, SOCKET_NAME);
	}
	return n > 0 && (size_t)n < size ? 0 : -1;
}

static int connect_server(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct relay {
	int sock;
	int stdin_open;
	int broken[3]; /* stdout, stderr: the reader went away */
	int cancelled;
	int started; /* the server carries the run: from here stdin is its */
};

/* A frame's payload, streamed to fd (1 or 2) in pieces: no frame is held whole. */
static void relay_payload(struct relay *r, int fd, uint32_t len)
{
	static char chunk[65536];
	while (len > 0) {
		size_t n = len < sizeof(chunk) ? len : sizeof(chunk);
		if (read_exact(r->sock, chunk, n) != 1)
			server_gone();
		len -= (uint32_t)n;
		if (fd < 0 || r->broken[fd])
			continue;
		if (write_all(fd, chunk, n) != 0) {
			/* Nobody reads any more: the task stops as SIGPIPE would stop it on the host,
			 * and is still collected and recorded (the node CLI does the same). */
			r->broken[fd] = 1;
			if (!r->cancelled++)
				send_input(r->sock, "cancel", "");
		}
	}
}

/* One frame from the server; returns unless it ends the run or hands it to the node CLI. */
static void on_frame(struct relay *r)
{
	unsigned char head[5];
	if (read_exact(r->sock, head, 1) != 1)
		server_gone();
	if (head[0] != FRAME_STDOUT && head[0] != FRAME_STDERR && head[0] != FRAME_EXIT &&
	    head[0] != FRAME_FALLBACK && head[0] != FRAME_STARTED) {
		if (!r->started)
			node_cli(); /* a JSON line: a server that does not serve runCli to us */
		fprintf(stderr,
			"nanocell: cell server protocol: a frame of unknown kind %u (fix: use the "
			"nanocell that started the server)\n",
			head[0]);
		exit(EXIT_NANOCELL);
	}
	if (read_exact(r->sock, head + 1, 4) != 1)
		server_gone();
	uint32_t len = (uint32_t)head[1] << 24 | (uint32_t)head[2] << 16 | (uint32_t)head[3] << 8 |
		       head[4];
	switch (head[0]) {
	case FRAME_STARTED:
		r->started = 1;
		relay_payload(r, -1, len);
		return;
	case FRAME_STDOUT:
		relay_payload(r, 1, len);
		return;
	case FRAME_STDERR:
		relay_payload(r, 2, len);
		return;
	case FRAME_FALLBACK:
		if (r->started)
			server_gone(); /* a server that took the run cannot hand it back */
		relay_payload(r, 2, len);
		close(r->sock);
		node_cli();
	default: {
		unsigned char code = EXIT_NANOCELL;
		if (len != 1 || read_exact(r->sock, &code, 1) != 1)
			server_gone();
		exit(code);
	}
	}
}

static void on_stdin(struct relay *r)
{
	static unsigned char data[STDIN_CHUNK];
	ssize_t n = read(0, data, sizeof(data));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* An unreadable stdin ends as an empty one would. */
		r->stdin_open = 0;
		send_input(r->sock, "stdin", ",\"end\":true");
		return;
	}
	struct buf b = { 0 };
	char head[64];
	snprintf(head, sizeof(head), "{\"v\":%d,\"id\":1,\"type\":\"stdin\",\"data\":\"",
		 PROTOCOL_VERSION);
	puts_(&b, head);
	put_base64(&b, data, (size_t)n);
	puts_(&b, "\"}");
	send_line(r->sock, &b);
	free(b.p);
}

int main(int argc, char **argv)
{
	orig_argv = argv;
	sigprocmask(SIG_SETMASK, NULL, &orig_mask);

	/* [--state-root DIR | --state-root=DIR] run ARGS..., as commander reads the program's
	 * one option before its verb; anything else is the node CLI's. */
	const char *root = NULL;
	int i = 1;
	while (i < argc && strncmp(argv[i], "--state-root", 12) == 0) {
		if (argv[i][12] == '=')
			root = argv[i] + 13;
		else if (argv[i][12] == 0 && i + 1 < argc)
			root = argv[++i];
		else
			node_cli();
		i++;
	}
	const char *no_server = getenv("NANOCELL_NO_SERVER");
	if (i >= argc || strcmp(argv[i], "run") != 0 || (no_server && *no_server))
		node_cli();
	if (isatty(0) || isatty(1) || isatty(2))
		node_cli();
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 64];
	if (socket_path(root, path, sizeof(path)) != 0)
		node_cli();
	int sock = connect_server(path);
	if (sock < 0)
		node_cli();
	sock_path_for_errors = path;

	/* From here signals are read, not taken: each becomes a cancel (the first stops the task,
	 * which is still collected; the second gives its change set up), as in the node CLI. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	if (sfd < 0)
		node_cli();

	send_request(sock, argv + i + 1);
	struct relay r = { .sock = sock, .stdin_open = 1 };
	for (;;) {
		/* stdin waits for `started`: a run handed back to the node CLI keeps all of it. */
		struct pollfd p[3] = { { .fd = sock, .events = POLLIN },
				       { .fd = sfd, .events = POLLIN },
				       { .fd = r.stdin_open && r.started ? 0 : -1,
					 .events = POLLIN } };
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			server_gone();
		}
		if (p[0].revents) {
			on_frame(&r);
			continue;
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				r.cancelled++;
				send_input(sock, "cancel", "");
			}
		}
		if (p[2].revents)
			on_stdin(&r);
	}
}
