/* The native front's shared pieces: the wire (request.c) and the process (main.c). */
#ifndef NANOCELL_FRONT_H
#define NANOCELL_FRONT_H

#include <stddef.h>

/* Owners of these facts: src/cell/remote/protocol.ts (version, line cap), src/cell/state.ts
 * (the socket's name), src/server/cliRun.ts (the frame kinds). test/integration/server/front
 * checks the front against them. */
#define PROTOCOL_VERSION 2
#define MAX_LINE_BYTES	 (8 * 1024 * 1024)
#define SOCKET_NAME	 "nanocell.sock"
#define FRAME_STDOUT	 'o'
#define FRAME_STDERR	 'e'
#define FRAME_EXIT	 'x'
#define FRAME_FALLBACK	 'f'
#define FRAME_STARTED	 's'
#define EXIT_NANOCELL	 125
/* Raw stdin bytes per input line: its base64 stays far below the line cap. */
#define STDIN_CHUNK	 (48 * 1024)

/* A growing byte string: a request or input line. */
struct buf {
	char *p;
	size_t len, cap;
};

/* main.c */
void __attribute__((noreturn)) node_cli(void);
extern const char *sock_path_for_errors;

/* request.c */
void put(struct buf *b, const char *s, size_t n);
void puts_(struct buf *b, const char *s);
void put_base64(struct buf *b, const unsigned char *s, size_t n);
int write_all(int fd, const void *p, size_t n);
int read_exact(int fd, void *p, size_t n);
void __attribute__((noreturn)) server_gone(void);
void send_line(int sock, struct buf *b);
void send_input(int sock, const char *type, const char *rest);
void send_request(int sock, char **args);

#endif
