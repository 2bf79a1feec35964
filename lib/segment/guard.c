/*
 * guard.c - a shrunk segment kills no process: the SIGBUS guard.
 *
 * The threat. The segment is a POSIX shm object that every process of its
 * group opens read-write, and any of them can ftruncate(2) it. Pages past
 * the new end are gone: a load or a store there raises SIGBUS, whose
 * default action kills the process. Every worker and vrld touch those
 * pages on every call, so one truncate would kill the whole pool and vrld.
 *
 * Why a shrink is made harmless rather than impossible. Linux forbids a
 * shrink only on a memfd sealed with F_SEAL_SHRINK. A memfd has no name:
 * workers would have to receive it from vrld over a socket, and it lives
 * only while some process holds it. vrl's segment must outlive vrld
 * (workers keep acquiring while vrld restarts, and a restarted vrld adopts
 * it with every counter) and be opened by name by tools and tests; no mode
 * or attribute of a tmpfs file lets the group map it shared and writable
 * yet not truncate it. So vrl makes the shrink harmless, as
 * libwayland-server does for its clients' shm buffers:
 *
 *   - Each process that maps a segment (libvrl at vrl_open, vrld when it
 *     opens one) installs one SIGBUS handler and registers each mapping
 *     here: address, length, protection and a damage word.
 *   - On SIGBUS the handler looks the fault address up. Inside a registered
 *     mapping, it maps anonymous zero pages over the whole mapping
 *     (MAP_FIXED: the range never stops being mapped, so no other thread of
 *     the process can fault on it), marks the mapping damaged and returns;
 *     the faulting instruction runs again, on a zero page. Anywhere else,
 *     or a SIGBUS sent with kill(2), goes to the handler that was installed
 *     before, or to the default action: the process dies as it would have.
 *   - Every call through a mapping reads its damage word before its work
 *     and after it (client.c: enter, leave). A call during which the word
 *     moved fails with VRL_ECORRUPT, whatever it computed: a grant made on
 *     zero pages is never reported as one.
 *   - A damaged mapping heals once the object has its size again: the next
 *     call fstat()s the descriptor its handle kept, maps the object over
 *     the zero pages again (MAP_FIXED) and checks the magic before it
 *     trusts it. vrld owns the object and puts the size back at its next
 *     tick (it fstat()s it every tick); it clears the magic first and sets
 *     it again only once it has rebuilt what the cut wiped (header, config,
 *     window rings, a checkpoint's counters), so no worker heals into a
 *     half-rebuilt segment. What lay past the cut and is not checkpointed
 *     is lost, as after a reboot without a checkpoint.
 *
 * The damage word of a mapping is even while it shows the segment and odd
 * while zero pages stand in for it. The handler makes an even word odd
 * (+1) and an odd one odd again (+2), so it always moves: a heal that began
 * before a new fault sees the word change and does not call a mapping of
 * zero pages healthy (it CASes the odd value it started from to the next
 * even one, after its remap and its check).
 *
 * Async-signal safety: the handler touches only this file's static table
 * (lock-free atomics), the raw mmap system call (no libc or sanitizer
 * wrapper), and, to chain, the previous handler, sigaction and raise.
 *
 * The handler goes in when a process first maps a segment, over whatever
 * handler was there (which it chains to), and again at a later mapping if
 * something has reset SIGBUS to its default since (a forked child, a test
 * runner). It never goes over a handler installed after it, which might
 * chain back to it. Such a handler, installed after vrl_open(), must chain
 * to the one it replaces, as this one does, or a shrunk segment kills the
 * process as before.
 */
#include "guard.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "segment.h"
#include "vrl.h"

#define CLAIMED ((uintptr_t)1)   /* an entry being filled in */

static struct vrl_guard guards[VRL_GUARD_MAX];
static struct sigaction previous;     /* the handler ours chains to */
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static bool installed;                /* ours went in once in this process */

/* Make @g's word odd and different: damaged, and a heal in progress sees it. */
static void mark(struct vrl_guard *g)
{
	uint64_t d = atomic_load_explicit(&g->damage, memory_order_relaxed);

	/* relaxed: the word is process-local and orders nothing else; the
	 * callers' comparisons only need to see that it moved */
	while (!atomic_compare_exchange_weak_explicit(&g->damage, &d, d + (d & 1u ? 2u : 1u),
						      memory_order_relaxed, memory_order_relaxed))
		;
}

static struct vrl_guard *lookup(uintptr_t addr)
{
	for (unsigned i = 0; i < VRL_GUARD_MAX; i++) {
		/* acquire: pairs with vrl_guard_add's release, len is set */
		uintptr_t b = atomic_load_explicit(&guards[i].base, memory_order_acquire);

		if (b > CLAIMED && addr >= b &&
		    addr - b < atomic_load_explicit(&guards[i].len, memory_order_relaxed))
			return &guards[i];
	}
	return NULL;
}

/* Hand the signal to whoever had it before, or die of it as by default. */
static void chain(int sig, siginfo_t *si, void *uc)
{
	if (previous.sa_flags & SA_SIGINFO) {
		previous.sa_sigaction(sig, si, uc);
		return;
	}
	if (previous.sa_handler == SIG_IGN && si->si_code <= 0)
		return;   /* a sent SIGBUS that was ignored stays ignored */
	if (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN) {
		/* pending until we return (SIGBUS is blocked in its handler),
		 * then the default action: the process ends as without vrl */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	previous.sa_handler(sig);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	struct vrl_guard *g = si->si_code > 0 ? lookup((uintptr_t)si->si_addr) : NULL;

	if (g) {
		long r = syscall(SYS_mmap, atomic_load_explicit(&g->base, memory_order_relaxed),
				 atomic_load_explicit(&g->len, memory_order_relaxed),
				 PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				 -1, 0L);

		if (r != -1) {
			mark(g);
			errno = saved;
			return;
		}
	}
	errno = saved;
	chain(sig, si, uc);
}

static void install(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus,
				.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART };
	struct sigaction cur;

	pthread_mutex_lock(&install_lock);
	/* over whatever is there the first time; later only over the default
	 * (a handler installed since chains to ours, or is the program's
	 * choice: going over it could make the two chain to each other) */
	if (sigaction(SIGBUS, NULL, &cur) == 0 &&
	    (!installed || (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL))) {
		sigemptyset(&sa.sa_mask);
		previous = cur;
		if (sigaction(SIGBUS, &sa, NULL) == 0)
			installed = true;
	}
	pthread_mutex_unlock(&install_lock);
}

struct vrl_guard *vrl_guard_add(void *base, size_t len, int prot)
{
	install();
	for (unsigned i = 0; i < VRL_GUARD_MAX; i++) {
		struct vrl_guard *g = &guards[i];
		uintptr_t free = 0;

		/* relaxed: the entry is published by the release below */
		if (!atomic_compare_exchange_strong_explicit(&g->base, &free, CLAIMED,
							     memory_order_relaxed,
							     memory_order_relaxed))
			continue;
		atomic_store_explicit(&g->len, len, memory_order_relaxed);
		atomic_store_explicit(&g->prot, prot, memory_order_relaxed);
		atomic_store_explicit(&g->damage, 0, memory_order_relaxed);
		/* release: pairs with lookup's acquire, len is set first */
		atomic_store_explicit(&g->base, (uintptr_t)base, memory_order_release);
		return g;
	}
	return NULL;
}

void vrl_guard_remove(struct vrl_guard *g)
{
	/* release: pairs with the SIGBUS handler's acquire load of base; a
	 * handler that sees 0 no longer maps over this range */
	if (g)
		atomic_store_explicit(&g->base, 0, memory_order_release);
}

void vrl_guard_damage(struct vrl_guard *g)
{
	mark(g);
}

bool vrl_guard_healed(struct vrl_guard *g, uint64_t state)
{
	/* relaxed: as mark(); a fault since @state made the word move */
	return vrl_guard_damaged(state) &&
	       atomic_compare_exchange_strong_explicit(&g->damage, &state, state + 1,
						       memory_order_relaxed, memory_order_relaxed);
}

/* Map the object over the mapping again, as far as the object reaches. */
static int remap(struct vrl_guard *g, int fd, uint64_t need)
{
	uintptr_t base = atomic_load_explicit(&g->base, memory_order_relaxed);
	size_t len = atomic_load_explicit(&g->len, memory_order_relaxed);
	long page = sysconf(_SC_PAGESIZE);
	struct stat st;
	uint64_t have;

	if (fd < 0 || base <= CLAIMED || fstat(fd, &st) != 0 || st.st_size < 0 ||
	    (uint64_t)st.st_size < need)
		return VRL_ECORRUPT;
	have = ((uint64_t)st.st_size + (uint64_t)page - 1) / (uint64_t)page * (uint64_t)page;
	if (have < len)
		len = (size_t)have;   /* the rest stays zero pages, past what is used */
	if (mmap((void *)base, len, atomic_load_explicit(&g->prot, memory_order_relaxed),
		 MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
		return VRL_ECORRUPT;
	return 0;
}

int vrl_guard_heal(struct vrl_guard *g, int fd, uint64_t need, bool check)
{
	uint64_t d = vrl_guard_state(g);
	const struct vrl_seg_header *h;

	if (!vrl_guard_damaged(d))
		return 0;
	if (remap(g, fd, need) != 0)
		return VRL_ECORRUPT;
	if (!check)
		return 0;
	h = (const struct vrl_seg_header *)atomic_load_explicit(&g->base, memory_order_relaxed);
	/* acquire: pairs with vrld's release of the magic after its repair,
	 * which then is all there (this load may fault: the word moves) */
	if (atomic_load_explicit((const _Atomic uint64_t *)&h->magic, memory_order_acquire) !=
	    VRL_SEG_MAGIC)
		return VRL_ECORRUPT;
	return vrl_guard_healed(g, d) ? 0 : VRL_ECORRUPT;
}
