/* nanocell-forkserver's parts (main.c: requests, children, the loop; wire.c: the channel). */
#ifndef NANOCELL_FORKSERVER_H
#define NANOCELL_FORKSERVER_H
#include <errno.h>
#include <fcntl.h>
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
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LINE   (8 << 20)
#define MAX_FDS	   8
#define MAX_ARGS   (256 * 1024) /* execve's own bound (ARG_MAX) comes first */
#define MAX_CHILDS 4096
#define MAX_IPC	   2048

/* Node's IPC channel to the supervisor, and the supervisor's pid. */
extern int channel;
extern pid_t supervisor;

struct child {
	pid_t pid;
	unsigned long id;
	int ipc; /* our end of its 'i' socket, or -1 */
};

extern struct child children[MAX_CHILDS];

void send_line(const char *line, size_t len, int fd);
void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
ssize_t b64_decode(char *s, size_t n);
char *field(char **p, char *end);
int relay(struct child *c, int flags);

#endif
