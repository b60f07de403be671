/*
 * The mount adapter: the only code that knows FUSE.  Linux's libfuse3
 * low-level API; a macFUSE or WinFsp adapter would implement this header.
 */
#ifndef CVFS_MOUNT_H
#define CVFS_MOUNT_H

#include <stdint.h>

#include "core/core.h"

struct cvfs_mount_opts {
	const char *mountpoint;
	int readonly;
	int allow_other;
	int debug;
	double cache_timeout;  /* entry/attr/negative timeout, seconds (< 0: default) */
	int writeback;         /* kernel writeback cache: 1 on, 0 off, -1 default (off) */
	const char *fsname;    /* shown in /proc/mounts; default "chuk-vfs" */
	const char *fuse_opts; /* extra -o options for FUSE, comma-separated, or NULL */
	int set_uid, set_gid, set_umask; /* present every file with these */
	uint32_t uid, gid, umask;
	int threads;           /* worker threads; 0 = default (1 for local stores, 8 for shared) */
	int spin_us;           /* poll for the next request this long before sleeping; -1 default */
	int cpu_poll_ms;       /* keep idle CPUs polling while busy, off after this idle time;
	                        * 0 off, -1 default (see HACKING.md) */
	int handoff;           /* one worker reads the device and hands it on when its
	                        * request waits: 1 on, 0 off, -1 default (on) */
	int drop_negative;     /* drop the dentries of unlinked names: 1, 0, -1 default (on) */
};

struct cvfs_mount;

/* Mounts fs at o->mountpoint.  On failure returns -errno and a readable
 * message in *errmsg (malloc'd).  fs stays the caller's. */
int cvfs_mount_new(struct cvfs_fs *fs, const struct cvfs_mount_opts *o, struct cvfs_mount **out,
		   char **errmsg);
/* Serves requests until unmounted or cvfs_mount_exit; SIGINT, SIGTERM and
 * SIGHUP end it when install_signals was set. */
int cvfs_mount_loop(struct cvfs_mount *m, int install_signals);
/* Asks a running loop to stop (any thread, async-signal-safe enough). */
void cvfs_mount_exit(struct cvfs_mount *m);
/* Ends a running loop from another thread: unmounts (lazily if busy), so
 * every worker's read fails and cvfs_mount_loop returns. */
void cvfs_mount_unmount(struct cvfs_mount *m);
/* Unmounts (if still mounted) and frees. */
void cvfs_mount_free(struct cvfs_mount *m);

/* Mount point checks before mounting: clears a dead FUSE mount ("Transport
 * endpoint is not connected"), refuses a live mount or a non-directory, and
 * creates the directory if missing.  -errno and *errmsg on failure. */
int cvfs_mount_prepare(const char *mountpoint, char **errmsg);
/* Detaches from the terminal (after a successful mount), chdir("/"). */
int cvfs_mount_daemonize(void);
int cvfs_mount_fuse_version(void);
#endif
