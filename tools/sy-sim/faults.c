/* sy-sim: fault settings, their JSON form, and the per-request draw. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

enum fault_type {
	FAULT_RATE,			/* probability in [0, 1] */
	FAULT_STATUS,			/* HTTP status 400..599 */
	FAULT_UINT,			/* 0..max */
	FAULT_TOKENS,			/* -1 (off) or 0..max */
	FAULT_BOOL
};

/* One settable fault, as named in JSON. */
struct fault_field {
	const char	*key;
	enum fault_type	 type;
	size_t		 off;
	unsigned	 max;
};

#define F(key, type, max) { #key, type, offsetof(struct sim_faults, key), max }
static const struct fault_field fault_fields[] = {
	F(error_rate, FAULT_RATE, 0),
	F(error_status, FAULT_STATUS, 0),
	F(rate_limit_rate, FAULT_RATE, 0),
	F(retry_after, FAULT_UINT, 86400),
	F(stall_ms, FAULT_UINT, 3600000),
	F(stall_rate, FAULT_RATE, 0),
	F(slow_stream_ms, FAULT_UINT, 600000),
	F(slow_stream_rate, FAULT_RATE, 0),
	F(drop_after_tokens, FAULT_TOKENS, 1000000),
	F(drop_rate, FAULT_RATE, 0),
	F(malformed_rate, FAULT_RATE, 0),
	F(midstream_error_rate, FAULT_RATE, 0),
	F(midstream_error_after_tokens, FAULT_UINT, 1000000),
	F(unhealthy, FAULT_BOOL, 0),
};
#undef F
#define NFIELDS (sizeof fault_fields / sizeof fault_fields[0])

/* Sets f to no faults. */
void
sim_faults_default(struct sim_faults *f)
{
	memset(f, 0, sizeof *f);
	f->error_status = 500;
	f->retry_after = 1;
	f->stall_rate = 1;
	f->slow_stream_rate = 1;
	f->drop_after_tokens = -1;
	f->drop_rate = 1;
}

/* Sets field d of f from v; 0, or -1 with *err set. */
static int
fault_set(struct sim_faults *f, const struct fault_field *d, const json_t *v,
    char **err)
{
	char		*p = (char *)f + d->off;
	double		 x;
	json_int_t	 i;

	switch (d->type) {
	case FAULT_RATE:
		if (!json_is_number(v) || (x = json_number_value(v)) < 0 ||
		    x > 1)
			goto bad;
		*(double *)p = x;
		return (0);
	case FAULT_BOOL:
		if (!json_is_boolean(v))
			goto bad;
		*(int *)p = json_is_true(v);
		return (0);
	case FAULT_TOKENS:
		if (json_is_null(v)) {
			*(int *)p = -1;
			return (0);
		}
		/* FALLTHROUGH */
	case FAULT_STATUS:
	case FAULT_UINT:
		if (!json_is_integer(v))
			goto bad;
		i = json_integer_value(v);
		if (d->type == FAULT_STATUS && (i < 400 || i > 599))
			goto bad;
		if (d->type == FAULT_TOKENS && (i < -1 || i > d->max))
			goto bad;
		if (d->type == FAULT_TOKENS) {
			*(int *)p = (int)i;
			return (0);
		}
		if (d->type == FAULT_UINT && (i < 0 || i > d->max))
			goto bad;
		if (d->type == FAULT_STATUS)
			*(int *)p = (int)i;
		else
			*(unsigned *)p = (unsigned)i;
		return (0);
	}
bad:
	switch (d->type) {
	case FAULT_RATE:
		*err = sim_printf("faults.%s: must be a number from 0 to 1",
		    d->key);
		break;
	case FAULT_BOOL:
		*err = sim_printf("faults.%s: must be true or false", d->key);
		break;
	case FAULT_STATUS:
		*err = sim_printf("faults.%s: must be an HTTP status from 400 "
		    "to 599", d->key);
		break;
	case FAULT_TOKENS:
		*err = sim_printf("faults.%s: must be -1 (off) or an integer "
		    "from 0 to %u", d->key, d->max);
		break;
	case FAULT_UINT:
		*err = sim_printf("faults.%s: must be an integer from 0 to %u",
		    d->key, d->max);
		break;
	}
	return (-1);
}

/*
 * Merges the keys of the JSON object obj into f.  Returns 0, or -1 with
 * *err set (caller frees) and f unchanged.
 */
int
sim_faults_update(struct sim_faults *f, const json_t *obj, char **err)
{
	struct sim_faults	 tmp = *f;
	const char		*key;
	json_t			*v;
	size_t			 i, n;
	char			 known[512];

	if (!json_is_object(obj)) {
		*err = sim_xstrdup("faults: must be a JSON object");
		return (-1);
	}
	json_object_foreach((json_t *)obj, key, v) {
		for (i = 0; i < NFIELDS; i++) {
			if (strcmp(key, fault_fields[i].key) == 0)
				break;
		}
		if (i == NFIELDS) {
			known[0] = '\0';
			for (i = 0, n = 0; i < NFIELDS; i++) {
				n += snprintf(known + n, sizeof known - n,
				    "%s%s", i == 0 ? "" : ", ",
				    fault_fields[i].key);
			}
			*err = sim_printf("faults: unknown key '%s' (known: "
			    "%s)", key, known);
			return (-1);
		}
		if (fault_set(&tmp, &fault_fields[i], v, err) != 0)
			return (-1);
	}
	*f = tmp;
	return (0);
}

/* f as a new JSON object with every key. */
json_t *
sim_faults_json(const struct sim_faults *f)
{
	const struct fault_field	*d;
	const char			*p;
	json_t				*o = json_object(), *v = NULL;
	size_t				 i;

	for (i = 0; i < NFIELDS; i++) {
		d = &fault_fields[i];
		p = (const char *)f + d->off;
		switch (d->type) {
		case FAULT_RATE:
			v = json_real(*(const double *)p);
			break;
		case FAULT_BOOL:
			v = json_boolean(*(const int *)p);
			break;
		case FAULT_STATUS:
		case FAULT_TOKENS:
			v = json_integer(*(const int *)p);
			break;
		case FAULT_UINT:
			v = json_integer(*(const unsigned *)p);
			break;
		}
		json_object_set_new(o, d->key, v);
	}
	return (o);
}

/*
 * Decides the faults of one request with the random sequence *rng: always
 * seven draws, in the order of struct sim_fault_pick, so that a seed gives
 * the same faults whatever is enabled.  Midstream errors only hit streams.
 */
void
sim_faults_draw(const struct sim_faults *f, uint64_t *rng, int stream,
    struct sim_fault_pick *pick)
{
	double	u[7];
	int	i;

	for (i = 0; i < 7; i++)
		u[i] = sim_rng_double(rng);
	memset(pick, 0, sizeof *pick);
	pick->error_status = u[0] < f->error_rate ? f->error_status : 0;
	pick->rate_limited = u[1] < f->rate_limit_rate;
	if (f->stall_ms != 0 && u[2] < f->stall_rate)
		pick->stall_us = (uint64_t)f->stall_ms * 1000;
	if (f->slow_stream_ms != 0 && u[3] < f->slow_stream_rate)
		pick->slow_us = (uint64_t)f->slow_stream_ms * 1000;
	pick->drop_after = -1;
	if (f->drop_after_tokens >= 0 && u[4] < f->drop_rate)
		pick->drop_after = f->drop_after_tokens;
	pick->malformed = u[5] < f->malformed_rate;
	pick->midstream_after = -1;
	if (stream && u[6] < f->midstream_error_rate)
		pick->midstream_after = (int)f->midstream_error_after_tokens;
}
