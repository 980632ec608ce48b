/*
 * nanocell-monitor: per-cell shim between the supervisor and the runtime.
 *
 *   nanocell-monitor --listener /abs/seccomp.sock [--pid-file /abs/init.pid]
 *                    [--syscall-table FILE] [--max-events N] [--max-exec-events N]
 *                    [--proxy-port PORT] [--exec-allow PATH]... -- RUNTIME ARGV...
 *
 * Node can neither reap orphans nor receive an fd over SCM_RIGHTS, so this process does both:
 * it is the child subreaper that inherits the cell's init once `runc run --detach` exits, and
 * the seccomp agent that receives runc's notify fd on the listener socket and answers every
 * notification. Events go to stdout as JSON lines.
 *
 * With --proxy-port, it also makes the listening socket of the cell's egress proxy: a TCP socket
 * on 127.0.0.1:PORT inside the cell's network namespace, created before the cell's init runs,
 * and handed to the supervisor over Node's IPC channel (NODE_CHANNEL_FD), where the proxy
 * accepts on it. The cell's connections then reach the proxy with no relay in between.
 *
 * It answers a notification before writing its event, so a stalled stdout never leaves a task
 * blocked in a syscall. If this process dies, the kernel fails pending and future notified
 * calls with ENOSYS: that is the intended fail-closed behaviour.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "execguard.h"

#ifndef AUDIT_ARCH_AARCH64
#define AUDIT_ARCH_AARCH64 (EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE)
#endif
#ifndef SECCOMP_USER_NOTIF_FLAG_CONTINUE
#define SECCOMP_USER_NOTIF_FLAG_CONTINUE (1UL << 0)
#endif

#define ARGV_MAX 64
#define ARG_MAX_BYTES 256
#define ARGV_TOTAL_BYTES 4096
#define SUMMARY_SLOTS 256

/* ---------- JSON output ---------- */

struct out {
	char *p;
	size_t len, cap;
};

static void out_raw(struct out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 1024;
		while (cap < o->len + n + 1)
			cap *= 2;
		char *p = realloc(o->p, cap);
		if (!p)
			return;
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void __attribute__((format(printf, 2, 3))) out_fmt(struct out *o, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		out_raw(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void out_str(struct out *o, const char *s, size_t n)
{
	out_raw(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			out_raw(o, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			out_fmt(o, "\\u%04x", c);
		} else {
			out_raw(o, (const char *)&c, 1);
		}
	}
	out_raw(o, "\"", 1);
}

static void out_cstr(struct out *o, const char *s)
{
	out_str(o, s, strlen(s));
}

/* Write one complete line; a failed write is dropped (the supervisor may be gone). */
static void emit(struct out *o)
{
	out_raw(o, "\n", 1);
	size_t off = 0;
	while (off < o->len) {
		ssize_t n = write(1, o->p + off, o->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	free(o->p);
	memset(o, 0, sizeof(*o));
}

static void __attribute__((format(printf, 1, 2))) emit_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct out o = {0};
	out_fmt(&o, "{\"type\":\"error\",\"message\":");
	out_cstr(&o, msg);
	out_raw(&o, "}", 1);
	emit(&o);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------- syscall table ---------- */

struct sysent {
	uint32_t arch;
	int nr;
	int err;
	char name[48];
};

static struct sysent *table;
static size_t table_len;

static const char *arch_name(uint32_t arch)
{
	switch (arch) {
	case AUDIT_ARCH_X86_64:
		return "x86_64";
	case AUDIT_ARCH_I386:
		return "i386";
	case AUDIT_ARCH_AARCH64:
		return "aarch64";
	default:
		return "unknown";
	}
}

static int load_table(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char line[256];
	size_t cap = 0;
	while (fgets(line, sizeof(line), f)) {
		char arch[16], name[48];
		int nr, err;
		if (line[0] == '#' || sscanf(line, "%15s %d %47s %d", arch, &nr, name, &err) != 4)
			continue;
		uint32_t a = strcmp(arch, "x86_64") == 0    ? AUDIT_ARCH_X86_64
			     : strcmp(arch, "i386") == 0    ? AUDIT_ARCH_I386
			     : strcmp(arch, "aarch64") == 0 ? AUDIT_ARCH_AARCH64
							    : 0;
		if (!a)
			continue;
		if (table_len == cap) {
			cap = cap ? cap * 2 : 512;
			struct sysent *t = realloc(table, cap * sizeof(*t));
			if (!t) {
				fclose(f);
				return -1;
			}
			table = t;
		}
		struct sysent *e = &table[table_len++];
		e->arch = a;
		e->nr = nr;
		e->err = err;
		snprintf(e->name, sizeof(e->name), "%s", name);
	}
	fclose(f);
	return 0;
}

static const struct sysent *lookup(uint32_t arch, int nr)
{
	for (size_t i = 0; i < table_len; i++)
		if (table[i].arch == arch && table[i].nr == nr)
			return &table[i];
	return NULL;
}

static int is_exec(uint32_t arch, int nr, int *is_at)
{
	*is_at = 0;
	switch (arch) {
	case AUDIT_ARCH_X86_64:
		*is_at = nr == 322;
		return nr == 59 || nr == 322;
	case AUDIT_ARCH_I386:
		*is_at = nr == 358;
		return nr == 11 || nr == 358;
	case AUDIT_ARCH_AARCH64:
		*is_at = nr == 281;
		return nr == 221 || nr == 281;
	}
	return 0;
}

/* ---------- reading the task's memory ---------- */

/* Read a NUL-terminated string of at most max-1 bytes at addr; never crosses into an unmapped
 * page in one read, so a string near the end of a mapping is still read. */
static size_t read_str(int mem, uint64_t addr, char *out, size_t max)
{
	size_t got = 0;
	while (got + 1 < max) {
		uint64_t a = addr + got;
		size_t page_left = 4096 - (size_t)(a & 4095);
		size_t want = max - 1 - got;
		if (want > page_left)
			want = page_left;
		ssize_t n = pread(mem, out + got, want, (off_t)a);
		if (n <= 0)
			break;
		char *nul = memchr(out + got, 0, (size_t)n);
		if (nul) {
			got = (size_t)(nul - out);
			out[got] = 0;
			return got;
		}
		got += (size_t)n;
	}
	out[got] = 0;
	return got;
}

struct exec_info {
	char path[PATH_MAX];
	int argc;
	char argv[ARGV_MAX][ARG_MAX_BYTES];
	int truncated;
};

static void read_exec(pid_t pid, uint32_t arch, const __u64 *args, int is_at,
		      struct exec_info *info)
{
	memset(info, 0, sizeof(*info));
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/mem", (int)pid);
	int mem = open(p, O_RDONLY | O_CLOEXEC);
	if (mem < 0)
		return;
	uint64_t path_addr = is_at ? args[1] : args[0];
	uint64_t argv_addr = is_at ? args[2] : args[1];
	read_str(mem, path_addr, info->path, sizeof(info->path));
	size_t ptr_size = arch == AUDIT_ARCH_I386 ? 4 : 8;
	size_t total = 0;
	for (int i = 0; argv_addr && i < ARGV_MAX; i++) {
		uint64_t ptr = 0;
		if (pread(mem, &ptr, ptr_size, (off_t)(argv_addr + (uint64_t)i * ptr_size)) !=
		    (ssize_t)ptr_size)
			break;
		if (!ptr)
			break;
		size_t room = ARGV_TOTAL_BYTES - total;
		if (room < 2) {
			info->truncated = 1;
			break;
		}
		size_t cap = room < ARG_MAX_BYTES ? room : ARG_MAX_BYTES;
		total += read_str(mem, ptr, info->argv[i], cap) + 1;
		info->argc = i + 1;
		if (i == ARGV_MAX - 1)
			info->truncated = 1;
	}
	close(mem);
}

static void read_ppid(pid_t pid, long *ppid, long *nspid)
{
	*ppid = -1;
	*nspid = -1;
	char p[64], text[4096];
	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return;
	text[n] = 0;
	char *l = strstr(text, "\nPPid:");
	if (l)
		*ppid = strtol(l + 6, NULL, 10);
	l = strstr(text, "\nNSpid:");
	if (l) {
		char *end = strchr(l + 1, '\n');
		char *last = l + 7;
		for (char *q = l + 7; q < (end ? end : text + n); q++)
			if (*q == '\t' || *q == ' ')
				last = q + 1;
		*nspid = strtol(last, NULL, 10);
	}
}

/* ---------- event caps ---------- */

struct count {
	char name[48];
	long pid;
	unsigned long long n;
};

static struct count counts[SUMMARY_SLOTS];
static int ncounts;
static unsigned long long dropped, denials_seen, execs_seen, exec_counted;
static long max_events = 200, max_exec_events = 1000;
static int summary_dirty, exec_summary_dirty;

static void count_denial(const char *name, long pid)
{
	for (int i = 0; i < ncounts; i++) {
		if (counts[i].pid == pid && strcmp(counts[i].name, name) == 0) {
			counts[i].n++;
			summary_dirty = 1;
			return;
		}
	}
	if (ncounts < SUMMARY_SLOTS) {
		struct count *c = &counts[ncounts++];
		snprintf(c->name, sizeof(c->name), "%s", name);
		c->pid = pid;
		c->n = 1;
	} else {
		dropped++;
	}
	summary_dirty = 1;
}

static void emit_summaries(void)
{
	if (summary_dirty) {
		struct out o = {0};
		out_fmt(&o, "{\"type\":\"syscall.denied.summary\",\"counts\":[");
		for (int i = 0; i < ncounts; i++) {
			out_fmt(&o, "%s{\"name\":", i ? "," : "");
			out_cstr(&o, counts[i].name);
			out_fmt(&o, ",\"pid\":%ld,\"count\":%llu}", counts[i].pid, counts[i].n);
		}
		out_fmt(&o, "],\"dropped\":%llu}", dropped);
		emit(&o);
		summary_dirty = 0;
	}
	if (exec_summary_dirty) {
		struct out o = {0};
		out_fmt(&o, "{\"type\":\"exec.summary\",\"count\":%llu}", exec_counted);
		emit(&o);
		exec_summary_dirty = 0;
	}
}

/* ---------- notifications ---------- */

static int notify_fd = -1;
static struct seccomp_notif_sizes sizes;
static struct seccomp_notif *req;
static struct seccomp_notif_resp *resp;

/* Answers the pending notification with -err and records the denial (with why, if given). */
static void deny_and_record(pid_t pid, uint32_t arch, int nr, const char *name, int err,
			    const char *why)
{
	int full = (long)denials_seen++ < max_events;
	/* Read the executable while the task still waits on us; it may exit right after. */
	char exe[PATH_MAX] = "", link[64];
	if (full) {
		snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
		ssize_t n = readlink(link, exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = 0;
	}
	resp->error = -err;
	ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
	if (!full) {
		count_denial(name, pid);
		return;
	}
	struct out o = {0};
	out_fmt(&o, "{\"type\":\"syscall.denied\",\"time\":%lld,\"pid\":%d,\"arch\":\"%s\",\"nr\":%d,\"name\":",
		now_ms(), (int)pid, arch_name(arch), nr);
	out_cstr(&o, name);
	out_fmt(&o, ",\"errno\":%d,\"exe\":", err);
	out_cstr(&o, exe);
	if (why && *why) {
		out_raw(&o, ",\"detail\":", 10);
		out_cstr(&o, why);
	}
	out_raw(&o, "}", 1);
	emit(&o);
}

static void handle_notification(void)
{
	memset(req, 0, sizes.seccomp_notif);
	if (ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
		if (errno != ENOENT && errno != EINTR)
			emit_error("seccomp notif recv: %s", strerror(errno));
		return;
	}
	uint64_t id = req->id;
	pid_t pid = (pid_t)req->pid;
	uint32_t arch = req->data.arch;
	int nr = req->data.nr;
	int is_at;
	memset(resp, 0, sizes.seccomp_notif_resp);
	resp->id = id;
	/* Exec, mmap(PROT_EXEC) of a file and memfd_create first pass the exec allowlist's guard. */
	static char why[PATH_MAX + 160];
	int guard = execguard_check(notify_fd, req, why, sizeof(why));
	if (guard == EG_ANSWERED)
		return;
	if (guard > 0) {
		deny_and_record(pid, arch, nr, execguard_call_name(req), guard, why);
		return;
	}
	if (guard == EG_ALLOW && !is_exec(arch, nr, &is_at)) {
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
		return;
	}
	if (is_exec(arch, nr, &is_at)) {
		static struct exec_info info;
		int full = (long)execs_seen < max_exec_events;
		if (full)
			read_exec(pid, arch, req->data.args, is_at, &info);
		long ppid = -1, nspid = -1;
		if (full)
			read_ppid(pid, &ppid, &nspid);
		/* The pid may have died and been reused while we read: only trust data for a live id. */
		int valid = ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
		if (!valid)
			return;
		execs_seen++;
		if (!full) {
			exec_counted++;
			exec_summary_dirty = 1;
			return;
		}
		struct out o = {0};
		out_fmt(&o, "{\"type\":\"exec\",\"time\":%lld,\"pid\":%d,\"ppid\":%ld,\"cellPid\":%ld,\"path\":",
			now_ms(), (int)pid, ppid, nspid);
		out_cstr(&o, info.path);
		out_raw(&o, ",\"argv\":[", 9);
		for (int i = 0; i < info.argc; i++) {
			if (i)
				out_raw(&o, ",", 1);
			out_cstr(&o, info.argv[i]);
		}
		out_fmt(&o, "],\"truncated\":%s,\"unverified\":true}", info.truncated ? "true" : "false");
		emit(&o);
		return;
	}
	const struct sysent *ent = lookup(arch, nr);
	deny_and_record(pid, arch, nr, ent ? ent->name : "unknown", ent ? ent->err : EPERM, NULL);
}

/* ---------- proxy listener ---------- */

static int proxy_port = -1;
static int channel_fd = -1;

/*
 * In a child, enters the cell's user and network namespaces (the netns checks CAP_SYS_ADMIN in
 * both its owner and the caller's user namespace, so rootless needs the userns first), listens
 * on 127.0.0.1:PORT and sends the socket to the supervisor as a Node IPC handle message.
 */
static int hand_over_proxy_listener(long pid)
{
	pid_t child = fork();
	if (child < 0) {
		emit_error("proxy listener: fork: %s", strerror(errno));
		return -1;
	}
	if (child == 0) {
		char path[64];
		const char *step = "open the cell's user namespace";
		snprintf(path, sizeof(path), "/proc/%ld/ns/user", pid);
		int userns = open(path, O_RDONLY | O_CLOEXEC);
		snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
		int netns = open(path, O_RDONLY | O_CLOEXEC);
		int s = -1;
		if (userns < 0 || netns < 0)
			goto fail;
		step = "enter the cell's user namespace";
		if (setns(userns, CLONE_NEWUSER) < 0)
			goto fail;
		step = "enter the cell's network namespace";
		if (setns(netns, CLONE_NEWNET) < 0)
			goto fail;
		step = "listen";
		s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)proxy_port),
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 512) < 0)
			goto fail;
		/* Node's IPC framing: one JSON line; SCM_RIGHTS with it makes the fd its handle. */
		char line[128];
		int len = snprintf(line, sizeof(line),
				   "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Server\","
				   "\"msg\":{\"nanocell\":\"proxy-listener\",\"port\":%d}}\n",
				   proxy_port);
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} cm;
		memset(&cm, 0, sizeof(cm));
		struct iovec iov = {.iov_base = line, .iov_len = (size_t)len};
		struct msghdr msg = {
		    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf)};
		struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &s, sizeof(int));
		step = "send it to the supervisor";
		if (sendmsg(channel_fd, &msg, MSG_NOSIGNAL) != len)
			goto fail;
		_exit(0);
	fail:
		emit_error("proxy listener on 127.0.0.1:%d: cannot %s: %s", proxy_port, step,
			   strerror(errno));
		_exit(1);
	}
	int status;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---------- listener ---------- */

static int listen_fd = -1;
static const char *listener_path;
static long init_pid = -1;

/* runc sends the OCI state JSON as data and the notify fd as SCM_RIGHTS, then closes. */
static void accept_listener(void)
{
	int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	struct timeval tv = {.tv_sec = 2};
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	static char state[256 * 1024];
	size_t len = 0;
	int got_fd = -1;
	for (;;) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int) * 8)];
		} cm;
		struct iovec iov = {.iov_base = state + len, .iov_len = sizeof(state) - 1 - len};
		struct msghdr msg = {
		    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf)};
		ssize_t n = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); n >= 0 && h; h = CMSG_NXTHDR(&msg, h)) {
			if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
				continue;
			int nfds = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			int *fds = (int *)CMSG_DATA(h);
			for (int i = 0; i < nfds; i++) {
				if (got_fd < 0)
					got_fd = fds[i];
				else
					close(fds[i]);
			}
		}
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len >= sizeof(state) - 1)
			break;
	}
	close(c);
	state[len] = 0;
	if (got_fd < 0) {
		emit_error("listener connection without a seccomp fd");
		return;
	}
	if (notify_fd >= 0) {
		emit_error("second seccomp fd on the listener ignored");
		close(got_fd);
		return;
	}
	notify_fd = got_fd;
	/* Go marshals the state's top-level "pid" before "bundle" and "annotations". */
	const char *p = strstr(state, "\"pid\":");
	if (p)
		init_pid = strtol(p + 6, NULL, 10);
	/* Before the event: the supervisor counts the cell as started only with its proxy socket. */
	if (proxy_port > 0 && (init_pid <= 0 || hand_over_proxy_listener(init_pid) < 0)) {
		if (init_pid <= 0)
			emit_error("proxy listener: the runtime did not say which pid the cell has");
		/* Fail closed: without its proxy socket the cell must not run. */
		if (init_pid > 0)
			kill((pid_t)init_pid, SIGKILL);
	}
	struct out o = {0};
	out_fmt(&o, "{\"type\":\"listener\",\"pid\":%ld,\"initPid\":%ld}", init_pid, init_pid);
	emit(&o);
	/* One fd per cell: nobody else needs the socket. */
	close(listen_fd);
	listen_fd = -1;
	unlink(listener_path);
}

/* ---------- lifecycle ---------- */

static pid_t runtime_pid = -1;
static int runtime_exited, runtime_status, init_reaped;
static const char *pid_file;

static int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void read_pid_file(void)
{
	if (init_pid > 0 || !pid_file)
		return;
	FILE *f = fopen(pid_file, "re");
	if (!f)
		return;
	long v;
	if (fscanf(f, "%ld", &v) == 1 && v > 0)
		init_pid = v;
	fclose(f);
}

static void on_init_exit(int status_code)
{
	init_reaped = 1;
	struct out o = {0};
	out_fmt(&o, "{\"type\":\"init.exited\",\"status\":%d}", status_code);
	emit(&o);
}

static void reap(int flags)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, flags);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		if (pid == runtime_pid) {
			runtime_exited = 1;
			runtime_status = exit_code(status);
			struct out o = {0};
			out_fmt(&o, "{\"type\":\"runtime.exited\",\"status\":%d}", runtime_status);
			emit(&o);
			read_pid_file();
		} else if (init_pid > 0 && pid == init_pid && !init_reaped) {
			on_init_exit(exit_code(status));
		}
	}
}

/* If the runtime reaped init itself (it died before runc exited), init never reaches us. */
static void check_init_gone(void)
{
	if (runtime_exited && init_pid > 0 && !init_reaped && kill((pid_t)init_pid, 0) < 0 &&
	    errno == ESRCH)
		on_init_exit(-1);
}

static void cleanup_and_exit(int code)
{
	emit_summaries();
	if (listen_fd >= 0) {
		close(listen_fd);
		unlink(listener_path);
	}
	_exit(code);
}

static void terminate(void)
{
	if (init_pid > 0 && !init_reaped)
		kill((pid_t)init_pid, SIGKILL);
	if (runtime_pid > 0 && !runtime_exited)
		kill(runtime_pid, SIGKILL);
	/* Everything left is ours to reap; init's death takes its whole pid namespace down. */
	reap(0);
	check_init_gone();
	cleanup_and_exit(0);
}

static void usage(void)
{
	fprintf(stderr, "usage: nanocell-monitor --listener /abs/seccomp.sock [--pid-file FILE] "
			"[--syscall-table FILE] [--max-events N] [--max-exec-events N] "
			"[--proxy-port PORT] [--exec-allow PATH]... -- RUNTIME ARGV...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *table_path = NULL;
	int i;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (i + 1 >= argc)
			usage();
		const char *v = argv[i + 1];
		if (strcmp(argv[i], "--listener") == 0)
			listener_path = v;
		else if (strcmp(argv[i], "--pid-file") == 0)
			pid_file = v;
		else if (strcmp(argv[i], "--syscall-table") == 0)
			table_path = v;
		else if (strcmp(argv[i], "--max-events") == 0)
			max_events = atol(v);
		else if (strcmp(argv[i], "--max-exec-events") == 0)
			max_exec_events = atol(v);
		else if (strcmp(argv[i], "--proxy-port") == 0)
			proxy_port = atoi(v);
		else if (strcmp(argv[i], "--exec-allow") == 0)
			execguard_allow(v);
		else
			usage();
		i++;
	}
	if (!listener_path || listener_path[0] != '/' || i >= argc)
		usage();
	if (proxy_port != -1) {
		const char *ch = getenv("NODE_CHANNEL_FD");
		if (proxy_port <= 0 || proxy_port > 65535 || !ch)
			usage();
		channel_fd = atoi(ch);
		/* Neither the runtime nor the cell may inherit the supervisor's IPC channel. */
		if (fcntl(channel_fd, F_SETFD, FD_CLOEXEC) < 0) {
			emit_error("NODE_CHANNEL_FD %s: %s", ch, strerror(errno));
			return 1;
		}
		unsetenv("NODE_CHANNEL_FD");
		unsetenv("NODE_CHANNEL_SERIALIZATION_MODE");
	}
	char **runtime_argv = argv + i;

	pid_t parent = getppid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent) {
		/* The supervisor died before PDEATHSIG was armed. */
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	/* fd 3 is the init control socket passed through to the runtime. If it is not open, hold
	 * the number with a CLOEXEC placeholder so none of our own fds lands on 3 and gets closed. */
	if (fcntl(3, F_GETFD) < 0) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && fd != 3) {
			dup3(fd, 3, O_CLOEXEC);
			close(fd);
		}
	}

	if (table_path && load_table(table_path) < 0) {
		emit_error("cannot read syscall table %s: %s", table_path, strerror(errno));
		return 1;
	}
	if (syscall(__NR_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) {
		emit_error("seccomp GET_NOTIF_SIZES: %s", strerror(errno));
		return 1;
	}
	size_t rsz = sizes.seccomp_notif > sizeof(*req) ? sizes.seccomp_notif : sizeof(*req);
	size_t ssz = sizes.seccomp_notif_resp > sizeof(*resp) ? sizes.seccomp_notif_resp : sizeof(*resp);
	sizes.seccomp_notif = (uint16_t)rsz;
	sizes.seccomp_notif_resp = (uint16_t)ssz;
	req = calloc(1, rsz);
	resp = calloc(1, ssz);

	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		emit_error("signalfd: %s", strerror(errno));
		return 1;
	}

	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(listener_path) >= sizeof(sa.sun_path)) {
		emit_error("listener path too long: %s", listener_path);
		return 1;
	}
	strcpy(sa.sun_path, listener_path);
	unlink(listener_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	mode_t um = umask(0177);
	int rc = listen_fd < 0 ? -1 : bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(um);
	if (rc < 0 || chmod(listener_path, 0600) < 0 || listen(listen_fd, 4) < 0) {
		emit_error("listener %s: %s", listener_path, strerror(errno));
		if (rc == 0)
			unlink(listener_path);
		return 1;
	}

	runtime_pid = fork();
	if (runtime_pid < 0) {
		emit_error("fork: %s", strerror(errno));
		cleanup_and_exit(1);
	}
	if (runtime_pid == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		signal(SIGPIPE, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, 0);
		execvp(runtime_argv[0], runtime_argv);
		fprintf(stderr, "nanocell-monitor: exec %s: %s\n", runtime_argv[0], strerror(errno));
		_exit(127);
	}
	/* Only the supervisor and the cell's init may hold the control socket. */
	close(3);

	long long last_summary = mono_ms();
	for (;;) {
		struct pollfd p[3];
		int np = 0;
		p[np++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		int li = -1, ni = -1;
		if (listen_fd >= 0) {
			li = np;
			p[np++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
		}
		if (notify_fd >= 0) {
			ni = np;
			p[np++] = (struct pollfd){.fd = notify_fd, .events = POLLIN};
		}
		int n = poll(p, (nfds_t)np, 1000);
		if (n < 0 && errno != EINTR) {
			emit_error("poll: %s", strerror(errno));
			terminate();
		}
		/* The listener goes first: runc connects before `run --detach` returns. */
		if (li >= 0 && (p[li].revents & POLLIN))
			accept_listener();
		if (ni >= 0 && p[ni].revents) {
			if (p[ni].revents & POLLIN) {
				handle_notification();
			} else if (p[ni].revents & (POLLHUP | POLLERR)) {
				/* No task uses the filter any more. */
				close(notify_fd);
				notify_fd = -1;
			}
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			int stop = 0;
			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				if (si.ssi_signo != SIGCHLD)
					stop = 1;
			if (stop)
				terminate();
			if (runtime_exited == 0 && listen_fd >= 0) {
				/* Pick up a connection made just before the runtime exited. */
				struct pollfd lp = {.fd = listen_fd, .events = POLLIN};
				if (poll(&lp, 1, 0) > 0)
					accept_listener();
			}
			reap(WNOHANG);
		}
		check_init_gone();
		long long t = mono_ms();
		if (t - last_summary >= 1000) {
			emit_summaries();
			last_summary = t;
		}
		if (runtime_exited && (init_reaped || init_pid <= 0)) {
			if (init_pid <= 0 && runtime_status != 0)
				emit_error("runtime exited with status %d before the cell's init was known",
					   runtime_status);
			/* Answer what is still queued so no task is left waiting on us. */
			while (notify_fd >= 0) {
				struct pollfd np1 = {.fd = notify_fd, .events = POLLIN};
				if (poll(&np1, 1, 0) <= 0 || !(np1.revents & POLLIN))
					break;
				handle_notification();
			}
			reap(WNOHANG);
			cleanup_and_exit(0);
		}
	}
}
