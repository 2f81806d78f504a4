/* macro.h: small helpers for ownership and cleanup, shared by every part.
 *
 * _cleanup_(fn) runs fn(&var) when var leaves scope. DEFINE_TRIVIAL_CLEANUP
 * makes a typep_freep() for a destructor that accepts NULL. When ownership
 * moves, take it with TAKE_PTR()/TAKE_FD() so the cleanup sees NULL/-1. */
#pragma once
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define DEFINE_TRIVIAL_CLEANUP(type, fn)                                    \
	static inline void fn##p(type *p)                                    \
	{                                                                    \
		if (*p)                                                      \
			(void)fn(*p);                                        \
	}

#define TAKE_PTR(p)                                                         \
	({                                                                   \
		__typeof__(p) _p_ = (p);                                     \
		(p) = NULL;                                                  \
		_p_;                                                         \
	})
#define TAKE_FD(fd)                                                         \
	({                                                                   \
		int _fd_ = (fd);                                             \
		(fd) = -1;                                                   \
		_fd_;                                                        \
	})

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Closes an fd keeping errno, so it can sit on an error path. Returns -1. */
static inline int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -1;
}
static inline void closep(int *fd)
{
	safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)
