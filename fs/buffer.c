/* Buffers for bulk I/O (see buffer.h). */
#include "buffer.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE_PAGE (2U << 20)

uint8_t *fs_buffer_new(size_t len)
{
	void *p;

	if (posix_memalign(&p, len >= HUGE_PAGE ? HUGE_PAGE : FS_DIRECT_ALIGN, len ? len : 1) != 0)
		return NULL;
#ifdef MADV_HUGEPAGE
	if (len >= HUGE_PAGE)
		madvise(p, len / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE); /* advice: may fail */
#endif
	return p;
}

struct thread_buf {
	uint8_t *p;
	size_t cap;
};

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int key_err;

static void thread_buf_free(void *v)
{
	struct thread_buf *b = v;

	free(b->p);
	free(b);
}

static void key_make(void)
{
	key_err = pthread_key_create(&key, thread_buf_free);
}

uint8_t *fs_buffer_thread(size_t len)
{
	struct thread_buf *b;

	if (pthread_once(&once, key_make) != 0 || key_err)
		return NULL;
	if (!(b = pthread_getspecific(key))) {
		if (!(b = calloc(1, sizeof *b)))
			return NULL;
		if (pthread_setspecific(key, b) != 0) {
			free(b);
			return NULL;
		}
	}
	if (b->cap < len) {
		uint8_t *p = fs_buffer_new(len);

		if (!p)
			return NULL;
		free(b->p);
		b->p = p;
		b->cap = len;
	}
	return b->p;
}
