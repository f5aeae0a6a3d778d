/* bench_clock.h — the clocks the C benchmarks time with, in seconds (header only; any
 * thread): wall time (CLOCK_MONOTONIC), the process's CPU time (user + system, all
 * threads) and the calling thread's. */
#ifndef SWARMFS_BENCH_CLOCK_H
#define SWARMFS_BENCH_CLOCK_H

#include <time.h>

static inline double bench_secs(clockid_t which)
{
	struct timespec ts;

	clock_gettime(which, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double bench_now(void)
{
	return bench_secs(CLOCK_MONOTONIC);
}

static inline double bench_cpu(void)
{
	return bench_secs(CLOCK_PROCESS_CPUTIME_ID);
}

static inline double bench_thread_cpu(void)
{
	return bench_secs(CLOCK_THREAD_CPUTIME_ID);
}

#endif
