/*
 * tsan.h - telling ThreadSanitizer about RCU grace periods.
 *
 * TSan does not see liburcu's grace periods (they are made of its own
 * fences and membarrier), so it would take the free of an object that RCU
 * retired for a race with the readers that used it. A reader releases
 * before it leaves its read-side section, and the callback that frees
 * after the grace period acquires the same address: the order RCU
 * guarantees, told to TSan. Both are no-ops in other builds.
 */
#ifndef VRL_TSAN_H
#define VRL_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define VRL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VRL_TSAN 1
#endif
#endif

#ifdef VRL_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define tsan_acquire(p) __tsan_acquire(p)
#define tsan_release(p) __tsan_release(p)
#else
#define tsan_acquire(p) ((void)(p))
#define tsan_release(p) ((void)(p))
#endif

#endif /* VRL_TSAN_H */
