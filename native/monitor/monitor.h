/*
 * Declarations shared by the modules of nanocell-monitor. Each section names the file that owns
 * the state or the functions.
 */
#ifndef NANOCELL_MONITOR_H
#define NANOCELL_MONITOR_H

#include <limits.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../protocol.h"

/* ---------- events.c: JSON lines on stdout ---------- */

struct out {
	char *p;
	size_t len, cap;
};

void out_raw(struct out *o, const char *s, size_t n);
void out_fmt(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void out_cstr(struct out *o, const char *s);
void emit(struct out *o);
void emit_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
long long now_ms(void);
long long mono_ms(void);

/* ---------- sync.c: event barriers the supervisor asks for on stdin ---------- */

extern int sync_fd;
void take_sync_fd(void);
void handle_sync(void);

/* ---------- syscalls.c: the syscall table and exec numbers ---------- */

struct sysent {
	uint32_t arch;
	int nr;
	int err;
	char name[48];
};

const char *arch_name(uint32_t arch);
int load_table(const char *path);
const struct sysent *lookup_syscall(uint32_t arch, int nr);
int is_exec(uint32_t arch, int nr, int *is_at);

/* ---------- taskmem.c: what a notified task is doing ---------- */

#define ARGV_MAX	 64
#define ARG_MAX_BYTES	 256
#define ARGV_TOTAL_BYTES 4096

struct exec_info {
	char path[PATH_MAX];
	int argc;
	char argv[ARGV_MAX][ARG_MAX_BYTES];
	int truncated;
};

ssize_t task_read(pid_t pid, uint64_t addr, void *out, size_t len);
ssize_t task_str(pid_t pid, uint64_t addr, char *out, size_t max);
/* 1 when the path the exec names was read whole (NUL-terminated), else 0. */
int read_exec_path(pid_t pid, const __u64 *args, int is_at, struct exec_info *info);
void read_exec_argv(pid_t pid, uint32_t arch, const __u64 *args, int is_at, struct exec_info *info);
/* From the task's /proc/PID directory fd, which names that task only (never a reused pid). */
void read_ppid(int procdir, long *ppid, long *nspid);
long read_cell_sid(pid_t pid);

/* ---------- notify.c: the seccomp agent ---------- */

extern int notify_fd;
extern long max_events, max_exec_events;

int notify_init(void);
void handle_notification(void);
void emit_summaries(void);

/* ---------- listener.c: runc's connection with the notify fd ---------- */

extern int listen_fd;
extern long init_pid;

int open_listener(const char *path);
void accept_listener(void);
void adopt_notify_fd(int fd);
/* Hands the proxy's socket over once (a no-op without --proxy-port or when already started). */
void start_proxy_port(void);
void close_listener(void);

/* ---------- initfd.c: the notify fd of the filter init installed ---------- */

extern int notify_from_init;

/* Tries to take it; returns the poll timeout (ms) to retry after, or -1 when not waiting. */
int poll_init_notify(void);

/* ---------- proxyport.c: the egress proxy's socket in the cell's netns ---------- */

extern int proxy_port;

int take_node_channel(void);
int hand_over_proxy_listener(long pid);
int handover_reaped(pid_t pid, int status);
int limits_reaped(pid_t pid, int status);

/* ---------- netns.c: transparent capture in the cell's netns ---------- */

/* The transparent listeners' port on the cell's loopback (src/net/capture.ts holds the same). */
#define CAPTURE_TCP_PORT 3129

extern const char *capture_rules, *capture_nft;

const char *capture_setup(void);
int transparent_listener(int family, int port);
int loopback_udp(int family, int port);

/* ---------- nflog.c: dropped packets as events ---------- */

extern int nflog_fd;

int nflog_open(void);
void nflog_read(void);
void nflog_summary(void);

/* ---------- clone3.c: namespace flags of clone3, read from the task ---------- */

int is_clone3(uint32_t arch, int nr);
/* 0 to let it continue, or EPERM with `why` saying which flags were refused. */
int clone3_check(const struct seccomp_notif *req, char *why, size_t why_len);

/* ---------- nslimits.c: no new namespaces under the cell's user namespace ---------- */

int limit_cell_namespaces(long pid);

/* ---------- runtime.c: the runtime process, init's exit, shutdown ---------- */

extern int runtime_exited, runtime_status, init_reaped;
extern const char *pid_file;

int start_runtime(char **argv, const sigset_t *mask);
void reap(int flags);
void check_init_gone(void);
void __attribute__((noreturn)) cleanup_and_exit(int code);
void __attribute__((noreturn)) terminate(void);

#endif
