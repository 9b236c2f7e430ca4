/* procfd.h - how a test knows another process has reached a point (opened
 * its lock file) without guessing a delay. Shared by the cmocka tests
 * (tests/testutil.c) and the reliability programs (tests/reliability/rel.c);
 * neither framework is needed, so tests/procfd.c links into both. */
#ifndef PROCFD_H
#define PROCFD_H

#include <stdbool.h>
#include <sys/types.h>

/* Polls /proc/<pid>/fd for up to `seconds` until one of pid's descriptors
 * is path (absolute; resolved first, since the descriptor's link is);
 * false if none becomes so, or the process is gone. */
bool tu_wait_fd_open(pid_t pid, const char *path, double seconds);

#endif
