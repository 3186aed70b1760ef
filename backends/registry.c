/* The backend registry: every wire-protocol adapter, found by kind name. */
#include "backend.h"
#include "util.h"

extern const struct sy_backend_kind sy_backend_openai;

static const void *const kinds[] = {
	&sy_backend_openai,
	NULL
};

const struct sy_backend_kind *
sy_backend_kind_find(const char *name)
{
	return sy_registry_find(kinds, name);
}

void
sy_backend_kind_names(char *buf, size_t len)
{
	sy_registry_names(kinds, buf, len);
}
