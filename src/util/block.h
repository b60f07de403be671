/*
 * "This thread is about to wait": a hint from code that is about to block
 * for a while (a network round trip, a wait for another thread's work) to
 * whoever runs the thread, so that it can let another thread take its role
 * first.  The mount's request loop uses it: one worker reads requests from
 * the kernel, and hands that role to an idle worker when the request it is
 * serving has to wait (src/mount/fuse_linux.c, "leader and followers").
 *
 * The hook is per thread; threads without one (the library's callers, the
 * stores' own threads) pay a thread-local load and a test.
 */
#ifndef CVFS_UTIL_BLOCK_H
#define CVFS_UTIL_BLOCK_H

struct cvfs_block_hook {
	void (*fn)(void *arg, int brief);
	void *arg;
};

extern _Thread_local struct cvfs_block_hook cvfs_tl_block;

/* A wait of unknown length (an S3 request, a wait for another thread). */
static inline void cvfs_about_to_block(void)
{
	if (cvfs_tl_block.fn)
		cvfs_tl_block.fn(cvfs_tl_block.arg, 0);
}

/* A wait known to be short (a round trip to a Redis server, tens of
 * microseconds): the role is handed on only if other work is waiting
 * already, since waking another thread costs about as much. */
static inline void cvfs_about_to_wait_briefly(void)
{
	if (cvfs_tl_block.fn)
		cvfs_tl_block.fn(cvfs_tl_block.arg, 1);
}

#endif
