/*
 * The child side of an exec: between fork and execve, in the forked copy of init. It reports a
 * failure to start as an errno on a CLOEXEC pipe, so a successful execve closes the pipe and
 * tells the parent the command started.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "init.h"

void child_fail(int report_fd, int err)
{
	ssize_t ignored = write(report_fd, &err, sizeof(err));
	(void)ignored;
	_exit(127);
}

/* Errors after which execvp looks on in the next PATH entry. */
static int try_next_dir(int err)
{
	return err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV ||
	       err == ETIMEDOUT;
}

/* execvpe with the PATH of the request's environment, not init's. */
void child_exec(int report_fd, char **argv, char **envp)
{
	const char *file = argv[0];
	if (strchr(file, '/')) {
		execve(file, argv, envp);
		child_fail(report_fd, errno);
	}
	const char *path = "/usr/local/bin:/usr/bin:/bin";
	for (char **e = envp; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	int saw_eacces = 0, last = ENOENT;
	size_t flen = strlen(file);
	for (const char *p = path;; p++) {
		const char *end = strchr(p, ':');
		if (!end)
			end = p + strlen(p);
		size_t dlen = (size_t)(end - p);
		char full[PATH_MAX];
		if (dlen + flen + 2 <= sizeof(full)) {
			if (dlen == 0) {
				memcpy(full, file, flen + 1); /* empty entry = current directory */
			} else {
				memcpy(full, p, dlen);
				full[dlen] = '/';
				memcpy(full + dlen + 1, file, flen + 1);
			}
			execve(full, argv, envp);
			last = errno;
			if (errno == EACCES)
				saw_eacces = 1;
			else if (!try_next_dir(errno))
				child_fail(report_fd, errno);
		}
		if (!*end)
			break;
		p = end;
	}
	child_fail(report_fd, saw_eacces ? EACCES : last);
}
