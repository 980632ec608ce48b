/*
 * Declarations shared by the modules of nanocell-init. Each section names the file that owns
 * the state or the functions.
 */
#ifndef NANOCELL_INIT_H
#define NANOCELL_INIT_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "../protocol.h"

#define CTL_OUT_SOFT_LIMIT (256u << 10) /* stop reading command pipes above this */
#define PIPE_CHUNK	   (64u << 10)
#define STDIN_PAUSE_LIMIT                                                                          \
	(4u << 20)		/* stop reading fd 3 while a command's stdin backlog is this big */
#define DRAIN_BUDGET (1u << 20) /* bytes read from a pipe after its command was reaped */
#define MAX_BRIDGES  16

/* ---------- buf.c: growable byte buffer with a consumed prefix ---------- */

struct buf {
	char *data;
	size_t start, len, cap;
};

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);
void close_fd(int *fd);
int set_nonblock(int fd);

/* ---------- frames.c: the control channel ---------- */

extern struct buf ctl_out;

void put_u32(unsigned char *p, uint32_t v);
uint32_t get_u32(const unsigned char *p);
void send_frame(char type, uint32_t id, const void *payload, size_t len);
void send_u32(char type, uint32_t id, uint32_t v);
void send_text(char type, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void flush_blocking(void);
void require_ctl_fd(void);
void __attribute__((noreturn, format(printf, 1, 2))) fatal(const char *fmt, ...);
void read_ctl(void);
void write_ctl(void);

/* ---------- main.c: a warm cell's deferred Landlock ---------- */

/* Set while a warm cell waits for its claim: exec frames are refused until it is cleared. */
extern int landlock_pending;
void apply_deferred_landlock(void);

/* ---------- exec.c: commands ---------- */

struct exec {
	uint32_t id;
	pid_t pid;
	int in_fd, out_fd, err_fd; /* on a tty: in_fd and out_fd are the pty master, err_fd -1 */
	int tty;
	struct buf in;
	int in_eof_requested;
	int reaped;
	int status;
	size_t drain_left[2];
	struct exec *next;
};

extern struct exec *execs;

struct exec *find_exec(uint32_t id);
void start_exec(uint32_t id, const unsigned char *payload, uint32_t len);
void start_exec_tty(uint32_t id, const unsigned char *payload, uint32_t len);
void resize_exec(uint32_t id, const unsigned char *payload, uint32_t len);
void stdin_data(uint32_t id, const unsigned char *payload, uint32_t len);
void signal_exec(uint32_t id, const unsigned char *payload, uint32_t len);
void flush_stdin(struct exec *e);
void pump_pipe(struct exec *e, int which);
void reap_children(void);
int stdin_backlog_high(void);

/* ---------- tty.c: a pseudo-terminal of the cell's own devpts ---------- */

struct winsize;
int open_pty(const struct winsize *ws, int *master, int *slave);
int parse_winsize(const unsigned char *p, uint32_t len, struct winsize *ws);

/* ---------- spawn.c: the child side of an exec ---------- */

void __attribute__((noreturn)) child_fail(int report_fd, int err);
void __attribute__((noreturn)) child_exec(int report_fd, char **argv, char **envp);

/* ---------- shutdown.c: ending the cell ---------- */

extern int is_pid1;

void __attribute__((noreturn)) shutdown_cell(int code);

/* ---------- bridge.c: 127.0.0.1 listeners relayed to unix sockets ---------- */

struct bridge {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	unsigned port;
};

/* One direction of a relayed connection. Bytes go through a pipe with splice(), so they are
 * never copied through init's memory; if no pipe could be made (fd limit), through a buffer. */
struct half {
	int pipe[2];  /* -1 when copying through buf */
	size_t moved; /* bytes carried so far (until the pipe is grown) */
	int grown;    /* the pipe was enlarged for bulk transfer (or that failed) */
	char *buf;    /* RELAY_BUF bytes, copy mode only */
	size_t off;   /* copy mode: start of the unwritten bytes in buf */
	size_t len;   /* bytes read and not yet written (in the pipe or in buf) */
	int eof, wshut;
};

/* One relayed TCP connection: a = accepted TCP socket, b = unix socket to the supervisor. */
struct conn {
	int a, b;
	struct half ab, ba;
	struct conn *next;
};

extern struct bridge bridges[MAX_BRIDGES];
extern int nbridges;
extern struct conn *conns;

void parse_bridge(const char *spec);
void listen_bridges(void);
void accept_bridge(struct bridge *br);
void service_conn(struct conn *c, short a_rev, short b_rev);

/* ---------- relay.c: one direction of a connection ---------- */

int half_init(struct half *h);
void half_free(struct half *h);
int half_wants_read(const struct half *h);
int relay_half(int from, int to, struct half *h, int readable);

/* ---------- landlock.c ---------- */

enum ll_kind { LL_READ, LL_EXEC, LL_WRITE };
struct ll_rule {
	enum ll_kind kind;
	const char *path;
};

long ll_abi(void);
void apply_landlock(long abi, const struct ll_rule *rules, int nrules);

/* seccomp.c */
int parse_seccomp_bpf(const char *hex);
void reserve_notify_fd(void);
void install_seccomp(void);
void release_notify_fd(void);

/* ---------- attach.c: the control channel in a Kubernetes pod ---------- */

void control_listen_prepare(const char *path);
void control_listen_accept(void);
void __attribute__((noreturn)) run_attach(const char *path);

/* ---------- serve.c: the poll loop ---------- */

extern int sig_fd;

void __attribute__((noreturn)) serve(void);

#endif
