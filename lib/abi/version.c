/*
 * version.c - vrl_version(): which libvrl the program runs with.
 */
#include "vrl.h"

#define VRL_STR2(x) #x
#define VRL_STR(x) VRL_STR2(x)

unsigned vrl_version(void)
{
	return VRL_VERSION;
}

const char *vrl_version_string(void)
{
	return VRL_STR(VRL_VERSION_MAJOR) "." VRL_STR(VRL_VERSION_MINOR) "." VRL_STR(VRL_VERSION_PATCH);
}
