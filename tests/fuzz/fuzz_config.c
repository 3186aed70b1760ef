/* Fuzz target: the config parser (JSON with comments, every section's rows): any text loads or is refused with a message, never a crash or a leak. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sy_config *cfg = NULL;
	char *text, *err = NULL;

	/* Names that resolve only through DNS would make a run slow, not wrong. */
	if (size > 65536 || (memmem(data, size, "://", 3) != NULL &&
	    memmem(data, size, "127.0.0.1", 9) == NULL))
		return 0;
	text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	if (sy_config_load_string(text, "fuzz.json", &cfg, &err) == 0) {
		if (cfg == NULL || err != NULL)
			abort();
		sy_config_unref(cfg);
	} else if (cfg != NULL || err == NULL || *err == '\0')
		abort();
	free(err);
	free(text);
	return 0;
}
