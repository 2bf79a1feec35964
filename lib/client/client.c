/*
 * client.c - libvrl: attach to the segment and acquire permits.
 *
 * The acquire path, for n matched limits at time `now`:
 *
 *   1. Look:   for each key read tag, cooldown and state (no write) and
 *              compute the earliest time `at` at which all n conform.
 *              A denial ends here: it writes nothing.
 *   2. Commit: for each key CAS its state word from the value seen to the
 *              value after taking `cost` permits at `at`. A CAS that loses
 *              a race re-reads and retries while the key still conforms
 *              at `at`; if it no longer does, the keys already taken are
 *              rolled back and the acquire starts over.
 *   3. Check:  after each CAS, re-read the slot's tag. If vrld evicted the
 *              slot and another key took it between our look and our CAS,
 *              our permit landed on the wrong key: undo it and re-resolve.
 *
 * Invariants
 *   A1 Never over-grant. Each CAS moves a key's state by exactly the GCRA
 *      rule (gcra.h), which bounds any window whatever the order of grants.
 *      Rollback restores a key's state only when nobody took it after us
 *      (CAS from our value back to the one we replaced); otherwise our
 *      permits stay taken. So compensation can make a concurrent request
 *      wait, never let one through.
 *   A2 No lock: every step is a load or a single-word CAS. A process
 *      killed between two CASes of a stacked acquire leaves permits taken
 *      on some keys, which delays others by at most that cost, and never a
 *      word that anyone waits on.
 *   A3 A stale slot is detected. vrld evicts a key by CAS of the state word
 *      to EVICTED (keytable.c E1), so a CAS based on a value read before
 *      the eviction fails; if the slot was evicted and reused and its state
 *      word happens to be back at the value we read, the tag re-check after
 *      our CAS (acquire, pairing with the release in fill_slot) shows the
 *      slot's new owner, and we undo.
 *   A4 Denials are read-only on the shared line: step 1 only loads.
 *
 * Reloads (gcra.h has the proof). A rate key's word carries the epoch of
 * the parameters that wrote it, and a word of the epoch before is
 * converted by the acquire that first CASes it, keeping the key's fill:
 *   G1 An acquire never reads a word newer than its config: each word is
 *      loaded with acquire order and config_gen after it, and every CAS
 *      that writes a word is a release, by a process whose config was in
 *      force when it loaded config_gen; so a look whose config_gen is the
 *      handle's (its snapshot's gen_word) sees words of that config or
 *      older. A look that finds a newer config published starts over with
 *      it (VRL__RESTART).
 *   C1 No grant uses a clock read before the conversion of its word: take()
 *      reads rate_conversions, the clock, then its keys, and the count
 *      again; if it moved or was odd, or a word needs converting, it looks
 *      again with every key loaded before the clock read. A word it gets
 *      back from a failed CAS, or loads again for a waiting acquire, is
 *      used with that clock only if it has the tag of the word looked at,
 *      needs no conversion and the count did not move; else the acquire
 *      starts over. A converter adds 2 to the count between its clock read
 *      and its CAS. A waiting acquire checks its rate keys on waking
 *      (reservation_lost()).
 *   A new key's word is 0, full under any parameters: an acquire first
 *   writes a full word of its own epoch there and looks again, so it never
 *   CASes from a value that a reset or re-insert can bring back.
 * A handle that cannot copy a new config (vrld rewrote the area under it
 * every time) keeps its own, marked stale, and uses a rate word only as
 * gcra.h allows; after RESTARTS_MAX tries it denies what it cannot read.
 *
 * Counted kinds (quota, slots) follow the same three steps with a count in
 * the state word instead of a TAT: the CAS adds the cost to the count the
 * look saw, so A1 holds for them by the same argument (each grant moves the
 * word by exactly its cost from a value that had room for it). Their
 * rollback gives the cost back (a count is additive, so this is exact even
 * when others took units after us), never below zero. A quota or slots key
 * without room denies at once, even a waiting acquire: no time is known at
 * which units come back (a quota's next period is days away, a slot waits
 * for a release), so waiting there would only hold the caller.
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
 * Trust. Processes of the segment's group can write every byte of it, and
 * a buggy or hostile one may. A handle therefore reads the header's layout
 * words once, at vrl_open(), into private memory, validates that copy
 * (vrl_seg_validate), and from then on reaches every area (key table,
 * holders, events, marks, config areas, window rings) through it:
 * struct vrl_client.view. Config snapshots are private, checked copies
 * too. What a handle reads from the segment afterwards is data (tags, state
 * words, ring positions and links, notes), and every index taken from data
 * is bounded by the private layout before it is used. A corrupted header
 * word therefore cannot move a handle's reads or writes, and the hot path
 * makes no per-call check of the layout words (it was ten loads of the
 * header per call and guarded nothing the view does not): a changed word
 * matters only to a later vrl_open(), which refuses it, and vrld puts it
 * back at its next tick (vrl_seg_restore_header).
 */

#include "alert.h"
#include "client.h"
#include "clock.h"
#include "guard.h"
#include "label.h"
#include "window.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "quota.h"

/* ---- errors -------------------------------------------------------------- */

/* What vrl_strerror(VRL_EOWNER) says on this thread: the last refusal. */
static _Thread_local char owner_refusal[384];

const char *vrl_strerror(int err)
{
	if (err == VRL_EOWNER && owner_refusal[0])
		return owner_refusal;
	switch (err) {
#define VRL_ERR_MSG(name, value, msg) case VRL_E##name: return msg;
		VRL_ERRORS(VRL_ERR_MSG)
#undef VRL_ERR_MSG
	case 0:
		return "success";
	}
	return err < 0 ? strerror(-err) : "unknown error";
}

const char *vrl_err_name(int err)
{
	switch (err) {
#define VRL_ERR_NAME(name, value, msg) case VRL_E##name: return "VRL_E" #name;
		VRL_ERRORS(VRL_ERR_NAME)
#undef VRL_ERR_NAME
	case 0:
		return "OK";
	}
	if (err < 0 && strerrorname_np(-err))
		return strerrorname_np(-err);
	return "EUNKNOWN";
}

/* ---- time and fork --------------------------------------------------------- */

uint64_t vrl_now_ns(void)
{
	return vrl_mono_ns();
}

/* Bumped in every forked child: a handle registered under another epoch
 * belongs to the parent's pid and must re-register. Process-local. */
static _Atomic uint64_t fork_epoch = 1;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
	atomic_fetch_add_explicit(&fork_epoch, 1, memory_order_relaxed);
}

static void install_fork_handler(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

/* ---- config snapshot --------------------------------------------------------- */

static bool terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static bool fieldref_ok(const struct vrl_seg_fieldref *f)
{
	if (f->field >= VRL_FIELD__COUNT || !terminated(f->attr, sizeof(f->attr)))
		return false;
	return f->field != VRL_FIELD_ATTR || f->attr[0] != '\0';
}

_Static_assert((int)VRL_KIND_RATE == (int)VRL_RATE && (int)VRL_KIND_GATE == (int)VRL_GATE &&
	       (int)VRL_KIND_WINDOW == (int)VRL_WINDOW &&
	       (int)VRL_KIND_QUOTA == (int)VRL_QUOTA && (int)VRL_KIND_SLOTS == (int)VRL_SLOTS,
	       "segment kinds are the public kinds");

int vrl_limit_prepare(const struct vrl_seg_limit *in, struct vrl_limit *out)
{
	out->seg = *in;
	if (!terminated(in->name, sizeof(in->name)) || in->name[0] == '\0')
		return VRL_ECORRUPT;
	if (in->kind == 0 || in->kind >= VRL_KIND__COUNT)
		return VRL_ECORRUPT;
	if (in->nper > VRL_MAX_PER || in->nmatch > VRL_MAX_MATCH)
		return VRL_ECORRUPT;
	for (uint32_t i = 0; i < in->nper; i++)
		if (!fieldref_ok(&in->per[i]))
			return VRL_ECORRUPT;
	for (uint32_t i = 0; i < in->nmatch; i++)
		if (!fieldref_ok(&in->match[i].ref) ||
		    !terminated(in->match[i].pattern, sizeof(in->match[i].pattern)))
			return VRL_ECORRUPT;
	out->name_len = strlen(in->name);
	memset(&out->gcra, 0, sizeof(out->gcra));
	memset(&out->prev, 0, sizeof(out->prev));
	out->tag = vrl_gcra_epoch_tag(in->rate_epoch);
	if (in->kind == VRL_KIND_RATE &&
	    vrl_gcra_init(&out->gcra, in->count, in->period_ns, in->burst) != 0)
		return VRL_ECORRUPT;
	/* the epoch before's parameters, as vrl_seg_publish() recorded them */
	if (in->kind == VRL_KIND_RATE && in->prev_burst &&
	    vrl_gcra_init(&out->prev, 1, in->prev_emission_ns, in->prev_burst) != 0)
		return VRL_ECORRUPT;
	if (in->kind == VRL_KIND_WINDOW &&
	    (in->period_ns == 0 || vrl_window_area_bytes(in->count, in->area_keys) == 0))
		return VRL_ECORRUPT;
	if (!terminated(in->pool, sizeof(in->pool)))
		return VRL_ECORRUPT;
	if ((in->kind == VRL_KIND_QUOTA || in->kind == VRL_KIND_SLOTS) &&
	    (in->count == 0 || in->count > VRL_QUOTA_COUNT_MAX))
		return VRL_ECORRUPT;
	if (in->kind == VRL_KIND_QUOTA && vrl_quota_period(in, 0, NULL, NULL, NULL) != 0)
		return VRL_ECORRUPT;
	out->carry = false;
	if (in->kind == VRL_KIND_QUOTA) {
		int rc = vrl_quota_transition(in, &out->carry_from, &out->carry_to);

		if (rc == -EINVAL)
			return VRL_ECORRUPT;
		out->carry = rc == 0;
	}
	return 0;
}

int vrl_snapshot_read(const struct vrl_seg_view *v, struct vrl_snapshot *out)
{
	const struct vrl_seg_header *h = v->hdr;

	for (int tries = 0; tries < 1000; tries++) {
		/* C1 acquire: pairs with P1, the area is written before */
		uint64_t g = atomic_load_explicit(&h->config_gen, memory_order_acquire);
		unsigned idx = atomic_load_explicit(&h->active_cfg, memory_order_acquire);
		const struct vrl_seg_config *sc = vrl_view_cfg(v, idx);
		/* R0 acquire: pairs with W1, vrld's release after writing */
		uint64_t s1 = atomic_load_explicit(&sc->seq, memory_order_acquire), s2;
		uint32_t n = sc->nlimits;
		int rc = 0;

		if (s1 & 1)
			continue;
		if (s1 == 0)
			return VRL_EBUSY;   /* never published: vrld is still writing it */
		out->generation = sc->generation;
		out->stale = false;
		out->flags = sc->flags;
		out->nlimits = n <= VRL_MAX_LIMITS ? n : 0;
		memcpy(out->source, sc->source, sizeof(out->source));
		out->source[sizeof(out->source) - 1] = '\0';
		for (uint32_t i = 0; i < out->nlimits && rc == 0; i++) {
			rc = vrl_limit_prepare(&sc->limits[i], &out->limits[i]);
			if (rc == 0 && out->limits[i].seg.kind == VRL_KIND_WINDOW)
				rc = vrl_window_area_check(v, &out->limits[i].seg);
		}
		/* R1 acquire fence: the copy above is ordered before the re-check */
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&sc->seq, memory_order_relaxed);
		if (s1 != s2)
			continue;
		if (n > VRL_MAX_LIMITS || rc != 0)
			return VRL_ECORRUPT;
		/* vrld sets config_gen after the area it names (P1), so an area
		 * read after loading @g has a generation of at least @g. One
		 * below it means a group member wrote config_gen and no newer
		 * config exists: its value is then the one that says "this
		 * config is in force", so that the handle does not re-read for
		 * ever, nor (G1) take every key for newer than its config */
		out->gen_word = out->generation >= g ? out->generation : g;
		return 0;
	}
	return VRL_EBUSY;
}

int vrl__refresh(struct vrl_client *c)
{
	struct vrl_snapshot *s;
	int rc;

	/* C1 acquire: pairs with P1 */
	if (atomic_load_explicit(&c->hdr->config_gen, memory_order_acquire) ==
	    c->cfg->gen_word)
		return 0;
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	rc = vrl_snapshot_read(&c->view, s);
	if (rc == VRL_EBUSY) {
		/* vrld kept rewriting the config under the copy: go on with the
		 * one we have, stale; take() uses rate words as gcra.h allows */
		free(s);
		c->cfg->stale = true;
		return 0;
	}
	if (rc) {
		free(s);
		return rc;
	}
	free(c->prev);
	c->prev = c->cfg;
	c->cfg = s;
	if (c->holder) {
		atomic_store_explicit(&c->holder->config_gen, s->generation, memory_order_relaxed);
		for (unsigned i = 0; i < VRL_MAX_LIMITS; i++) {
			atomic_store_explicit(&c->holder->limit_granted[i], 0, memory_order_relaxed);
			atomic_store_explicit(&c->holder->limit_denied[i], 0, memory_order_relaxed);
			atomic_store_explicit(&c->holder->limit_shadow[i], 0, memory_order_relaxed);
			atomic_store_explicit(&c->holder->limit_cooldowns[i], 0,
					      memory_order_relaxed);
			atomic_store_explicit(&c->holder->limit_wait_ns[i], 0, memory_order_relaxed);
		}
	}
	return 0;
}

/* ---- holders (per-handle counters) ------------------------------------------ */

static void holder_register(struct vrl_client *c)
{
	struct vrl_seg_holder *hs = c->view.holders;
	int32_t pid = (int32_t)getpid();

	c->holder = NULL;
	c->fork_epoch = atomic_load_explicit(&fork_epoch, memory_order_relaxed);
	if (c->readonly)
		return;
	for (uint64_t i = 0; i < c->view.nholders; i++) {
		int32_t zero = 0;

		/* acq_rel: taking the slot orders our counter resets after
		 * vrld's fold of the previous owner's counters (H1) */
		if (atomic_compare_exchange_strong_explicit(&hs[i].pid, &zero, pid,
							    memory_order_acq_rel,
							    memory_order_relaxed)) {
			c->holder = &hs[i];
			atomic_store_explicit(&hs[i].granted, 0, memory_order_relaxed);
			atomic_store_explicit(&hs[i].denied, 0, memory_order_relaxed);
			for (unsigned j = 0; j < VRL_MAX_LIMITS; j++) {
				atomic_store_explicit(&hs[i].limit_granted[j], 0, memory_order_relaxed);
				atomic_store_explicit(&hs[i].limit_denied[j], 0, memory_order_relaxed);
				atomic_store_explicit(&hs[i].limit_shadow[j], 0, memory_order_relaxed);
				atomic_store_explicit(&hs[i].limit_cooldowns[j], 0,
						      memory_order_relaxed);
				atomic_store_explicit(&hs[i].limit_wait_ns[j], 0, memory_order_relaxed);
			}
			atomic_store_explicit(&hs[i].config_gen, c->cfg->generation,
					      memory_order_relaxed);
			return;
		}
	}
	atomic_fetch_add_explicit(&c->hdr->holders_full, 1, memory_order_relaxed);
}

static void holder_release(struct vrl_client *c)
{
	if (!c->holder || c->fork_epoch != atomic_load_explicit(&fork_epoch, memory_order_relaxed))
		return;
	/* a handle's process slots end with it, as with its process */
	for (unsigned i = 0; i < VRL_HOLD_MAX; i++)
		vrl_hold_give_back(&c->view, &c->holder->holds[i]);
	/* Fold our counters into the retired totals, then free the slot.
	 * release: vrld reading pid == 0 sees the fold done (H1). */
	atomic_fetch_add_explicit(&c->hdr->retired_granted,
				  atomic_load_explicit(&c->holder->granted, memory_order_relaxed),
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&c->hdr->retired_denied,
				  atomic_load_explicit(&c->holder->denied, memory_order_relaxed),
				  memory_order_relaxed);
	atomic_store_explicit(&c->holder->granted, 0, memory_order_relaxed);
	atomic_store_explicit(&c->holder->denied, 0, memory_order_relaxed);
	atomic_store_explicit(&c->holder->pid, 0, memory_order_release);
	c->holder = NULL;
}

/* Single-writer counter: a relaxed load and store, no locked instruction. */
static inline void bump(_Atomic uint64_t *x)
{
	atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Single-writer add, as bump(). */
static inline void bump_by(_Atomic uint64_t *x, uint64_t n)
{
	atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/*
 * Heal a mapping that a shrunk segment damaged (guard.c), once vrld has put
 * the size and the segment back. A holder record the cut wiped is taken
 * again, so the handle never counts into a record another one took.
 */
static int heal(struct vrl_client *c)
{
	int rc = vrl_guard_heal(c->guard, c->fd, c->view.size, true);

	if (rc == 0 && c->holder && atomic_load_explicit(&c->holder->pid, memory_order_relaxed) !=
	    (int32_t)getpid())
		holder_register(c);
	return rc;
}

/*
 * Entry check of every call: a damaged mapping, fork and config changes.
 * *@state is the mapping's damage word, for leave().
 */
static inline int enter(struct vrl_client *c, uint64_t *state)
{
	uint64_t d = vrl_guard_state(c->guard);
	int rc;

	*state = d;
	if (__builtin_expect(vrl_guard_damaged(d), 0)) {
		rc = heal(c);
		if (rc)
			return rc;
		*state = vrl_guard_state(c->guard);
	}
	if (__builtin_expect(c->fork_epoch != atomic_load_explicit(&fork_epoch,
								   memory_order_relaxed), 0))
		holder_register(c);
	rc = vrl__refresh(c);
	/* a refresh that read zero pages failed for that alone */
	if (__builtin_expect(rc != 0, 0) && vrl_guard_state(c->guard) != *state)
		return VRL_ECORRUPT;
	return rc;
}

/*
 * Exit check of every call: if the mapping was damaged while the call ran
 * (zero pages stood in for a shrunk segment), whatever it did or saw is
 * void: VRL_ECORRUPT, and never a grant.
 */
static inline int leave(struct vrl_client *c, uint64_t state, int rc, struct vrl_verdict *v)
{
	if (__builtin_expect(vrl_guard_state(c->guard) == state, 1))
		return rc;
	if (v)
		v->granted = 0;
	return VRL_ECORRUPT;
}

int vrl__enter(struct vrl_client *c, uint64_t *state)
{
	return enter(c, state);
}

int vrl__leave(struct vrl_client *c, uint64_t state, int rc)
{
	return leave(c, state, rc, NULL);
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

static void user_name(uid_t uid, char *out, size_t cap)
{
	struct passwd pw, *res = NULL;
	char buf[2048];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		snprintf(out, cap, "%s", res->pw_name);
	else
		snprintf(out, cap, "no such user");
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
 * naming the owner, in owner_refusal.
 */
static int check_owner(const char *name, const struct stat *st)
{
	bool others = st->st_mode & S_IWOTH;
	char who[64];

	if (!others && trusted_owner(st->st_uid))
		return 0;
	user_name(st->st_uid, who, sizeof(who));
	snprintf(owner_refusal, sizeof(owner_refusal),
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

	if (!name)
		name = VRL_DEFAULT_SEGMENT;
	if (!out || !name_ok(name))
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
	holder_register(c);
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
	if (!vrl_guard_damaged(vrl_guard_state(c->guard)) || heal(c) == 0) {
		state = vrl_guard_state(c->guard);
		holder_release(c);
		(void)leave(c, state, 0, NULL);
	}
	unmap_segment(c);
	free(c->cfg);
	free(c->prev);
	free(c);
}

int vrl_limit_count(vrl_client *c)
{
	uint64_t state;
	int rc = enter(c, &state);

	return leave(c, state, rc ? rc : (int)c->cfg->nlimits, NULL);
}

const char *vrl_limit_name(vrl_client *c, int idx)
{
	if (idx < 0 || (uint32_t)idx >= c->cfg->nlimits)
		return NULL;
	return c->cfg->limits[idx].seg.name;
}

/* ---- matching and keys ------------------------------------------------------------ */

static const char *req_field(const struct vrl_request *r, const struct vrl_seg_fieldref *f)
{
	switch (f->field) {
	case VRL_FIELD_API:      return r->api;
	case VRL_FIELD_ENDPOINT: return r->endpoint;
	case VRL_FIELD_TOKEN:    return r->token;
	case VRL_FIELD_ORG:      return r->org;
	case VRL_FIELD_VEHICLE:  return r->vehicle;
	case VRL_FIELD_USER:     return r->user;
	case VRL_FIELD_ATTR:
		for (size_t i = 0; i < r->nattrs; i++)
			if (r->attrs[i].name && strcmp(r->attrs[i].name, f->attr) == 0)
				return r->attrs[i].value;
		return NULL;
	}
	return NULL;
}

bool vrl_limit_matches(const struct vrl_limit *l, const struct vrl_request *req)
{
	for (uint32_t i = 0; i < l->seg.nmatch; i++) {
		const struct vrl_seg_match *m = &l->seg.match[i];
		const char *v = req_field(req, &m->ref);

		if (!v)
			return false;
		if (m->glob ? fnmatch(m->pattern, v, 0) != 0 : strcmp(m->pattern, v) != 0)
			return false;
	}
	return true;
}

void vrl_limit_key(const struct vrl_limit *l, const struct vrl_request *req,
		   struct vrl_key *key, char label[VRL_LABEL_MAX])
{
	const char *parts[VRL_MAX_PER];

	for (uint32_t i = 0; i < l->seg.nper; i++) {
		const char *v = req_field(req, &l->seg.per[i]);

		parts[i] = v ? v : "";
	}
	/* secrets hashed here, before the label can reach a slot (label.h) */
	vrl_label_build(&l->seg, parts, label);
	/* a pool's members hash the pool's name: one key, one counter */
	vrl_key_hash(l->seg.pool[0] ? l->seg.pool : l->seg.name, parts, l->seg.nper, key);
}

bool vrl_limit_selected(const struct vrl_snapshot *cfg, uint32_t i, const struct vrl_request *req)
{
	uint32_t g = cfg->limits[i].seg.group;

	if (!vrl_limit_matches(&cfg->limits[i], req))
		return false;
	if (g == 0)
		return true;
	/* an override group: only its first matching member counts */
	for (uint32_t j = 0; j < i; j++)
		if (cfg->limits[j].seg.group == g && vrl_limit_matches(&cfg->limits[j], req))
			return false;
	return true;
}

/* The ring of window key @t, taken from its limit's area on first use. */
static int window_ring(struct vrl_client *c, const struct vrl_take *t, uint64_t *ring)
{
	const struct vrl_seg_limit *l = &c->cfg->limits[t->limit].seg;
	int rc = vrl_window_slot_ring(vrl_seg_area(&c->view, l), l->count, l->area_keys,
				      &c->view.slots[t->slot], ring);

	if (rc == VRL_EFULL) /* counted as a full table: same policy, same metric */
		atomic_fetch_add_explicit(&c->hdr->table_full, 1, memory_order_relaxed);
	return rc;
}

static struct vrl_window_ref window_ref(const struct vrl_client *c, const struct vrl_take *t,
					struct vrl_seg_slot *s)
{
	const struct vrl_seg_limit *l = &c->cfg->limits[t->limit].seg;

	return (struct vrl_window_ref){
		.state = &s->state, .n = l->count, .w = l->period_ns,
		.ring = vrl_window_ring(vrl_seg_area(&c->view, l), l->count, l->area_keys, t->ring),
	};
}

/*
 * An insert that finds vrld inside a reclaim bracket waits for it, and
 * vrl_kt_get() gives up after VRL_BRACKET_WAIT_NS twice. A vrld that stalls
 * there stops its heartbeat too, and after VRL_DAEMON_DEAD_NS any waiter
 * closes the bracket; so an acquire keeps waiting that long, and past it
 * (the bracket is held open by something that is not vrld) treats the key
 * as one the table has no room for: the config's on_full policy decides.
 */
#define PLACE_WAIT_NS (VRL_DAEMON_DEAD_NS + 2 * (uint64_t)VRL_BRACKET_WAIT_NS)

/* vrl_kt_get(), waiting out a reclaim bracket as above: 0, VRL_EFULL or an error. */
static int kt_get(struct vrl_client *c, const struct vrl_key *key, uint32_t note,
		  const char *label, uint64_t *idx)
{
	uint64_t start = 0;
	int rc;

	while ((rc = vrl_kt_get(&c->view, key, note, label, idx)) == VRL_EBUSY) {
		uint64_t now = vrl_now_ns();

		if (start == 0)
			start = now;
		if (now - start > PLACE_WAIT_NS)
			return VRL_EFULL;
	}
	return rc;
}

/* Find or insert the slot of take @t. */
static int place(struct vrl_client *c, struct vrl_take *t, const char *label)
{
	int rc;

	if (c->readonly)
		return vrl_kt_find(&c->view, &t->key, &t->slot);
	rc = kt_get(c, &t->key,
		    vrl_slot_note(t->limit, &c->cfg->limits[t->limit].seg, c->cfg->generation),
		    label, &t->slot);
	if (rc == 0 && c->cfg->limits[t->limit].seg.kind == VRL_KIND_WINDOW)
		rc = window_ring(c, t, &t->ring);
	if (rc == VRL_EFULL)
		t->slot = UINT64_MAX;
	return rc;
}

/* True when take @n has the key of an earlier take. */
static bool pooled_twice(const struct vrl_take *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (t[i].key.home == t[n].key.home && t[i].key.fp == t[n].key.fp)
			return true;
	return false;
}

/* Match @req and place its keys. Returns the number of takes or an error. */
static int plan(struct vrl_client *c, const struct vrl_request *req, struct vrl_take *t,
		bool *full)
{
	unsigned n = 0;

	*full = false;
	for (uint32_t i = 0; i < c->cfg->nlimits; i++) {
		const struct vrl_limit *l = &c->cfg->limits[i];
		char label[VRL_LABEL_MAX];
		int rc;

		if (!vrl_limit_selected(c->cfg, i, req))
			continue;
		if (n == VRL_MAX_MATCHED)
			return VRL_ETOOMANY;
		t[n].limit = i;
		vrl_limit_key(l, req, &t[n].key, label);
		if (l->seg.pool[0] && pooled_twice(t, n))
			continue;   /* two members of one pool: one counter, taken once */
		rc = place(c, &t[n], label);
		if (rc == VRL_EFULL)
			*full = true;
		else if (rc)
			return rc;
		n++;
	}
	return (int)n;
}

/* ---- the acquire core ---------------------------------------------------------------- */

/* CLOCK_REALTIME in ns: read only when a quota limit is looked at. */
uint64_t (*vrl__realtime_ns)(void) = vrl_wall_ns;

static inline uint64_t realtime_ns(void)
{
	return vrl__realtime_ns();
}

/* What step 1 saw of one key. */
struct look {
	struct vrl_seg_slot *s;
	uint64_t state;          /* the state word as loaded */
	uint64_t cd;             /* the cooldown as loaded */
	uint64_t gen;            /* config_gen, loaded after the state word */
	uint64_t conv;           /* rate_conversions, loaded before the clock (C1) */
	uint64_t tat;            /* rate: the word's TAT under the limit's parameters */
	uint64_t earliest;       /* earliest conforming time; UINT64_MAX: never */
	struct vrl_gcra_step r;   /* rate kinds: the decision at `at` */
	struct vrl_window_look w; /* window: where to take at `at` */
	uint64_t w_at;           /* window: the time its positions were taken at */
	struct vrl_quota_step q;  /* quota and slots: the decision */
	uint64_t pid;            /* quota: the current period's id */
	uint64_t end_rt;         /* quota: wall-clock end of the period; UINT64_MAX: once */
	uint64_t rt;             /* quota: the wall-clock time it was judged at */
	bool convert;            /* rate: a word of another epoch, converted at `now` */
	bool shadow_deny;        /* a shadow limit that would deny */
	bool cooled;             /* held back by a cooldown */
	bool final;              /* a count without room: waiting cannot help */
};

/*
 * LOOK_NEWER: a rate word that the handle's (stale) config cannot read;
 * LOOK_NEW: a rate key's word is 0, to be marked (mark_new_key());
 * LOOK_CONVERT: a rate word to convert, met by a look not yet careful (C1).
 */
enum { LOOK_OK = 0, LOOK_STALE = 1, LOOK_NEWER = 2, LOOK_NEW = 3, LOOK_CONVERT = 4 };

/* Internal: take() asks its caller to refresh the config and start over. */
#define VRL__RESTART 1
#define RESTARTS_MAX 8u   /* then the handle's config is used as stale */

static bool counted(uint32_t kind)
{
	return kind == VRL_KIND_QUOTA || kind == VRL_KIND_SLOTS;
}

/* Quota word @state as @l's calendar reads it in period @pid (quota.h). */
static uint64_t quota_view(const struct vrl_limit *l, uint64_t state, uint64_t pid)
{
	return l->carry ? vrl_quota_carry(state, l->carry_from, l->carry_to, pid) : state;
}

/*
 * The decision of a quota or slots key in state @state; *@rt is read once.
 * A stale handle (@stale: its config is not the one in force) reads only a
 * quota word of its own current period, or one that counts nothing: a
 * newer config may have changed the calendar. LOOK_NEWER otherwise.
 */
static int look_counted(const struct vrl_limit *l, uint64_t cost, uint64_t now, uint64_t at,
			uint64_t *rt, bool stale, struct look *lk)
{
	if (l->seg.kind == VRL_KIND_QUOTA) {
		uint64_t st;

		if (*rt == 0)
			*rt = realtime_ns();
		lk->rt = *rt;
		vrl_quota_period(&l->seg, *rt, &lk->pid, NULL, &lk->end_rt);
		st = quota_view(l, lk->state, lk->pid);
		if (stale && vrl_quota_word_used(st) && vrl_quota_word_id(st) != lk->pid)
			return LOOK_NEWER;
		lk->q = vrl_quota_take(&l->seg, st, lk->pid, cost);
	} else {
		lk->q = vrl_slots_take(&l->seg, lk->state, cost);
	}
	lk->earliest = at;
	if (lk->q.conforms)
		return LOOK_OK;
	lk->final = true;
	if (cost > l->seg.count || l->seg.kind == VRL_KIND_SLOTS)
		lk->earliest = cost > l->seg.count ? UINT64_MAX : now;
	else
		lk->earliest = lk->end_rt == UINT64_MAX ? UINT64_MAX : now + (lk->end_rt - lk->rt);
	return LOOK_OK;
}

/*
 * A stale handle (its config could not be refreshed, or a reload storm
 * outran it: @gen is not its generation) may use rate word @w only if @w
 * is of its epoch or the one before and fewer than 7 configs were published
 * since its own, so that the tag cannot have wrapped (gcra.h).
 */
static bool stale_word_ok(const struct vrl_snapshot *cfg, const struct vrl_limit *l,
			  uint64_t w, uint64_t gen)
{
	unsigned tag = vrl_gcra_tag(w);

	return gen - cfg->gen_word < VRL_GCRA_TAGS - 1 &&
	       (w == 0 || tag == l->tag || tag == vrl_gcra_epoch_tag(l->tag + VRL_GCRA_TAGS - 1));
}

/* The parameters that wrote a rate word of tag @tag, as @l knows them. */
static const struct vrl_gcra *rate_params(const struct vrl_limit *l, unsigned tag)
{
	if (tag == l->tag)
		return &l->gcra;
	if (tag == vrl_gcra_epoch_tag(l->tag + VRL_GCRA_TAGS - 1) && l->prev.burst)
		return &l->prev;
	return NULL;   /* an older epoch: unknown */
}

uint64_t vrl_rate_tat(const struct vrl_limit *l, uint64_t w, uint64_t now)
{
	if (w == 0 || vrl_gcra_tag(w) == l->tag)
		return vrl_gcra_tat(w);
	return vrl_gcra_convert(rate_params(l, vrl_gcra_tag(w)), &l->gcra, vrl_gcra_tat(w), now);
}

/*
 * The TAT that rate word @lk->state has under @l's parameters at @now:
 * its own, or, for a word of another epoch, the conversion that keeps its
 * fill (gcra.h); a word of 0 (a new key) is full. LOOK_NEWER when the
 * handle's config is stale and cannot read the word; LOOK_NEW for a new
 * key, which take() marks first; LOOK_CONVERT for a word to convert
 * unless @careful (take(): words loaded before the clock read).
 */
static inline int rate_view(const struct vrl_client *c, const struct vrl_limit *l,
			    struct look *lk, uint64_t now, bool careful)
{
	uint64_t w = lk->state;
	unsigned tag = vrl_gcra_tag(w);

	lk->convert = false;
	lk->tat = vrl_gcra_tat(w);
	if (__builtin_expect(lk->gen != c->cfg->gen_word, 0) &&
	    !stale_word_ok(c->cfg, l, w, lk->gen))
		return LOOK_NEWER;
	if (__builtin_expect(tag == l->tag && w != 0, 1))
		return LOOK_OK;
	if (w == 0)
		return LOOK_NEW;
	if (!careful)
		return LOOK_CONVERT;
	lk->convert = true;
	lk->tat = vrl_gcra_convert(rate_params(l, tag), &l->gcra, lk->tat, now);
	return LOOK_OK;
}

/*
 * Step 1, loads: the tag (the key still owns the slot), the state word and
 * the cooldown, then config_gen. No write. LOOK_STALE when the slot no
 * longer holds the key.
 */
static inline __attribute__((always_inline)) int look_load(struct vrl_client *c,
							   const struct vrl_take *t,
							   struct look *lk)
{
	struct vrl_seg_slot *s = &c->view.slots[t->slot];

	/* every field is set by look_judge() on the LOOK_OK path; a stale
	 * look is never read (take() re-places the key and looks again) */
	lk->s = s;
	/* acquire: pairs with promotion (K2), the slot's fields are ready */
	if (atomic_load_explicit(&s->tag, memory_order_acquire) != vrl_key_tag(&t->key))
		return LOOK_STALE;
	/* G1 acquire: pairs with the release of the CAS that wrote the word,
	 * so the config_gen load below sees the config its writer used
	 * (gcra.h: an acquire never reads a word newer than its config) */
	lk->state = atomic_load_explicit(&s->state, memory_order_acquire);
	if (lk->state == VRL_STATE_EVICTED)
		return LOOK_STALE;
	lk->cd = atomic_load_explicit(&s->cooldown, memory_order_relaxed);
	/* relaxed: ordered after the state word by G1 */
	lk->gen = atomic_load_explicit(&c->hdr->config_gen, memory_order_relaxed);
	return LOOK_OK;
}

/* Step 1, the decision for @cost at @at (>= @now) from what look_load() saw
 * (@careful: see rate_view()). */
static inline __attribute__((always_inline)) int
look_judge(struct vrl_client *c, const struct vrl_take *t, uint64_t cost, uint64_t now,
	   uint64_t at, uint64_t *rt, bool careful, struct look *lk)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];

	lk->shadow_deny = false;
	lk->cooled = false;
	lk->final = false;
	lk->convert = false;
	lk->tat = 0;
	if (l->seg.kind == VRL_KIND_RATE) {
		int rc = rate_view(c, l, lk, now, careful);

		if (rc != LOOK_OK)
			return rc;
		lk->r = vrl_gcra_step(&l->gcra, lk->tat, now, at, cost);
		lk->earliest = lk->r.conforms ? at :
			lk->r.retry_after == UINT64_MAX ? UINT64_MAX : now + lk->r.retry_after;
	} else if (l->seg.kind == VRL_KIND_WINDOW) {
		struct vrl_window_ref w = window_ref(c, t, lk->s);

		/* W2 in window.c: the position reads come after the state
		 * word's (acquire) load */
		atomic_thread_fence(memory_order_acquire);
		vrl_window_look(&w, lk->state, cost, at, &lk->w);
		lk->r = (struct vrl_gcra_step){ .conforms = lk->w.earliest == at };
		lk->earliest = lk->w.earliest;
	} else if (counted(l->seg.kind)) {
		lk->r = (struct vrl_gcra_step){ .conforms = true };
		if (look_counted(l, cost, now, at, rt, lk->gen != c->cfg->gen_word, lk) ==
		    LOOK_NEWER)
			return LOOK_NEWER;
	} else {
		lk->r = (struct vrl_gcra_step){ .conforms = true };
		lk->earliest = at;
	}
	if (!lk->final && lk->cd > lk->earliest && lk->earliest != UINT64_MAX) {
		lk->earliest = lk->cd;
		lk->cooled = true;
	}
	if ((l->seg.flags & VRL_LIMIT_SHADOW) && (lk->earliest > at || lk->final)) {
		lk->shadow_deny = true;
		lk->final = false;
		lk->earliest = at;
	}
	return LOOK_OK;
}

/* Both steps of a look, for callers that write nothing (vrl__tightest). */
static int look_at(struct vrl_client *c, const struct vrl_take *t, uint64_t cost,
		   uint64_t now, uint64_t at, uint64_t *rt, struct look *lk)
{
	int rc = look_load(c, t, lk);

	return rc == LOOK_OK ? look_judge(c, t, cost, now, at, rt, true, lk) : rc;
}

/* Undo a CAS of ours if nobody moved the word since (A1). */
static bool undo(struct vrl_seg_slot *s, uint64_t ours, uint64_t before)
{
	/* release (G1): a reader of the word put back sees the config its
	 * first writer used; a failed undo leaves permits taken, which is safe */
	return atomic_compare_exchange_strong_explicit(&s->state, &ours, before,
						       memory_order_release, memory_order_relaxed);
}

/* True when a conversion may have come between @lk's clock read and a
 * word loaded now (C1): the count moved, or vrld's pass was on. */
static inline bool conv_moved(const struct vrl_client *c, const struct look *lk)
{
	/* relaxed: ordered after the word by its load's acquire (C1) */
	return (lk->conv & 1) ||
	       atomic_load_explicit(&c->hdr->rate_conversions, memory_order_relaxed) != lk->conv;
}

/* True when vrld published a config since @lk's look: a word loaded from
 * here on may be newer than the look's config (G1). */
static inline bool gen_moved(const struct vrl_client *c, const struct look *lk)
{
	/* relaxed: ordered after the state word by the failed CAS's acquire */
	return atomic_load_explicit(&c->hdr->config_gen, memory_order_relaxed) != lk->gen;
}

/*
 * Give @cost units back to a quota (within period @pid) or slots key: the
 * rollback of a grant, a release, a refund. Never below zero; a word that
 * vrld evicted is left alone (nothing is held there any more).
 */
static void give_back(struct vrl_seg_slot *s, uint32_t kind, uint64_t pid, uint64_t cost)
{
	uint64_t cur = atomic_load_explicit(&s->state, memory_order_relaxed), next;

	do {
		if (cur == VRL_STATE_EVICTED)
			return;
		next = kind == VRL_KIND_QUOTA ? vrl_quota_credit(cur, pid, cost) :
						vrl_slots_release(cur, cost);
		if (next == cur)
			return;
		/* relaxed: only the count moves; no other data rides on it */
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &cur, next,
							memory_order_relaxed, memory_order_relaxed));
}

enum { COMMIT_OK = 0, COMMIT_RETRY = 1, COMMIT_STALE = 2 };

/* commit_one() for a window key: positions, then the state word (window.c). */
static int commit_window(struct vrl_client *c, const struct vrl_take *t, uint64_t cost,
			 uint64_t at, struct look *lk, uint64_t *before, uint64_t *after)
{
	struct vrl_window_ref w = window_ref(c, t, lk->s);
	int rc = vrl_window_take(&w, lk->w.first, cost, at, after);

	if (rc == 1)
		return COMMIT_RETRY;
	if (rc)
		return COMMIT_STALE;
	lk->w_at = at;
	*before = 0;
	/*
	 * A3: the commit's acquire orders these re-checks after it. A slot
	 * evicted and re-inserted for this very key passes the tag check but
	 * may hold another ring: the commit then read the new incarnation's
	 * state, which orders after vrld emptied aux, so aux tells.
	 */
	if (atomic_load_explicit(&lk->s->tag, memory_order_relaxed) != vrl_key_tag(&t->key) ||
	    atomic_load_explicit(&lk->s->aux, memory_order_relaxed) != t->ring + 1) {
		vrl_window_undo(&w, lk->w.first, cost, at, *after);
		return COMMIT_STALE;
	}
	return COMMIT_OK;
}

/*
 * One commit CAS of a key's state word from *@cur to @next, then the owner
 * check. COMMIT_OK, COMMIT_STALE (the slot changed owner: our CAS undone),
 * or COMMIT_RETRY when the CAS lost a race (*@cur is the word now).
 */
static inline int cas_checked(struct vrl_seg_slot *s, const struct vrl_take *t, uint64_t *cur,
			      uint64_t next)
{
	/* A1 acq_rel: the grant orders after every earlier grant on the key,
	 * and (A3) sees a reuse's state reset if it came first; the release
	 * half and the acquire on failure are G1's */
	if (!atomic_compare_exchange_weak_explicit(&s->state, cur, next, memory_order_acq_rel,
						   memory_order_acquire))
		return COMMIT_RETRY;
	/* A3: relaxed suffices after the acquire above */
	if (atomic_load_explicit(&s->tag, memory_order_relaxed) != vrl_key_tag(&t->key)) {
		undo(s, next, *cur);
		return COMMIT_STALE;
	}
	return COMMIT_OK;
}

/* Step 2 and 3 for a quota or slots key: add @cost to the count. */
static int commit_counted(const struct vrl_client *c, const struct vrl_limit *l,
			  const struct vrl_take *t, uint64_t cost, struct look *lk, uint64_t *before,
			  uint64_t *after)
{
	uint64_t cur = lk->state;
	struct vrl_quota_step q = lk->q;
	int rc;

	for (;;) {
		if (cur == VRL_STATE_EVICTED)
			return COMMIT_STALE;
		if (!q.conforms)
			return COMMIT_RETRY;
		rc = cas_checked(lk->s, t, &cur, q.new_state);
		if (rc == COMMIT_STALE)
			return rc;
		if (rc == COMMIT_OK) {
			lk->q = q;
			lk->state = cur;
			*before = cur;
			*after = q.new_state;
			return COMMIT_OK;
		}
		/* a word that a newer config may have written (a calendar
		 * change) is judged again from a fresh look */
		if (gen_moved(c, lk))
			return COMMIT_RETRY;
		q = l->seg.kind == VRL_KIND_QUOTA ?
			    vrl_quota_take(&l->seg, quota_view(l, cur, lk->pid), lk->pid, cost) :
			    vrl_slots_take(&l->seg, cur, cost);
	}
}

/*
 * Step 2 and 3 for one key: take @cost at @at. Returns COMMIT_OK with the
 * before/after values for rollback, COMMIT_RETRY if it no longer conforms,
 * COMMIT_STALE if the slot changed owner.
 */
static int commit_one(struct vrl_client *c, const struct vrl_take *t, uint64_t cost,
		      uint64_t now, uint64_t at, struct look *lk, uint64_t *before,
		      uint64_t *after)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];
	uint64_t cur = lk->state;
	/* look_at() tested this very state at (now, at, cost): reuse it */
	struct vrl_gcra_step r = lk->r;
	int rc;

	*before = *after = 0;
	if (lk->shadow_deny)
		return COMMIT_OK;
	if (counted(l->seg.kind))
		return commit_counted(c, l, t, cost, lk, before, after);
	if (__builtin_expect(l->seg.kind == VRL_KIND_WINDOW, 0))
		return commit_window(c, t, cost, at, lk, before, after);
	if (l->seg.kind != VRL_KIND_RATE)
		return COMMIT_OK;
	/* C1 (a): a conversion is counted after its clock read, before its
	 * CAS; relaxed: the CAS's release publishes it with the word */
	if (lk->convert)
		atomic_fetch_add_explicit(&c->hdr->rate_conversions, 2, memory_order_relaxed);
	for (;;) {
		uint64_t next = vrl_gcra_word(l->tag, r.new_tat);

		if (cur == VRL_STATE_EVICTED)
			return COMMIT_STALE;
		if (!r.conforms)
			return COMMIT_RETRY;
		rc = cas_checked(lk->s, t, &cur, next);
		if (rc == COMMIT_STALE)
			return rc;
		if (rc == COMMIT_OK) {
			lk->r = r;
			/* a rollback undoes the grant, never the conversion: a
			 * word's epoch only moves forward (gcra.h) */
			*before = lk->convert ? vrl_gcra_word(l->tag, lk->tat) : cur;
			*after = next;
			return COMMIT_OK;
		}
		/* the word the failed CAS loaded came after our clock read: use
		 * it only as a word of our epoch that needs no conversion, under
		 * the config of the look, no conversion counted since (gcra.h,
		 * C1); else look again */
		if (lk->convert || cur == 0 || vrl_gcra_tag(cur) != l->tag || gen_moved(c, lk) ||
		    conv_moved(c, lk))
			return COMMIT_RETRY;
		r = vrl_gcra_step(&l->gcra, vrl_gcra_tat(cur), now, at, cost);
	}
}

void (*vrl__kept)(uint32_t limit, uint64_t at, uint64_t cost);

/* Roll back the grant of one key (A1), taken at @at. */
static void rollback(const struct vrl_client *c, const struct vrl_take *t, struct look *lk,
		     uint64_t cost, uint64_t at, uint64_t before, uint64_t after)
{
	uint32_t kind = c->cfg->limits[t->limit].seg.kind;

	if (kind == VRL_KIND_WINDOW) {
		struct vrl_window_ref w = window_ref(c, t, lk->s);

		/* a shadow key took nothing (commit_one) */
		if (!lk->shadow_deny)
			vrl_window_undo(&w, lk->w.first, cost, lk->w_at, after);
		return;
	}
	if (after == before)
		return;
	if (counted(kind))
		give_back(lk->s, kind, lk->pid, cost);
	else if (!undo(lk->s, after, before) && vrl__kept)
		vrl__kept(t->limit, at, cost);
}

/* Permits the key of @t has left after what @lk decided (off the CAS path:
 * it costs a division). A gate never runs out. */
static uint64_t look_remaining(const struct vrl_client *c, const struct vrl_take *t,
			       const struct look *lk, uint64_t now)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];

	if (t->slot == UINT64_MAX)
		return UINT64_MAX;
	if (counted(l->seg.kind))
		return lk->q.remaining;
	if (l->seg.kind == VRL_KIND_WINDOW) {
		struct vrl_window_ref w = window_ref(c, t, lk->s);

		return vrl_window_remaining(&w, now);
	}
	if (l->seg.kind != VRL_KIND_RATE)
		return UINT64_MAX;
	return vrl_gcra_available(&l->gcra, lk->r.conforms ? lk->r.new_tat : lk->tat, now);
}

/* limit, remaining and reset of a window key (off the CAS path; O(log n)) */
static void window_figures(struct vrl_client *c, const struct vrl_take *t, const struct look *lk,
			   uint64_t now, struct vrl_verdict *v)
{
	struct vrl_window_ref w = window_ref(c, t, lk->s);
	uint64_t reset = vrl_window_reset_est(&w, now);

	v->limit_value = w.n;
	v->remaining = vrl_window_remaining(&w, now);
	v->reset_ns = reset > now ? reset - now : 0;
}

/* The verdict's figures of the key of @t: its size and when it is whole. */
static void key_figures(const struct vrl_limit *l, const struct look *lk, uint64_t now,
			uint64_t tat, struct vrl_verdict *v)
{
	v->kind = l->seg.kind;
	v->overage = 0;
	switch (l->seg.kind) {
	case VRL_KIND_RATE:
		v->limit_value = l->gcra.burst;
		v->reset_ns = tat > now ? tat - now : 0;
		return;
	case VRL_KIND_QUOTA:
		v->limit_value = l->seg.count;
		v->reset_ns = lk->end_rt == UINT64_MAX ? VRL_NEVER : lk->end_rt - lk->rt;
		v->overage = lk->q.overage;
		return;
	case VRL_KIND_SLOTS:
		v->limit_value = l->seg.count;
		v->reset_ns = 0;   /* whole again when its holders release */
		return;
	default:
		v->limit_value = 0;
		v->reset_ns = 0;
	}
}

static void fill_denied(struct vrl_client *c, const struct vrl_take *t, const struct look *lk,
			uint64_t now, struct vrl_verdict *v)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];

	v->granted = 0;
	v->limit = (int)t->limit;
	v->limit_name = l->seg.name;
	/* slots: no time is known (0: after a release); quota: the period's end */
	v->retry_after_ns = lk->earliest == UINT64_MAX ? VRL_NEVER : lk->earliest - now;
	if (l->seg.kind == VRL_KIND_RATE)
		v->remaining = vrl_gcra_available(&l->gcra, lk->tat, now);
	else
		v->remaining = counted(l->seg.kind) ? lk->q.remaining : 0;
	key_figures(l, lk, now, lk->tat, v);
	if (l->seg.kind == VRL_KIND_WINDOW)
		window_figures(c, t, lk, now, v);
	if (lk->cooled)
		v->flags |= VRL_VERDICT_COOLDOWN;
}

static void fill_granted(struct vrl_client *c, const struct vrl_take *t, const struct look *lk,
			 unsigned n, uint64_t now, struct vrl_verdict *v)
{
	uint64_t best = UINT64_MAX;
	bool best_over = false;

	v->granted = 1;
	v->retry_after_ns = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct vrl_limit *l = &c->cfg->limits[t[i].limit];
		uint64_t rem = look_remaining(c, &t[i], &lk[i], now);
		bool over = false;

		if (t[i].slot == UINT64_MAX)
			continue;
		if (lk[i].shadow_deny) {
			v->flags |= VRL_VERDICT_SHADOW;
			if (c->holder)   /* what the limit would have denied */
				bump(&c->holder->limit_shadow[t[i].limit]);
		} else if (counted(l->seg.kind)) {
			over = lk[i].q.overage > 0;
			if (over)
				v->flags |= VRL_VERDICT_OVERAGE;
			if (lk[i].q.saturated)
				v->flags |= VRL_VERDICT_SATURATED;
			if (lk[i].q.alert) {
				v->flags |= VRL_VERDICT_ALERT;
				/* one event per threshold, key and period: see alert.c */
				vrl_alert_check(&c->view, &l->seg, t[i].limit,
						c->cfg->generation, t[i].slot,
						 lk[i].q.used - (v->cost < lk[i].q.used ?
								 v->cost : lk[i].q.used),
						 lk[i].q.used, lk[i].pid);
			}
		}
		/* the fewest left decides; among those, a key in overage */
		if (v->limit >= 0 && (rem > best || (rem == best && (best_over || !over))))
			continue;
		best = rem;
		best_over = over;
		v->limit = (int)t[i].limit;
		v->limit_name = l->seg.name;
		v->kind = l->seg.kind;
		v->remaining = rem == UINT64_MAX ? 0 : rem;
		key_figures(l, &lk[i], now, lk[i].r.new_tat, v);
		if (l->seg.kind == VRL_KIND_WINDOW)
			window_figures(c, &t[i], &lk[i], now, v);
	}
}

/* ---- process slots: the holder's record ---------------------------------------------- */

static bool process_slots(const struct vrl_limit *l)
{
	return l->seg.kind == VRL_KIND_SLOTS && !(l->seg.flags & VRL_LIMIT_PERSIST);
}

/* Record @units held at @slot (key @tag). Single writer: the owning handle. */
static void hold_add(struct vrl_client *c, uint64_t slot, uint64_t tag, uint64_t units)
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
static void hold_sub(struct vrl_client *c, uint64_t slot, uint64_t tag, uint64_t units)
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
	/* acquire: pairs with hold_add's release, tag and slot are the units' */
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
	/* acquire: pairs with promotion (K2); a key that moved is not ours.
	 * A slots key with units held is never evicted (vrl_seg_sweep), so
	 * the slot keeps its key from this check to the give-back, unless an
	 * operator's reset emptied it, and then there is nothing to give. */
	if (atomic_load_explicit(&s->tag, memory_order_acquire) != tag)
		return;
	give_back(s, VRL_KIND_SLOTS, 0, u);
}

/* Record the process slots a grant took, after its CASes. */
static void hold_grant(struct vrl_client *c, const struct vrl_take *t, const struct look *lk,
		       unsigned n, uint64_t cost)
{
	for (unsigned i = 0; i < n; i++)
		if (t[i].slot != UINT64_MAX && !lk[i].shadow_deny &&
		    process_slots(&c->cfg->limits[t[i].limit]))
			hold_add(c, t[i].slot, vrl_key_tag(&t[i].key), cost);
}

static void count(struct vrl_client *c, const struct vrl_take *t, unsigned n,
		  const struct vrl_verdict *v)
{
	struct vrl_seg_holder *h = c->holder;

	if (!h)
		return;
	if (v->granted) {
		bump(&h->granted);
		for (unsigned i = 0; i < n; i++)
			bump(&h->limit_granted[t[i].limit]);
	} else {
		bump(&h->denied);
		if (v->limit >= 0)
			bump(&h->limit_denied[v->limit]);
	}
}

static void sleep_until(uint64_t at)
{
	struct timespec ts = vrl_ns_ts(at);

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/*
 * The order to commit in: fewest permits left first. The tightest key is
 * the one a concurrent acquire most likely takes first; losing that race
 * before taking the others spares a rollback, and a rollback that comes
 * too late to undo (A1) wastes permits of the looser keys.
 */
static void commit_order(const struct vrl_client *c, const struct vrl_take *t,
			 const struct look *lk, unsigned n, uint64_t now, unsigned order[])
{
	uint64_t rem[VRL_MAX_MATCHED];

	order[0] = 0;
	if (n == 1)
		return;
	for (unsigned i = 0; i < n; i++) {
		unsigned j = i;

		rem[i] = look_remaining(c, &t[i], &lk[i], now);
		for (; j > 0 && rem[order[j - 1]] > rem[i]; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
}

/*
 * A new key's word is 0. Before an acquire judges it, it writes a full word
 * of its own epoch there (TAT = @now) and looks again: so an acquire never
 * CASes from 0 to a charged word, and a slot that becomes new again under a
 * descheduled acquire (reset, re-insert) cannot take that acquire's write
 * (gcra.h, the horizon of the tag).
 */
static void mark_new_key(struct vrl_client *c, const struct vrl_take *t, struct look *lk,
			 uint64_t now)
{
	uint64_t zero = 0;

	/* as a commit: acq_rel, the owner re-checked after (A3) */
	cas_checked(lk->s, t, &zero,
		    vrl_gcra_word(c->cfg->limits[t->limit].tag,
				  now < VRL_GCRA_TIME_MAX ? now : VRL_GCRA_TIME_MAX));
}

/*
 * Step 1 again for key @k at @at > @now, just before its commit: its words
 * are loaded after the clock read, so a rate word is used only if it needs
 * no conversion, or is the very word the first look converted, under the
 * same config (gcra.h, C1). COMMIT_OK to go on, else what commit_one()
 * would return.
 */
static int relook(struct vrl_client *c, const struct vrl_take *t, uint64_t cost, uint64_t now,
		  uint64_t at, uint64_t *rt, struct look *lk)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];
	uint64_t seen = lk->state, gen = lk->gen;

	if (look_load(c, t, lk) == LOOK_STALE)
		return COMMIT_STALE;
	/* a word still the one the look loaded was not converted since: a
	 * conversion moves its tag on, and no write brings an older tag back
	 * (a rollback never undoes a conversion). The count matters only for
	 * a word that moved, so one kept moving or odd by a group member costs
	 * retries under contention, not a waiting acquire's sleep */
	if (lk->gen != gen || (lk->state != seen && conv_moved(c, lk)))
		return COMMIT_RETRY;
	if (l->seg.kind == VRL_KIND_RATE && lk->state != seen &&
	    (lk->state == 0 || vrl_gcra_tag(lk->state) != l->tag || vrl_gcra_tag(seen) != l->tag))
		return COMMIT_RETRY;
	return look_judge(c, t, cost, now, at, rt, true, lk) == LOOK_OK ? COMMIT_OK :
									 COMMIT_RETRY;
}

/*
 * A waiting acquire has slept until its reservation's time. A reload may
 * have converted one of its rate keys meanwhile (gcra.h, C1 (c)): then its
 * reservation is dropped. Else the word is moved on by one nanosecond, so
 * that a conversion which read its clock before now fails its CAS and is
 * done again after this reservation's time. True when one is dropped.
 */
static bool reservation_lost(struct vrl_client *c, const struct vrl_take *t,
			     const struct look *lk, unsigned n, const uint64_t after[])
{
	for (unsigned i = 0; i < n; i++) {
		struct vrl_seg_slot *s;
		uint64_t w;

		if (t[i].slot == UINT64_MAX || lk[i].shadow_deny ||
		    c->cfg->limits[t[i].limit].seg.kind != VRL_KIND_RATE)
			continue;
		s = lk[i].s;
		/* G1 acquire: the config_gen load below sees every config
		 * that a converter of this word used */
		w = atomic_load_explicit(&s->state, memory_order_acquire);
		for (;;) {
			uint64_t gen = atomic_load_explicit(&c->hdr->config_gen,
							    memory_order_relaxed);

			if (w == VRL_STATE_EVICTED || vrl_gcra_tag(w) != vrl_gcra_tag(after[i]) ||
			    gen - lk[i].gen >= VRL_GCRA_TAGS - 1)
				return true;
			if (vrl_gcra_tat(w) >= VRL_GCRA_TIME_MAX)
				break;
			/* release (G1); acquire on failure, for the loads above */
			if (atomic_compare_exchange_weak_explicit(&s->state, &w, w + 1,
								  memory_order_release,
								  memory_order_acquire))
				break;
		}
	}
	return false;
}

/* Undo every take of a grant that was committed: rollback and records. */
static void give_up(struct vrl_client *c, const struct vrl_take *t, struct look *lk,
		    unsigned n, uint64_t cost, uint64_t at, const uint64_t before[],
		    const uint64_t after[])
{
	for (unsigned k = 0; k < n; k++) {
		if (t[k].slot == UINT64_MAX)
			continue;
		/* unrecord first: a crash in between leaks, never gives back twice */
		if (!lk[k].shadow_deny && process_slots(&c->cfg->limits[t[k].limit]))
			hold_sub(c, t[k].slot, vrl_key_tag(&t[k].key), cost);
		rollback(c, &t[k], &lk[k], cost, at, before[k], after[k]);
	}
}

/*
 * The key of @t cannot be judged with the handle's config (a newer one was
 * published, or a reservation was dropped): start over with a fresh config,
 * or, on the last try (@last), deny without writing, retry at once.
 */
static int start_over(struct vrl_client *c, const struct vrl_take *t, uint64_t now, bool last,
		      struct vrl_verdict *v)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];

	if (!last)
		return VRL__RESTART;
	v->granted = 0;
	v->at_ns = now;
	v->limit = (int)t->limit;
	v->limit_name = l->seg.name;
	v->kind = l->seg.kind;
	v->retry_after_ns = 0;
	v->remaining = 0;
	v->limit_value = l->seg.kind == VRL_KIND_RATE ? l->gcra.burst : l->seg.count;
	return VRL_EDENIED;
}

/*
 * Acquire takes @t[0..n) with @cost, granting no later than @deadline
 * (deadline == now: immediately or not at all). Re-places stale keys.
 * VRL__RESTART when the caller must refresh its config and plan again
 * (never on its last try, @last: then the handle's config is used as
 * stale, and what it cannot read is denied).
 */
static int take(struct vrl_client *c, struct vrl_take *t, unsigned n, uint64_t cost,
		uint64_t deadline, bool waiting, bool last, struct vrl_verdict *v)
{
	struct look lk[VRL_MAX_MATCHED];
	uint64_t before[VRL_MAX_MATCHED], after[VRL_MAX_MATCHED];
	unsigned order[VRL_MAX_MATCHED];
	bool careful = false;

	for (;;) {
		uint64_t now, at, rt = 0, conv;
		unsigned worst = 0, i, done;
		int stale = -1, final = -1, newer = -1, jr;
		bool again = false;

		/*
		 * Step 1: look. C1 (gcra.h): the clock is read first, as ever,
		 * and the words it judges must not have been converted after it:
		 * rate_conversions, read before the clock and again after the
		 * loads, shows none was. Else the look is done again carefully:
		 * every key loaded first, then the clock read.
		 */
		/* acquire: ordered before the clock read and the loads below */
		conv = atomic_load_explicit(&c->hdr->rate_conversions, memory_order_acquire);
		now = careful ? 0 : vrl_now_ns();
		for (i = 0; i < n; i++)
			if (t[i].slot != UINT64_MAX && look_load(c, &t[i], &lk[i]) == LOOK_STALE) {
				stale = (int)i;
				break;
			}
		if (careful) {
			now = vrl_now_ns();
		} else if (stale < 0 && ((conv & 1) ||
					 /* relaxed: after the state words' acquire loads */
					 atomic_load_explicit(&c->hdr->rate_conversions,
							      memory_order_relaxed) != conv)) {
			careful = true;   /* a conversion may have come after the clock */
			continue;
		}
		at = now;
		if (!waiting)
			deadline = now;
		for (i = 0; stale < 0 && i < n; i++) {
			if (t[i].slot == UINT64_MAX) {
				memset(&lk[i], 0, sizeof(lk[i]));
				lk[i].earliest = now;
				continue;
			}
			lk[i].conv = conv;
			/* a config published since enter(): refresh and plan again */
			if (lk[i].gen != c->cfg->gen_word && !c->cfg->stale && !last)
				return VRL__RESTART;
			jr = look_judge(c, &t[i], cost, now, now, &rt, careful, &lk[i]);
			if (__builtin_expect(jr != LOOK_OK, 0)) {
				if (jr == LOOK_NEWER) {
					newer = (int)i;
					break;
				}
				if (jr == LOOK_NEW)   /* look again at the key marked */
					mark_new_key(c, &t[i], &lk[i], now);
				else                  /* LOOK_CONVERT: loads, then clock */
					careful = true;
				again = true;
				continue;
			}
			if (lk[i].final && final < 0)
				final = (int)i;
			if (lk[i].earliest > at) {
				at = lk[i].earliest;
				worst = i;
			}
		}
		if (again && newer < 0)
			continue;
		if (newer >= 0)
			return start_over(c, &t[newer], now, last, v);
		v->at_ns = at;
		if (stale < 0 && final >= 0) {
			v->at_ns = now;
			fill_denied(c, &t[final], &lk[final], now, v);
			return VRL_EDENIED;
		}
		if (stale < 0 && at > deadline) {
			v->at_ns = now;
			fill_denied(c, &t[worst], &lk[worst], now, v);
			return VRL_EDENIED;
		}
		/* step 2 and 3: commit at `at`, tightest key first (a stale look
		 * left the looks after it unwritten: nothing is committed then) */
		if (stale < 0)
			commit_order(c, t, lk, n, now, order);
		for (done = 0; stale < 0 && done < n; done++) {
			unsigned k = order[done];
			int rc = COMMIT_OK;

			if (t[k].slot == UINT64_MAX) {
				before[k] = after[k] = 0;
				continue;
			}
			if (at != now)
				rc = relook(c, &t[k], cost, now, at, &rt, &lk[k]);
			if (rc == COMMIT_OK)
				rc = commit_one(c, &t[k], cost, now, at, &lk[k], &before[k], &after[k]);
			if (rc == COMMIT_OK)
				continue;
			if (rc == COMMIT_STALE)
				stale = (int)k;
			break;
		}
		if (stale < 0 && done == n) {
			hold_grant(c, t, lk, n, cost);
			if (at > now) {
				if (c->holder)   /* the wait, on the limit that set it */
					bump_by(&c->holder->limit_wait_ns[t[worst].limit],
						at - now);
				sleep_until(at);
				if (reservation_lost(c, t, lk, n, after)) {
					give_up(c, t, lk, n, cost, at, before, after);
					return start_over(c, &t[worst], at, last, v);
				}
			}
			fill_granted(c, t, lk, n, now, v);
			return 0;
		}
		while (done-- > 0) {
			unsigned k = order[done];

			if (t[k].slot != UINT64_MAX)
				rollback(c, &t[k], &lk[k], cost, at, before[k], after[k]);
		}
		if (stale >= 0) {
			char label[VRL_LABEL_MAX];
			int rc;

			label[0] = '\0';
			rc = place(c, &t[stale], label);
			/* the policy decides this verdict as it does at plan time */
			if (rc == VRL_EFULL)
				v->flags |= VRL_VERDICT_TABLE_FULL;
			if (rc == VRL_EFULL && !(c->cfg->flags & VRL_CFG_FAIL_OPEN))
				return rc;
			if (rc && rc != VRL_EFULL)
				return rc;
		}
	}
}

static void verdict_init(struct vrl_verdict *v, unsigned n)
{
	memset(v, 0, sizeof(*v));
	v->limit = -1;
	v->matched = n;
}

/*
 * Shared tail of the acquire calls: take @t[0..n), waiting until @deadline
 * when @waiting. VRL__RESTART as take(), @last passed on.
 */
static int acquire_takes(struct vrl_client *c, struct vrl_take *t, unsigned n, bool full,
			 uint64_t cost, uint64_t deadline, bool waiting, bool last,
			 struct vrl_verdict *v)
{
	struct vrl_verdict local;
	int rc;

	if (!v)
		v = &local;
	verdict_init(v, n);
	if (cost == 0)
		cost = 1;
	v->cost = cost;
	if (full) {
		v->flags |= VRL_VERDICT_TABLE_FULL;
		if (!(c->cfg->flags & VRL_CFG_FAIL_OPEN)) {
			count(c, t, 0, v);
			return VRL_EFULL;
		}
	}
	if (n == 0) {
		v->granted = 1;
		v->flags |= VRL_VERDICT_NO_LIMIT;
		count(c, t, 0, v);
		return 0;
	}
	/* an immediate acquire takes its deadline from take()'s own clock
	 * read: one clock read per call on the common path */
	rc = take(c, t, n, cost, deadline, waiting, last, v);
	if (rc == 0 || rc == VRL_EDENIED)
		count(c, t, n, v);
	return rc;
}

int vrl_acquire(vrl_client *c, const struct vrl_request *req, struct vrl_verdict *v)
{
	return vrl_acquire_wait(c, req, 0, v) ;
}

int vrl_acquire_wait(vrl_client *c, const struct vrl_request *req, uint64_t timeout_ns,
		     struct vrl_verdict *v)
{
	struct vrl_take t[VRL_MAX_MATCHED];
	uint64_t deadline = 0, state;
	bool full;
	int n, rc;

	if (v)
		v->granted = 0;   /* whatever ends the call early grants nothing */
	if (c->readonly)
		return VRL_EREADONLY;
	if (timeout_ns > 0)
		deadline = timeout_ns > UINT64_MAX / 2 ? UINT64_MAX : vrl_now_ns() + timeout_ns;
	/* a config published under the call: plan again with it */
	for (unsigned tries = 0;; tries++) {
		rc = enter(c, &state);
		if (rc)
			return rc;
		n = plan(c, req, t, &full);
		if (n < 0)
			return leave(c, state, n, NULL);
		rc = acquire_takes(c, t, (unsigned)n, full, req->cost, deadline, timeout_ns > 0,
				   tries + 1 >= RESTARTS_MAX, v);
		/* a try the mapping's damage voided ends the call (leave()) */
		rc = leave(c, state, rc, v);
		if (rc != VRL__RESTART)
			return rc;
	}
}

/* ---- resolved requests --------------------------------------------------------------- */

#define RESOLVED_FIELDS 6

struct vrl_resolved {
	struct vrl_client *c;
	uint64_t generation;
	uint64_t cost;
	unsigned n;
	bool full;
	struct vrl_take t[VRL_MAX_MATCHED];
	struct vrl_request req;           /* points into strings below */
	struct vrl_attr *attrs;
	char *strings;
};

static char *copy_str(char **dst, const char *s)
{
	char *r;
	size_t len;

	if (!s)
		return NULL;
	len = strlen(s) + 1;
	r = memcpy(*dst, s, len);
	*dst += len;
	return r;
}

static size_t request_bytes(const struct vrl_request *q)
{
	const char *f[RESOLVED_FIELDS] = { q->api, q->endpoint, q->token, q->org, q->vehicle, q->user };
	size_t b = 0;

	for (int i = 0; i < RESOLVED_FIELDS; i++)
		b += f[i] ? strlen(f[i]) + 1 : 0;
	for (size_t i = 0; i < q->nattrs; i++)
		b += (q->attrs[i].name ? strlen(q->attrs[i].name) + 1 : 0) +
		     (q->attrs[i].value ? strlen(q->attrs[i].value) + 1 : 0);
	return b;
}

static int copy_request(struct vrl_resolved *r, const struct vrl_request *q)
{
	size_t b = request_bytes(q);
	char *p;

	r->strings = malloc(b ? b : 1);
	r->attrs = q->nattrs ? calloc(q->nattrs, sizeof(*r->attrs)) : NULL;
	if (!r->strings || (q->nattrs && !r->attrs))
		return -ENOMEM;
	p = r->strings;
	r->req.api = copy_str(&p, q->api);
	r->req.endpoint = copy_str(&p, q->endpoint);
	r->req.token = copy_str(&p, q->token);
	r->req.org = copy_str(&p, q->org);
	r->req.vehicle = copy_str(&p, q->vehicle);
	r->req.user = copy_str(&p, q->user);
	for (size_t i = 0; i < q->nattrs; i++) {
		r->attrs[i].name = copy_str(&p, q->attrs[i].name);
		r->attrs[i].value = copy_str(&p, q->attrs[i].value);
	}
	r->req.attrs = r->attrs;
	r->req.nattrs = q->nattrs;
	r->req.cost = q->cost;
	return 0;
}

static int replan(struct vrl_resolved *r)
{
	int n = plan(r->c, &r->req, r->t, &r->full);

	if (n < 0)
		return n;
	r->n = (unsigned)n;
	r->generation = r->c->cfg->generation;
	return 0;
}

int vrl_resolve(vrl_client *c, const struct vrl_request *req, vrl_resolved **out)
{
	struct vrl_resolved *r;
	uint64_t state;
	int rc;

	if (c->readonly)
		return VRL_EREADONLY;
	rc = enter(c, &state);
	if (rc)
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->c = c;
	r->cost = req->cost ? req->cost : 1;
	rc = copy_request(r, req);
	if (rc == 0)
		rc = replan(r);
	rc = leave(c, state, rc, NULL);
	if (rc) {
		vrl_resolved_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void vrl_resolved_free(vrl_resolved *r)
{
	if (!r)
		return;
	free(r->strings);
	free(r->attrs);
	free(r);
}

/* One try of vrl_acquire_resolved(); @last as take(). */
static inline int acquire_resolved_once(vrl_client *c, vrl_resolved *r, uint64_t cost,
					bool last, struct vrl_verdict *v)
{
	uint64_t state;
	int rc;

	if (v)
		v->granted = 0;   /* whatever ends the call early grants nothing */
	rc = enter(c, &state);
	if (rc)
		return rc;
	if (__builtin_expect(r->generation != c->cfg->generation || r->full, 0)) {
		rc = replan(r);
		if (rc)
			return leave(c, state, rc, NULL);
	}
	rc = acquire_takes(c, r->t, r->n, r->full, cost ? cost : r->cost, 0, false, last, v);
	return leave(c, state, rc, v);
}

int vrl_acquire_resolved(vrl_client *c, vrl_resolved *r, uint64_t cost, struct vrl_verdict *v)
{
	int rc = acquire_resolved_once(c, r, cost, false, v);

	/* a config published under the call: plan again with it */
	for (unsigned tries = 1; __builtin_expect(rc == VRL__RESTART, 0); tries++)
		rc = acquire_resolved_once(c, r, cost, tries + 1 >= RESTARTS_MAX, v);
	return rc;
}

/* ---- operations: cooldown and reset ------------------------------------------------------ */

#define KINDS_ALL    UINT32_MAX
#define KIND_BIT(k)  (1u << (k))

/*
 * Apply @op to the key of each limit of a kind in @kinds that matches @req
 * (or the limit named @limit). Of an override group only the member that
 * an acquire would take is selected.
 */
static int keys_do(struct vrl_client *c, const struct vrl_request *req, const char *limit,
		   bool insert, uint32_t kinds,
		   int (*op)(struct vrl_client *, struct vrl_take *, uint64_t), uint64_t arg)
{
	int matched = 0, keyed = 0, rc;

	for (uint32_t i = 0; i < c->cfg->nlimits; i++) {
		const struct vrl_limit *l = &c->cfg->limits[i];
		struct vrl_take t = { .limit = i };
		char label[VRL_LABEL_MAX];

		if (!(kinds & KIND_BIT(l->seg.kind)))
			continue;
		if (limit ? strcmp(limit, l->seg.name) != 0 : !vrl_limit_selected(c->cfg, i, req))
			continue;
		matched++;
		vrl_limit_key(l, req, &t.key, label);
		rc = insert ? kt_get(c, &t.key, vrl_slot_note(i, &l->seg, c->cfg->generation),
					 label, &t.slot) :
			      vrl_kt_find(&c->view, &t.key, &t.slot);
		if (rc == VRL_ENOKEY)
			continue;   /* no slot: nothing to do for this limit */
		if (rc == 0)
			rc = op(c, &t, arg);
		if (rc)
			return rc;
		keyed++;
	}
	if (matched == 0)
		return VRL_ENOLIMIT;
	return keyed ? 0 : VRL_ENOKEY;
}

static int for_keys(struct vrl_client *c, const struct vrl_request *req, const char *limit,
		    bool insert, uint32_t kinds,
		    int (*op)(struct vrl_client *, struct vrl_take *, uint64_t), uint64_t arg)
{
	uint64_t state;
	int rc;

	if (c->readonly)
		return VRL_EREADONLY;
	rc = enter(c, &state);
	if (rc)
		return rc;
	return leave(c, state, keys_do(c, req, limit, insert, kinds, op, arg), NULL);
}

static int op_cooldown(struct vrl_client *c, struct vrl_take *t, uint64_t until)
{
	for (;;) {
		struct vrl_seg_slot *s = &c->view.slots[t->slot];
		uint64_t cur = atomic_load_explicit(&s->cooldown, memory_order_relaxed);

		/* seq_cst: the cooldown store and the eviction check below form
		 * a Dekker pair with vrld's state CAS (E1) and its cooldown load:
		 * either vrld sees the cooldown, or we see the eviction */
		while (cur < until && !atomic_compare_exchange_weak(&s->cooldown, &cur, until))
			;
		if (atomic_load(&s->state) != VRL_STATE_EVICTED &&
		    atomic_load_explicit(&s->tag, memory_order_acquire) == vrl_key_tag(&t->key)) {
			if (c->holder)
				bump(&c->holder->limit_cooldowns[t->limit]);
			return 0;
		}
		int rc = kt_get(c, &t->key,
				    vrl_slot_note(t->limit, &c->cfg->limits[t->limit].seg,
						  c->cfg->generation),
				    "", &t->slot);

		if (rc)
			return rc;
	}
}

static int op_reset(struct vrl_client *c, struct vrl_take *t, uint64_t unused)
{
	struct vrl_seg_slot *s = &c->view.slots[t->slot];
	uint64_t cur = atomic_load_explicit(&s->state, memory_order_relaxed);

	(void)unused;
	if (c->cfg->limits[t->limit].seg.kind == VRL_KIND_WINDOW &&
	    window_ring(c, t, &t->ring) == 0) {
		struct vrl_window_ref w = window_ref(c, t, s);

		/* relaxed: an operator's act; every grant of the window forgotten */
		for (uint64_t i = 0; i < w.n; i++)
			atomic_store_explicit(&w.ring[i], 0, memory_order_relaxed);
	}
	/* relaxed: a reset is an operator's act with no ordering to keep; the
	 * CAS keeps it from resurrecting an evicted slot */
	while (cur != VRL_STATE_EVICTED &&
	       !atomic_compare_exchange_weak_explicit(&s->state, &cur, 0, memory_order_relaxed,
						      memory_order_relaxed))
		;
	atomic_store_explicit(&s->cooldown, 0, memory_order_relaxed);
	return 0;
}

int vrl_cooldown(vrl_client *c, const struct vrl_request *req, const char *limit,
		 uint64_t until_ns)
{
	return for_keys(c, req, limit, true, KINDS_ALL, op_cooldown, until_ns);
}

int vrl_reset(vrl_client *c, const struct vrl_request *req, const char *limit)
{
	return for_keys(c, req, limit, false, KINDS_ALL, op_reset, 0);
}

/* ---- operations: release, refund, reconcile ------------------------------------------------ */

static int op_release(struct vrl_client *c, struct vrl_take *t, uint64_t cost)
{
	struct vrl_seg_slot *s = &c->view.slots[t->slot];

	/* unrecord first: a crash in between leaks, never gives back twice */
	if (process_slots(&c->cfg->limits[t->limit]))
		hold_sub(c, t->slot, vrl_key_tag(&t->key), cost);
	give_back(s, VRL_KIND_SLOTS, 0, cost);
	return 0;
}

int vrl_release(vrl_client *c, const struct vrl_request *req, const char *limit, uint64_t cost)
{
	return for_keys(c, req, limit, false, KIND_BIT(VRL_KIND_SLOTS), op_release,
			cost ? cost : 1);
}

/*
 * True when rate word @w, just loaded (acquire), can be moved with @c's
 * config: a new key's, or one of its epoch, loaded while that config was
 * in force (G1). Feedback moves only such words; a word of another
 * epoch is left for its next acquire to convert, which a refund or a
 * reconcile can miss without harm (they only give room back, or are
 * repeated by the next answer).
 */
static bool rate_word_ours(const struct vrl_client *c, const struct vrl_limit *l, uint64_t w)
{
	/* relaxed: ordered after the word's load by its acquire */
	return w != VRL_STATE_EVICTED && (w == 0 || vrl_gcra_tag(w) == l->tag) &&
	       atomic_load_explicit(&c->hdr->config_gen, memory_order_relaxed) ==
		       c->cfg->gen_word;
}

/* Move the TAT of rate key @s back by @cost permits, never past a full bucket. */
static void refund_rate(const struct vrl_client *c, const struct vrl_limit *l,
			struct vrl_seg_slot *s, uint64_t cost)
{
	/* G1 acquire, as look_load() */
	uint64_t cur = atomic_load_explicit(&s->state, memory_order_acquire), next, back, now, tat;

	if (__builtin_mul_overflow(cost, l->gcra.emission_ns, &back))
		back = UINT64_MAX;
	do {
		if (cur == 0 || !rate_word_ours(c, l, cur))
			return;   /* new, gone, or of another epoch */
		now = vrl_now_ns();
		tat = vrl_gcra_tat(cur);
		if (tat <= now)
			return;   /* already full */
		next = vrl_gcra_word(l->tag, tat - now > back ? tat - back : now);
		/* release (G1); acquire on failure, as the load above. No other
		 * data rides on it: a refund only makes room */
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &cur, next,
							memory_order_release, memory_order_acquire));
}

/*
 * Give back @cost grants of window key @t that still hold a position: the
 * newest ones (vrl_window_credit). A key without a ring took nothing yet.
 */
static void refund_window(struct vrl_client *c, const struct vrl_take *t, uint64_t cost)
{
	const struct vrl_seg_limit *l = &c->cfg->limits[t->limit].seg;
	struct vrl_window_ref w;
	uint64_t now = vrl_now_ns();

	if (vrl_window_ref_of(&c->view, l, t->slot, &w) != 0)
		return;
	/* a position at or before now - W is free already: crediting it would
	 * spend the refund on room that is there anyway */
	vrl_window_credit(&w, cost, now >= w.w ? now - w.w + 1 : 1);
}

static int op_refund(struct vrl_client *c, struct vrl_take *t, uint64_t cost)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];
	struct vrl_seg_slot *s = &c->view.slots[t->slot];
	uint64_t pid;

	if (l->seg.kind == VRL_KIND_RATE) {
		refund_rate(c, l, s, cost);
		return 0;
	}
	if (l->seg.kind == VRL_KIND_WINDOW) {
		refund_window(c, t, cost);
		return 0;
	}
	vrl_quota_period(&l->seg, realtime_ns(), &pid, NULL, NULL);
	give_back(s, VRL_KIND_QUOTA, pid, cost);
	return 0;
}

int vrl_refund(vrl_client *c, const struct vrl_request *req, const char *limit, uint64_t cost)
{
	return for_keys(c, req, limit, false,
			KIND_BIT(VRL_KIND_RATE) | KIND_BIT(VRL_KIND_QUOTA) | KIND_BIT(VRL_KIND_WINDOW),
			op_refund, cost ? cost : 1);
}

struct server_figures {
	uint64_t limit;
	uint64_t remaining;
};

/* Raise the word of @s so that at most @remaining are left; never lowers it. */
static void raise_state(const struct vrl_client *c, struct vrl_seg_slot *s,
			const struct vrl_limit *l, uint64_t pid, uint64_t remaining)
{
	/* G1 acquire, as look_load() */
	uint64_t cur = atomic_load_explicit(&s->state, memory_order_acquire), next;

	do {
		if (cur == VRL_STATE_EVICTED)
			return;
		if (l->seg.kind == VRL_KIND_QUOTA) {
			/* relaxed: ordered after the word by its acquire; a newer
			 * config may have changed the calendar: leave it */
			if (atomic_load_explicit(&c->hdr->config_gen, memory_order_relaxed) !=
			    c->cfg->gen_word)
				return;
			next = vrl_quota_reconcile(&l->seg, quota_view(l, cur, pid), pid, remaining);
			if (next == quota_view(l, cur, pid))
				return;
		} else {
			uint64_t held, floor, now, tat;

			if (remaining >= l->gcra.burst || !rate_word_ours(c, l, cur))
				return;
			now = vrl_now_ns();
			tat = vrl_gcra_tat(cur);
			if (__builtin_mul_overflow(l->gcra.burst - remaining, l->gcra.emission_ns,
						   &held) || held > VRL_GCRA_TIME_MAX - now)
				held = VRL_GCRA_TIME_MAX - now;
			floor = now + held;
			if (tat >= floor)
				return;
			next = vrl_gcra_word(l->tag, floor);
		}
		/* release (G1); acquire on failure, as the load above. This only
		 * makes later grants wait; no other data rides on it */
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &cur, next,
							memory_order_release, memory_order_acquire));
}

/*
 * Take free positions of window key @t until at most @remaining are free
 * (vrl_window_floor). The key gets its ring here if it has none yet (for_keys
 * inserted it). A key evicted meanwhile is re-placed and floored again.
 */
static int reconcile_window(struct vrl_client *c, struct vrl_take *t, uint64_t remaining)
{
	for (;;) {
		struct vrl_seg_slot *s = &c->view.slots[t->slot];
		const struct vrl_seg_limit *l = &c->cfg->limits[t->limit].seg;
		int rc = window_ring(c, t, &t->ring);

		if (rc)
			return rc;
		struct vrl_window_ref w = window_ref(c, t, s);

		/* acquire fence, as look_at(): the positions are read after the
		 * ring was settled (W2 in window.c) */
		atomic_thread_fence(memory_order_acquire);
		if (vrl_window_floor(&w, remaining, vrl_now_ns()) != -EAGAIN &&
		    atomic_load_explicit(&s->tag, memory_order_acquire) == vrl_key_tag(&t->key))
			return 0;
		rc = kt_get(c, &t->key, vrl_slot_note(t->limit, l, c->cfg->generation), "",
				&t->slot);
		if (rc)
			return rc;
	}
}

static int op_reconcile(struct vrl_client *c, struct vrl_take *t, uint64_t arg)
{
	const struct server_figures *f = (const struct server_figures *)(uintptr_t)arg;
	const struct vrl_limit *l = &c->cfg->limits[t->limit];
	uint64_t pid = 0;

	if (l->seg.kind == VRL_KIND_WINDOW)
		return reconcile_window(c, t, f->remaining);
	if (l->seg.kind == VRL_KIND_QUOTA)
		vrl_quota_period(&l->seg, realtime_ns(), &pid, NULL, NULL);
	raise_state(c, &c->view.slots[t->slot], l, pid, f->remaining);
	return 0;
}

int vrl__reconcile(struct vrl_client *c, const struct vrl_request *req, const char *limit,
		   uint64_t server_limit, uint64_t server_remaining)
{
	struct server_figures f = { server_limit, server_remaining };

	return for_keys(c, req, limit, true,
			KIND_BIT(VRL_KIND_RATE) | KIND_BIT(VRL_KIND_QUOTA) | KIND_BIT(VRL_KIND_WINDOW),
			op_reconcile, (uint64_t)(uintptr_t)&f);
}

/* ---- feedback support ------------------------------------------------------------------ */

int vrl__tightest(struct vrl_client *c, const struct vrl_request *req, uint32_t kinds)
{
	struct vrl_take t[VRL_MAX_MATCHED];
	uint64_t now = vrl_now_ns(), rt = 0, best = UINT64_MAX;
	uint64_t state;
	bool full;
	int n, rc, pick = -1;

	rc = enter(c, &state);
	if (rc)
		return rc;
	n = plan(c, req, t, &full);
	if (n < 0)
		return leave(c, state, n, NULL);
	for (int i = 0; i < n; i++) {
		const struct vrl_limit *l = &c->cfg->limits[t[i].limit];
		uint64_t rem = UINT64_MAX;
		struct look lk;

		if (!(kinds & KIND_BIT(l->seg.kind)))
			continue;
		/* a look only reads the slot: nothing here writes shared state */
		if (t[i].slot != UINT64_MAX &&
		    look_at(c, &t[i], 1, now, now, &rt, &lk) == LOOK_OK)
			rem = look_remaining(c, &t[i], &lk, now);
		if (pick < 0 || rem < best) {
			best = rem;
			pick = (int)t[i].limit;
		}
	}
	return leave(c, state, pick, NULL);
}
