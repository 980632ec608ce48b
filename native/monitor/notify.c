/*
 * The seccomp notify agent: every notification is answered before its event is written, so a
 * stalled stdout never leaves a task blocked in a syscall. Execs continue (Landlock's exec
 * rules decide them; this only records them); every other notified syscall is denied with the
 * errno the syscall table gives. Past the caps, events become counted summaries.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "execguard.h"
#include "monitor.h"

#ifndef SECCOMP_USER_NOTIF_FLAG_CONTINUE
#define SECCOMP_USER_NOTIF_FLAG_CONTINUE (1UL << 0)
#endif

#define SUMMARY_SLOTS 256

int notify_fd = -1;
long max_events = 200, max_exec_events = 1000;

static struct seccomp_notif_sizes sizes;
static struct seccomp_notif *req;
static struct seccomp_notif_resp *resp;

struct count {
	char name[48];
	long pid;
	unsigned long long n;
};

static struct count counts[SUMMARY_SLOTS];
static int ncounts;
static unsigned long long dropped, denials_seen, execs_seen, exec_counted;
static int summary_dirty, exec_summary_dirty;

/* The kernel's structs may be larger than this build's headers say: allocate the larger. */
int notify_init(void)
{
	if (syscall(__NR_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) {
		emit_error("seccomp GET_NOTIF_SIZES: %s", strerror(errno));
		return -1;
	}
	size_t rsz = sizes.seccomp_notif > sizeof(*req) ? sizes.seccomp_notif : sizeof(*req);
	size_t ssz =
		sizes.seccomp_notif_resp > sizeof(*resp) ? sizes.seccomp_notif_resp : sizeof(*resp);
	sizes.seccomp_notif = (uint16_t)rsz;
	sizes.seccomp_notif_resp = (uint16_t)ssz;
	req = calloc(1, rsz);
	resp = calloc(1, ssz);
	if (!req || !resp) {
		emit_error("seccomp notification buffers: out of memory");
		return -1;
	}
	return 0;
}

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

void emit_summaries(void)
{
	if (summary_dirty) {
		struct out o = { 0 };
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
		struct out o = { 0 };
		out_fmt(&o, "{\"type\":\"exec.summary\",\"count\":%llu}", exec_counted);
		emit(&o);
		exec_summary_dirty = 0;
	}
}

static void emit_exec(pid_t pid, long ppid, long nspid, const struct exec_info *info)
{
	struct out o = { 0 };
	out_fmt(&o,
		"{\"type\":\"exec\",\"time\":%lld,\"pid\":%d,\"ppid\":%ld,\"cellPid\":%ld,"
		"\"path\":",
		now_ms(), (int)pid, ppid, nspid);
	out_cstr(&o, info->path);
	out_raw(&o, ",\"argv\":[", 9);
	for (int i = 0; i < info->argc; i++) {
		if (i)
			out_raw(&o, ",", 1);
		out_cstr(&o, info->argv[i]);
	}
	out_fmt(&o, "],\"truncated\":%s,\"unverified\":true}", info->truncated ? "true" : "false");
	emit(&o);
}

/*
 * An exec the guard let through. Everything the record needs is read while the task waits: its
 * argv lives in the memory the exec replaces, and once answered the task may run, exit and be
 * reaped before this loop looks again (a static program, or any program where the guard does
 * not see the loader's mappings), taking its parent and cell pid with it. `procdir` names this
 * task and no other, so a pid reused meanwhile reads as gone. Only the write is left for after.
 */
static void handle_exec(uint64_t id, pid_t pid, uint32_t arch, int is_at, int procdir,
			struct exec_info *info)
{
	int full = (long)execs_seen < max_exec_events;
	long ppid = -1, nspid = -1;
	if (full) {
		read_exec_argv(pid, arch, req->data.args, is_at, info);
		read_ppid(procdir, &ppid, &nspid);
	}
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
	emit_exec(pid, ppid, nspid, info);
}

/* Answers the pending notification with -err and records the denial (with why, if given). */
static void deny_and_record(pid_t pid, uint32_t arch, int nr, const char *name, int err,
			    const char *why)
{
	int full = (long)denials_seen++ < max_events;
	resp->error = -err;
	if (!full) {
		ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
		count_denial(name, pid);
		return;
	}
	/* Read the executable while the task still waits on us; it may exit right after. */
	char exe[PATH_MAX] = "", link[64];
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(link, exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = 0;
	long sid = read_cell_sid(pid);
	struct out o = { 0 };
	out_fmt(&o,
		"{\"type\":\"syscall.denied\",\"time\":%lld,\"pid\":%d,\"arch\":\"%s\",\"nr\":%d,"
		"\"name\":",
		now_ms(), (int)pid, arch_name(arch), nr);
	out_cstr(&o, name);
	out_fmt(&o, ",\"errno\":%d,\"cellSid\":%ld,\"exe\":", err, sid);
	out_cstr(&o, exe);
	if (why && *why) {
		out_raw(&o, ",\"detail\":", 10);
		out_cstr(&o, why);
	}
	out_raw(&o, "}", 1);
	/*
	 * The record goes out before the answer: the command cannot go on, end and have init
	 * report its end until it has the answer, so the supervisor always reads the denial no
	 * later than the end of the command it belongs to, and its note lands on that command's
	 * stderr (src/cell/denialNotes.ts). A denial costs one pipe write more of latency; allowed
	 * calls are not touched.
	 */
	emit(&o);
	ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
}

static void handle_denial(pid_t pid, uint32_t arch, int nr)
{
	const struct sysent *ent = lookup_syscall(arch, nr);
	deny_and_record(pid, arch, nr, ent ? ent->name : "unknown", ent ? ent->err : EPERM, NULL);
}

void handle_notification(void)
{
	memset(req, 0, sizes.seccomp_notif);
	if (ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
		if (errno != ENOENT && errno != EINTR)
			emit_error("seccomp notif recv: %s", strerror(errno));
		return;
	}
	int is_at;
	memset(resp, 0, sizes.seccomp_notif_resp);
	resp->id = req->id;
	static char why[PATH_MAX + 160];
	if (is_clone3(req->data.arch, req->data.nr)) {
		int err = clone3_check(req, why, sizeof(why));
		if (!err) {
			resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
			ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
		} else {
			deny_and_record((pid_t)req->pid, req->data.arch, req->data.nr, "clone3",
					err, why);
		}
		return;
	}
	/* Exec, mmap(PROT_EXEC) of a file and memfd_create first pass the exec allowlist's guard. */
	pid_t pid = (pid_t)req->pid;
	int exec = is_exec(req->data.arch, req->data.nr, &is_at), procdir = -1;
	static struct exec_info info;
	const char *exec_path = NULL;
	if (exec) {
		char p[32];
		snprintf(p, sizeof(p), "/proc/%d", (int)pid);
		procdir = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
		memset(&info, 0, sizeof(info));
		exec_path = read_exec_path(pid, req->data.args, is_at, &info) ? info.path : NULL;
	}
	int guard = execguard_check(notify_fd, req, procdir, exec_path, why, sizeof(why));
	if (guard > 0)
		deny_and_record(pid, req->data.arch, req->data.nr, execguard_call_name(req), guard,
				why);
	else if (exec)
		handle_exec(req->id, pid, req->data.arch, is_at, procdir, &info);
	else if (guard == EG_ALLOW) {
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
	} else if (guard != EG_ANSWERED)
		handle_denial(pid, req->data.arch, req->data.nr);
	if (procdir >= 0)
		close(procdir);
}
