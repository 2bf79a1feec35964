/*
 * handle.c - a handle's life: open, close, fork, its holder record and the
 * SIGBUS guard of its mapping.
 *
 * Trust. Processes of the segment's group can write every byte of it, and
 * a buggy or hostile one may. A handle therefore reads the header's layout
 * words once, at vrl_open(), into private memory, validates that copy
 * (vrl_seg_validate), and from then on reaches every area (key table,
 * holders, events, marks, config areas, window rings) through it:
 * struct vrl_client.view. Config snapshots are private, checked copies
 * too (snapshot.c). What a handle reads from the segment afterwards is
 * data (tags, state words, ring positions and links, notes), and every
 * index taken from data is bounded by the private layout before it is
 * used. A corrupted header word therefore cannot move a handle's reads or
 * writes, and the hot path makes no per-call check of the layout words (it
 * was ten loads of the header per call and guarded nothing the view does
 * not): a changed word matters only to a later vrl_open(), which refuses
 * it, and vrld puts it back at its next tick (vrl_seg_restore_header).
 *
 * Process slots: after its grant, a handle records each process-bound
 * slots key it took in its holder record (segment.h, struct vrl_seg_hold),
 * and unrecords it before a release, so that vrld can give back the units
 * of a process that died. Recording after the CAS means a crash between the
 * two leaks those units (the count stays high: capacity is lost until an
 * operator resets the key), never gives them back twice. A handle without a
 * holder slot, or whose VRL_HOLD_MAX entries are in use by other keys, holds
 * its units unrecorded, with the same bound.
 *
 * Liveness of a holder (HOLD.L). vrld gives back the slots of a holder
 * whose process is gone; a pid cannot say so for a worker in another PID
 * namespace (a container sharing /dev/shm): the pid it writes is its own
 * namespace's, which vrld's may give to no process (a live holder's units
 * given back: an over-grant) or to another. So the owner of record i
 * holds an OFD write lock (fcntl F_OFD_SETLK) on byte
 * VRL_HOLDER_LOCK_BASE + i of the segment file, through its handle's own
 * open file description, and sets VRL_HOLDER_LOCKED in the pid word; vrld
 * reads the lock (F_OFD_GETLK), which the kernel drops when the last
 * descriptor of that description closes, at exit or at any death, in any
 * namespace. The steps:
 *   L1 the lock is taken before the CAS that publishes the pid word, and
 *      dropped after the store of 0 that frees the record: while the word
 *      names the owner with VRL_HOLDER_LOCKED, its lock is held. A lock
 *      refused (another handle holds byte i) skips record i, whose owner
 *      is alive; a CAS lost drops the lock again.
 *   L2 a forked child shares its parent's description, and so its locks:
 *      before it takes a record of its own, it opens a description of its
 *      own (shm_open again, the same file by device and inode) and drops
 *      the inherited one, so each record's lock lives exactly as long as
 *      its owner's description. Until a child's first call, the parent's
 *      record lives as long as the child too: kept longer, never given
 *      back early. When no description of its own can be had (the
 *      segment was replaced), the record is taken without a lock and
 *      vrld judges it by its pid, as before.
 *   L3 vrld, which alone reaps, first moves a dead owner's word to
 *      VRL_HOLDER_REAPING by CAS (sweep.c): a record freed and taken
 *      again between vrld's read and its give-back fails that CAS, so the
 *      slots of a new owner are never given back for an old one.
 *
 * Counters: a holder's grants and denials (totals and per limit) are folded
 * into the header as the handle goes, at vrl_close() or when vrld reaps its
 * dead process (vrl_holder_fold), so that views count every handle of the
 * config in force, not only those attached. Each counter is exchanged with
 * 0 before it is added: a crash in between loses counts, never doubles
 * them. They are figures for views: no grant reads them (Invariant 1 does
 * not depend on them), and the per-limit words take a relaxed CAS loop that
 * a dead process cannot leave half-done.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"

/* ---- time and fork --------------------------------------------------------- */

uint64_t vrl_now_ns(void)
{
	return vrl_mono_ns();
}

_Atomic uint64_t vrl__fork_epoch = 1;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
	atomic_fetch_add_explicit(&vrl__fork_epoch, 1, memory_order_relaxed);
}

static void install_fork_handler(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

/* ---- holders (per-handle counters) ------------------------------------------ */

/* The per-limit counters of @h start over, for config @generation. */
static void holder_reset_limits(struct vrl_seg_holder *h, uint64_t generation)
{
	for (unsigned j = 0; j < VRL_MAX_LIMITS; j++) {
		atomic_store_explicit(&h->limit_granted[j], 0, memory_order_relaxed);
		atomic_store_explicit(&h->limit_denied[j], 0, memory_order_relaxed);
		atomic_store_explicit(&h->limit_shadow[j], 0, memory_order_relaxed);
		atomic_store_explicit(&h->limit_cooldowns[j], 0, memory_order_relaxed);
		atomic_store_explicit(&h->limit_wait_ns[j], 0, memory_order_relaxed);
	}
	atomic_store_explicit(&h->config_gen, generation, memory_order_relaxed);
}

void vrl__holder_new_config(struct vrl_client *c, uint64_t generation)
{
	if (c->holder)
		holder_reset_limits(c->holder, generation);
}

/* Lock (F_WRLCK) or unlock (F_UNLCK) the byte of holder record @i through
 * the handle's description (HOLD.L). 0, or -errno. */
static int holder_lock(const struct vrl_client *c, uint64_t i, short type)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = (off_t)(VRL_HOLDER_LOCK_BASE + (int64_t)i),
		.l_len = 1,
	};

	return fcntl(c->fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

/* HOLD.L2: after fork(), a description of the child's own. Whether the
 * handle's description is this process's own. */
static bool own_description(struct vrl_client *c)
{
	struct stat was, now;
	int fd;

	if (c->fd_pid == getpid())
		return true;
	fd = shm_open(c->name, O_RDWR, 0);
	if (fd < 0)
		return false;
	if (fstat(fd, &now) != 0 || fstat(c->fd, &was) != 0 || now.st_dev != was.st_dev ||
	    now.st_ino != was.st_ino) {
		close(fd);   /* another segment by that name now */
		return false;
	}
	close(c->fd);        /* the parent's: its locks stay the parent's */
	c->fd = fd;
	c->fd_pid = getpid();
	return true;
}

void vrl__holder_register(struct vrl_client *c)
{
	struct vrl_seg_holder *hs = c->view.holders;
	int32_t pid = (int32_t)getpid();
	bool own;

	c->holder = NULL;
	c->fork_epoch = atomic_load_explicit(&vrl__fork_epoch, memory_order_relaxed);
	if (c->readonly)
		return;
	own = own_description(c);
	for (uint64_t i = 0; i < c->view.nholders; i++) {
		int32_t zero = 0, word = pid;
		int lk = own ? holder_lock(c, i, F_WRLCK) : -ENOLCK;

		if (lk == -EAGAIN || lk == -EACCES)
			continue;       /* HOLD.L1: a live handle owns record i */
		if (lk == 0)
			word |= VRL_HOLDER_LOCKED;
		/* acq_rel: taking the slot orders our counter resets after
		 * vrld's fold of the previous owner's counters (HOLD.H1) */
		if (atomic_compare_exchange_strong_explicit(&hs[i].pid, &zero, word,
							    memory_order_acq_rel,
							    memory_order_relaxed)) {
			c->holder = &hs[i];
			c->holder_idx = i;
			atomic_store_explicit(&hs[i].granted, 0, memory_order_relaxed);
			atomic_store_explicit(&hs[i].denied, 0, memory_order_relaxed);
			holder_reset_limits(&hs[i], c->cfg->generation);
			return;
		}
		if (lk == 0)
			(void)holder_lock(c, i, F_UNLCK);
	}
	atomic_fetch_add_explicit(&c->hdr->holders_full, 1, memory_order_relaxed);
}

static void holder_release(struct vrl_client *c)
{
	bool locked;

	if (!c->holder || c->fork_epoch != atomic_load_explicit(&vrl__fork_epoch, memory_order_relaxed))
		return;
	locked = atomic_load_explicit(&c->holder->pid, memory_order_relaxed) & VRL_HOLDER_LOCKED;
	/* a handle's process slots end with it, as with its process */
	for (unsigned i = 0; i < VRL_HOLD_MAX; i++)
		vrl_hold_give_back(&c->view, &c->holder->holds[i]);
	/* Fold our counters into the header's, then free the slot.
	 * release: vrld reading pid == 0 sees the fold done (HOLD.H1). */
	vrl_holder_fold(&c->view, c->holder);
	atomic_store_explicit(&c->holder->pid, 0, memory_order_release);
	if (locked)
		(void)holder_lock(c, c->holder_idx, F_UNLCK);   /* HOLD.L1: after the store */
	c->holder = NULL;
}

/* Add @n to folded word @w for config generation @gen (segment.h). */
static void fold_word(_Atomic uint64_t *w, uint64_t gen, uint64_t n)
{
	uint64_t old = atomic_load_explicit(w, memory_order_relaxed), next, count;

	do {
		uint64_t wgen = old >> VRL_FOLD_COUNT_BITS;

		count = old & VRL_FOLD_COUNT_MAX;
		if (wgen != VRL_FOLD_GEN(gen)) {
			/* the word counts a newer config: these counts are of the past */
			if (old != 0 && (int16_t)(uint16_t)(VRL_FOLD_GEN(gen) - wgen) < 0)
				return;
			count = 0;
		}
		count = n > VRL_FOLD_COUNT_MAX - count ? VRL_FOLD_COUNT_MAX : count + n;
		next = VRL_FOLD_GEN(gen) << VRL_FOLD_COUNT_BITS | count;
		/* relaxed: a figure for views; nothing else is ordered by it */
	} while (!atomic_compare_exchange_weak_explicit(w, &old, next, memory_order_relaxed,
						       memory_order_relaxed));
}

/* Take counter @x (its owner is gone or is the caller). */
static uint64_t take(_Atomic uint64_t *x)
{
	return atomic_exchange_explicit(x, 0, memory_order_relaxed);
}

void vrl_holder_fold(const struct vrl_seg_view *v, struct vrl_seg_holder *a)
{
	struct vrl_seg_header *h = v->hdr;
	uint64_t gen = atomic_load_explicit(&a->config_gen, memory_order_relaxed);

	atomic_fetch_add_explicit(&h->retired_granted, take(&a->granted), memory_order_relaxed);
	atomic_fetch_add_explicit(&h->retired_denied, take(&a->denied), memory_order_relaxed);
	for (unsigned l = 0; l < VRL_MAX_LIMITS; l++) {
		uint64_t g = take(&a->limit_granted[l]), d = take(&a->limit_denied[l]);

		if (g)
			fold_word(&h->folded_granted[l], gen, g);
		if (d)
			fold_word(&h->folded_denied[l], gen, d);
	}
}

/*
 * Heal a mapping that a shrunk segment damaged (guard.c), once vrld has put
 * the size and the segment back. A holder record the cut wiped is taken
 * again, so the handle never counts into a record another one took.
 */
int vrl__heal(struct vrl_client *c)
{
	int rc = vrl_guard_heal(c->guard, c->fd, c->view.size, true);

	if (rc == 0 && c->holder &&
	    (atomic_load_explicit(&c->holder->pid, memory_order_relaxed) & VRL_HOLDER_PID_MASK) !=
	    (int32_t)getpid()) {
		(void)holder_lock(c, c->holder_idx, F_UNLCK);   /* the record is gone */
		vrl__holder_register(c);
	}
	return rc;
}

/* ---- process slots: the holder's record ---------------------------------------------- */

/* Record @units held at @slot (key @tag). Single writer: the owning handle. */
void vrl__hold_add(struct vrl_client *c, uint64_t slot, uint64_t tag, uint64_t units)
{
	struct vrl_seg_hold *free_e = NULL;

	if (!c->holder)
		return;
	for (unsigned i = 0; i < VRL_HOLD_MAX; i++) {
		struct vrl_seg_hold *e = &c->holder->holds[i];
		uint64_t u = atomic_load_explicit(&e->units, memory_order_relaxed);

		if (u == 0) {
			if (!free_e)
				free_e = e;
			continue;
		}
		if (atomic_load_explicit(&e->slot, memory_order_relaxed) == slot &&
		    atomic_load_explicit(&e->tag, memory_order_relaxed) == tag) {
			atomic_store_explicit(&e->units, u + units, memory_order_relaxed);
			return;
		}
	}
	if (!free_e)
		return;   /* held unrecorded: a crash leaks these units */
	atomic_store_explicit(&free_e->tag, tag, memory_order_relaxed);
	atomic_store_explicit(&free_e->slot, slot, memory_order_relaxed);
	/* release: a reader that sees the units sees whose they are (pairs
	 * with the acquire in vrl_hold_give_back) */
	atomic_store_explicit(&free_e->units, units, memory_order_release);
}

/* Unrecord up to @units held at @slot; before the release itself. */
void vrl__hold_sub(struct vrl_client *c, uint64_t slot, uint64_t tag, uint64_t units)
{
	if (!c->holder)
		return;
	for (unsigned i = 0; i < VRL_HOLD_MAX; i++) {
		struct vrl_seg_hold *e = &c->holder->holds[i];
		uint64_t u = atomic_load_explicit(&e->units, memory_order_relaxed);

		if (u == 0 || atomic_load_explicit(&e->slot, memory_order_relaxed) != slot ||
		    atomic_load_explicit(&e->tag, memory_order_relaxed) != tag)
			continue;
		/* relaxed load and store: this handle is the entry's only writer */
		atomic_store_explicit(&e->units, u > units ? u - units : 0, memory_order_relaxed);
		return;
	}
}

void vrl_hold_give_back(const struct vrl_seg_view *v, struct vrl_seg_hold *e)
{
	/* acquire: pairs with vrl__hold_add's release, tag and slot are the units' */
	uint64_t u = atomic_load_explicit(&e->units, memory_order_acquire);
	uint64_t tag = atomic_load_explicit(&e->tag, memory_order_relaxed);
	uint64_t slot = atomic_load_explicit(&e->slot, memory_order_relaxed);
	struct vrl_seg_slot *s;

	if (u == 0)
		return;
	/* forget first: a giver killed before the give-back leaks the units,
	 * one killed after cannot give them back a second time */
	atomic_store_explicit(&e->units, 0, memory_order_relaxed);
	/* release fence: the store above is ordered before the give-back's CAS */
	atomic_thread_fence(memory_order_release);
	if (slot >= v->nslots)
		return;
	s = &v->slots[slot];
	/* acquire: pairs with promotion (KT.K2); a key that moved is not ours.
	 * A slots key with units held is never evicted (vrl_seg_sweep), so
	 * the slot keeps its key from this check to the give-back, unless an
	 * operator's reset emptied it, and then there is nothing to give. */
	if (atomic_load_explicit(&s->tag, memory_order_acquire) != tag)
		return;
	vrl_slots_give_share(v->shares ? &v->shares[slot] : NULL, vrl_slots_give_back(s, u));
}

/* ---- open / close -------------------------------------------------------------- */

static int name_ok(const char *name)
{
	size_t len = strnlen(name, VRL_SHM_NAME_MAX);

	return name[0] == '/' && len > 1 && len < VRL_SHM_NAME_MAX && !strchr(name + 1, '/');
}

/* ---- who may own a segment ------------------------------------------------------ */

/* The uid of @user, a name or a number; -1 when there is none. */
static int64_t uid_of(const char *user)
{
	struct passwd pw, *res = NULL;
	char buf[2048], *end;
	unsigned long n;

	if (!user || !user[0])
		return -1;
	errno = 0;
	n = strtoul(user, &end, 10);
	if (*end == '\0' && errno == 0 && n < UINT32_MAX)
		return (int64_t)n;
	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return -1;
	return res->pw_uid;
}

/* Whether this process trusts user @uid to own a segment: root, itself,
 * the system user vrl (vrld's own, from the sysusers file), or the user
 * named by VRL_SEGMENT_OWNER. Names are looked up only when needed. */
static bool trusted_owner(uid_t uid)
{
	return uid == 0 || uid == geteuid() || uid_of("vrl") == (int64_t)uid ||
	       uid_of(secure_getenv("VRL_SEGMENT_OWNER")) == (int64_t)uid;
}

/*
 * Anyone can create a shm object of any name before vrld does, keep it, and
 * make it what they like: a segment is used only if its owner is trusted
 * and nobody else may write it. Returns 0, or VRL_EOWNER with the reason,
 * naming the owner, in vrl__owner_refusal.
 */
static int check_owner(const char *name, const struct stat *st)
{
	bool others = st->st_mode & S_IWOTH;
	char who[64];

	if (!others && trusted_owner(st->st_uid))
		return 0;
	vrl_user_name(st->st_uid, who, sizeof(who));
	snprintf(vrl__owner_refusal, sizeof(vrl__owner_refusal),
		 "segment %s (/dev/shm%s) is owned by uid %u (%s), mode %04o: %s; someone else "
		 "may have made it before vrld: check who, remove it (rm /dev/shm%s, as root or "
		 "its owner) and restart vrld%s", name, name, (unsigned)st->st_uid, who,
		 (unsigned)(st->st_mode & 07777),
		 others ? "anyone may write it" :
			  "not root, you, the vrl system user or $VRL_SEGMENT_OWNER",
		 name, others ? "" : ", or set VRL_SEGMENT_OWNER to that user if it runs vrld");
	return VRL_EOWNER;
}

/*
 * Map segment @name and register the mapping with the SIGBUS guard before
 * anything reads it. The descriptor stays open in *@fd: a mapping damaged
 * by a shrink heals through it (guard.c).
 */
static int map_segment(const char *name, bool ro, struct vrl_client *c)
{
	int prot = PROT_READ | (ro ? 0 : PROT_WRITE);
	struct stat st;
	void *p;
	int rc, fd = shm_open(name, ro ? O_RDONLY : O_RDWR, 0);

	if (fd < 0)
		return errno == ENOENT ? VRL_ENOSEG : -errno;
	if (fstat(fd, &st) != 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	rc = check_owner(name, &st);
	if (rc) {
		close(fd);
		return rc;   /* not even mapped */
	}
	if ((uint64_t)st.st_size < sizeof(struct vrl_seg_header)) {
		close(fd);
		return VRL_ENOSEG; /* vrld is still creating it */
	}
	p = mmap(NULL, (size_t)st.st_size, prot, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int e = -errno;

		close(fd);
		return e;
	}
	c->guard = vrl_guard_add(p, (size_t)st.st_size, prot);
	if (!c->guard) {
		munmap(p, (size_t)st.st_size);
		close(fd);
		return -EMFILE;   /* VRL_GUARD_MAX mappings in this process */
	}
	c->hdr = p;
	c->mapped = (uint64_t)st.st_size;
	c->fd = fd;
	c->fd_pid = getpid();
	return 0;
}

static void unmap_segment(struct vrl_client *c)
{
	vrl_guard_remove(c->guard);
	munmap(c->hdr, c->mapped);
	close(c->fd);
}

int vrl_open(const char *name, unsigned flags, vrl_client **out)
{
	struct vrl_seg_geometry g;
	struct vrl_client *c;
	uint64_t state = 0;
	int rc;

	if (!out)
		return VRL_ENULL;
	if (!name)
		name = VRL_DEFAULT_SEGMENT;
	if (!name_ok(name))
		return -EINVAL;
	pthread_once(&fork_once, install_fork_handler);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->readonly = flags & VRL_OPEN_READONLY;
	strcpy(c->name, name);
	c->cfg = malloc(sizeof(*c->cfg));
	if (!c->cfg) {
		free(c);
		return -ENOMEM;
	}
	rc = map_segment(name, c->readonly, c);
	if (rc == 0) {
		state = vrl_guard_state(c->guard);
		/* acquire: pairs with vrld's release of the magic, written last */
		if (atomic_load_explicit((_Atomic uint64_t *)&c->hdr->magic,
					 memory_order_acquire) == 0)
			rc = VRL_ENOSEG;
		else
			rc = vrl_seg_validate(c->hdr, c->mapped, &g);
		/* from here on the handle knows the layout from its own copy */
		if (rc == 0) {
			vrl_seg_view_init(&c->view, c->hdr, &g);
			rc = vrl_snapshot_read(&c->view, c->cfg);
		}
		/* shrunk while we read it: what we read was zero pages */
		if (rc == 0 && vrl_guard_state(c->guard) != state)
			rc = VRL_ECORRUPT;
		if (rc)
			unmap_segment(c);
	}
	if (rc) {
		free(c->cfg);
		free(c);
		return rc;
	}
	vrl__holder_register(c);
	*out = c;
	return 0;
}

void vrl_close(vrl_client *c)
{
	uint64_t state;

	if (!c)
		return;
	/* a damaged mapping gives nothing back: its records are zero pages
	 * (vrld reaps the real ones when this process is gone) */
	if (!vrl_guard_damaged(vrl_guard_state(c->guard)) || vrl__heal(c) == 0) {
		state = vrl_guard_state(c->guard);
		holder_release(c);
		(void)vrl__leave(c, state, 0, NULL);
	}
	unmap_segment(c);
	free(c->cfg);
	free(c->prev);
	free(c);
}

int vrl_limit_count(vrl_client *c)
{
	uint64_t state;
	int rc;

	if (!c)
		return VRL_ENULL;
	rc = vrl__enter(c, &state);

	return vrl__leave(c, state, rc ? rc : (int)c->cfg->nlimits, NULL);
}

const char *vrl_limit_name(vrl_client *c, int idx)
{
	if (!c || idx < 0 || (uint32_t)idx >= c->cfg->nlimits)
		return NULL;
	return c->cfg->limits[idx].seg.name;
}

/* ---- what the tools read of a handle (vrl_internal.h) ---------------------------- */

const struct vrl_seg_view *vrl__view(const vrl_client *c)
{
	return &c->view;
}

const struct vrl_snapshot *vrl__config(const vrl_client *c)
{
	return c->cfg;
}

int vrl__limit_index(const vrl_client *c, const char *name)
{
	for (uint32_t i = 0; i < c->cfg->nlimits; i++)
		if (strcmp(c->cfg->limits[i].seg.name, name) == 0)
			return (int)i;
	return -1;
}

int vrl__fd(const vrl_client *c)
{
	return c->fd;
}

struct vrl_seg_holder *vrl__holder(const vrl_client *c)
{
	return c->holder;
}
