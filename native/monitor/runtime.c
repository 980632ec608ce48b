/*
 * The runtime process and the cell's init: the monitor forks the runtime (`runc run --detach`),
 * and as child subreaper inherits init once the runtime exits. It reports both exits and, on
 * a stop signal, kills both: init's death takes its whole pid namespace down.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor.h"

int runtime_exited, runtime_status, init_reaped;
const char *pid_file;
static pid_t runtime_pid = -1;

static int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int start_runtime(char **argv, const sigset_t *mask)
{
	runtime_pid = fork();
	if (runtime_pid < 0) {
		emit_error("fork: %s", strerror(errno));
		return -1;
	}
	if (runtime_pid == 0) {
		sigprocmask(SIG_SETMASK, mask, NULL);
		signal(SIGPIPE, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, 0);
		execvp(argv[0], argv);
		fprintf(stderr, "nanocell-monitor: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return 0;
}

/* When no listener connection said which pid init has (a runtime that passes no seccomp fd),
 * the runtime's pid file does. */
static void read_pid_file(void)
{
	if (init_pid > 0 || !pid_file)
		return;
	FILE *f = fopen(pid_file, "re");
	if (!f)
		return;
	long v;
	if (fscanf(f, "%ld", &v) == 1 && v > 0)
		init_pid = v;
	fclose(f);
}

static void on_init_exit(int status_code)
{
	init_reaped = 1;
	struct out o = { 0 };
	out_fmt(&o, "{\"type\":\"init.exited\",\"status\":%d}", status_code);
	emit(&o);
}

void reap(int flags)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, flags);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		if (handover_reaped(pid, status) || limits_reaped(pid, status))
			continue;
		if (pid == runtime_pid) {
			runtime_exited = 1;
			runtime_status = exit_code(status);
			struct out o = { 0 };
			out_fmt(&o, "{\"type\":\"runtime.exited\",\"status\":%d}", runtime_status);
			emit(&o);
			read_pid_file();
			if (init_pid > 0 && runtime_status == 0)
				start_proxy_port();
		} else if (init_pid > 0 && pid == init_pid && !init_reaped) {
			on_init_exit(exit_code(status));
		}
	}
}

/* If the runtime reaped init itself (it died before runc exited), init never reaches us. */
void check_init_gone(void)
{
	if (runtime_exited && init_pid > 0 && !init_reaped && kill((pid_t)init_pid, 0) < 0 &&
	    errno == ESRCH)
		on_init_exit(-1);
}

void cleanup_and_exit(int code)
{
	emit_summaries();
	close_listener();
	_exit(code);
}

void terminate(void)
{
	if (init_pid > 0 && !init_reaped)
		kill((pid_t)init_pid, SIGKILL);
	if (runtime_pid > 0 && !runtime_exited)
		kill(runtime_pid, SIGKILL);
	/* Everything left is ours to reap; init's death takes its whole pid namespace down. */
	reap(0);
	check_init_gone();
	cleanup_and_exit(0);
}
