/*
 * The cell's seccomp filter, installed by init on itself: the supervisor compiles the profile
 * into classic BPF (src/seccomp/bpf.ts) and passes it as hex, so the filter carries a rule for
 * every syscall nanocell's tables know, whatever the runtime's libseccomp can name. The filter's
 * listener stays at NC_NOTIFY_FD, close-on-exec, until the monitor has duplicated it with
 * pidfd_getfd; the supervisor sends its first frame only after the monitor reported that, so
 * init closes its copy then (release_notify_fd). From then the monitor holds the only copy: if
 * it dies, the kernel fails every notified call with ENOSYS (fail closed).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

#define MAX_BPF_INSNS 4096

static struct sock_filter prog[MAX_BPF_INSNS];
static unsigned short prog_len;
static int holding;

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Parsed with the other arguments: a malformed program ends init before anything acts. */
int parse_seccomp_bpf(const char *hex)
{
	size_t n = strlen(hex);
	if (n == 0 || n % 16 != 0 || n / 16 > MAX_BPF_INSNS)
		return -1;
	unsigned char *bytes = (unsigned char *)prog;
	for (size_t i = 0; i < n; i += 2) {
		int a = hex_digit(hex[i]), b = hex_digit(hex[i + 1]);
		if (a < 0 || b < 0)
			return -1;
		bytes[i / 2] = (unsigned char)(a << 4 | b);
	}
	/* struct sock_filter is u16 code, u8 jt, u8 jf, u32 k: the little-endian layout the
	 * compiler writes, on the little-endian architectures nanocell supports. */
	prog_len = (unsigned short)(n / 16);
	return 0;
}

/* Before init opens anything: NC_NOTIFY_FD holds /dev/null until the listener replaces it, so
 * no other fd of init lands on that number and is clobbered. The monitor takes only an fd that
 * is a seccomp listener, so it never mistakes the placeholder for one. */
void reserve_notify_fd(void)
{
	if (prog_len == 0)
		return;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (fd != NC_NOTIFY_FD && dup3(fd, NC_NOTIFY_FD, O_CLOEXEC) < 0))
		fatal("seccomp listener placeholder: %s", strerror(errno));
	if (fd != NC_NOTIFY_FD)
		close(fd);
}

void install_seccomp(void)
{
	if (prog_len == 0)
		return;
	struct sock_fprog fprog = { .len = prog_len, .filter = prog };
	/* no_new_privs is set by the runtime (process.noNewPrivileges), which is what lets an
	 * unprivileged process install a filter. */
	int fd = (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
			      SECCOMP_FILTER_FLAG_NEW_LISTENER, &fprog);
	if (fd < 0)
		fatal("seccomp filter: %s", strerror(errno));
	if (fd != NC_NOTIFY_FD) {
		if (dup3(fd, NC_NOTIFY_FD, O_CLOEXEC) < 0)
			fatal("seccomp listener: %s", strerror(errno));
		close(fd);
	}
	holding = 1;
}

void release_notify_fd(void)
{
	if (!holding)
		return;
	close(NC_NOTIFY_FD);
	holding = 0;
}
