/*
 * execguard: the monitor's half of the exec allowlist. Landlock refuses execve outside
 * exec.allow and noexec mounts refuse mmap(PROT_EXEC), but neither says so anywhere; and
 * neither stops code from memory files. For the calls the seccomp filter routes here (execve,
 * execveat, mmap with PROT_EXEC of a file, memfd_create) this decides what the kernel would
 * refuse, refuses it with a reason the monitor records, and hands out memfds that are sealed
 * non-executable.
 */
#ifndef NANOCELL_EXECGUARD_H
#define NANOCELL_EXECGUARD_H
#include <linux/seccomp.h>
#include <stddef.h>

/* Not a call execguard looks at. */
#define EG_NOT_MINE (-1)
/* Allowed: answer with CONTINUE (execs are still recorded by the monitor). */
#define EG_ALLOW    0
/* execguard answered the call itself (a memfd was installed). */
#define EG_ANSWERED (-2)

/* A path (as the cell sees it) that exec.allow grants; call before the first notification. */
void execguard_allow(const char *path);

/*
 * Returns EG_NOT_MINE, EG_ALLOW, EG_ANSWERED, or an errno to refuse the call with; on a
 * refusal `why` holds one line saying what was refused and why. For an exec, `procdir` is the
 * task's /proc/PID directory and `exec_path` the path it names (NULL if unreadable); other
 * calls ignore both.
 */
int execguard_check(int notify_fd, const struct seccomp_notif *req, int procdir,
		    const char *exec_path, char *why, size_t why_len);

/* The name of a call execguard looks at ("" for others), for the denial record. */
const char *execguard_call_name(const struct seccomp_notif *req);

#endif
