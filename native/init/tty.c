/*
 * A pseudo-terminal for a `T` exec, allocated inside the cell: /dev/ptmx is the cell's own
 * devpts instance (newinstance), so the command never holds a terminal of the host. The slave
 * is opened from the master with TIOCGPTPEER, which needs no path under /dev/pts and cannot be
 * raced by another process of the cell opening /dev/pts/N first.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "init.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

/* Window sizes are u16 in the kernel; larger values are a protocol error. */
int parse_winsize(const unsigned char *p, uint32_t len, struct winsize *ws)
{
	if (len < NC_TTY_HEADER_BYTES)
		return EINVAL;
	uint32_t cols = get_u32(p), rows = get_u32(p + 4);
	if (cols > 0xffff || rows > 0xffff)
		return EINVAL;
	*ws = (struct winsize){ .ws_col = (unsigned short)cols, .ws_row = (unsigned short)rows };
	return 0;
}

/* Returns 0 with both ends open (CLOEXEC), or an errno with neither. */
int open_pty(const struct winsize *ws, int *master, int *slave)
{
	*master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*master < 0)
		return errno;
	int unlock = 0;
	if (ioctl(*master, TIOCSPTLCK, &unlock) < 0 || ioctl(*master, TIOCSWINSZ, ws) < 0)
		goto fail;
	*slave = ioctl(*master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*slave < 0)
		goto fail;
	return 0;
fail:;
	int err = errno;
	close_fd(master);
	return err;
}
