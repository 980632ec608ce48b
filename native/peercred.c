/*
 * nanocell-peercred
 *
 * Prints the credentials of the peer of the unix stream socket on fd 3, as one line
 * `uid gid pid`. Node cannot read SO_PEERCRED; the control socket's server hands each
 * accepted connection to this helper as its fd 3 before it reads a byte from it. Not as its
 * stdin: libuv makes a child's fds 0-2 blocking, and the flag belongs to the open file, which
 * the server shares, so the server's own writes to that client would then block its loop.
 * SO_PEERCRED is what the kernel recorded when the peer called connect(), so it names the
 * process that connected, not whoever holds the fd later.
 */
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(3, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred)) {
		perror("nanocell-peercred: getsockopt(SO_PEERCRED) on fd 3");
		return 1;
	}
	if (printf("%u %u %d\n", cred.uid, cred.gid, cred.pid) < 0 || fflush(stdout) != 0)
		return 1;
	return 0;
}
