/*
 * names.h - the names the shared libvrl gives its calls of the current
 * layouts, forced on every file of libvrl.so (-include, lib/meson.build).
 *
 * A call whose structs changed layout is exported twice (libvrl.map): as
 * name@VRL_0, taking 0.1's structs, and as name@@VRL_0.2, the default a
 * program links against now; vrl0.c binds both with .symver to functions
 * of other names. A definition named vrl_acquire itself would be exported
 * a third time, unversioned by the map's own rule. So in libvrl.so the
 * current calls are compiled under the names below; vrl_core (vrld,
 * vrlctl, the tests, the wheel) keeps the plain ones.
 */
#ifndef VRL_ABI_NAMES_H
#define VRL_ABI_NAMES_H

#define vrl_acquire          vrl__impl_acquire
#define vrl_acquire_wait     vrl__impl_acquire_wait
#define vrl_resolve          vrl__impl_resolve
#define vrl_acquire_resolved vrl__impl_acquire_resolved
#define vrl_cooldown         vrl__impl_cooldown
#define vrl_reset            vrl__impl_reset
#define vrl_release          vrl__impl_release
#define vrl_refund           vrl__impl_refund
#define vrl_observe          vrl__impl_observe

#endif
