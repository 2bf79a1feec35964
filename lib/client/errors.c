/*
 * errors.c - vrl_strerror() and vrl_err_name(): vrl's own codes from the
 * X-macro table of vrl.h, any other negative value as a negated errno.
 */
#include "client.h"

#include <string.h>

_Thread_local char vrl__owner_refusal[384];

const char *vrl_strerror(int err)
{
	if (err == VRL_EOWNER && vrl__owner_refusal[0])
		return vrl__owner_refusal;
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
