/*
 * nanocell-peercred
 *
 * Prints the credentials of the peer of the unix stream socket on fd 0 as "pid uid gid\n".
 * `nanocell serve` hands each accepted connection to it: Node has no getsockopt, and
 * SO_PEERCRED is what the kernel itself vouches for (the peer's credentials at connect).
 */
#include <stdio.h>
#include <sys/socket.h>

int main(void)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(0, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
		perror("nanocell-peercred: getsockopt(SO_PEERCRED) on fd 0");
		return 1;
	}
	printf("%d %u %u\n", (int)cred.pid, (unsigned)cred.uid, (unsigned)cred.gid);
	return fflush(stdout) == 0 ? 0 : 1;
}
