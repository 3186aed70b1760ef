/* Requests for the adapter unit tests: parsed from text as the pipeline parses them. */
#ifndef SY_TEST_REQ_H
#define SY_TEST_REQ_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "req.h"

/*
 * A request of api parsed from text (an OpenAI-shaped body), with the
 * served model given (NULL: the client's) and id "r42".  The request is
 * static: each call replaces the last.  Exits 2 when text does not parse.
 */
static inline struct sy_req *
sy_test_req(enum sy_api api, const char *text, const char *model)
{
	static struct sy_req req;
	static struct evbuffer *raw;
	char *err = NULL;
	int status;

	if (req.body != NULL)
		json_decref(req.body);
	memset(&req, 0, sizeof req);
	if (raw == NULL)
		raw = evbuffer_new();
	evbuffer_drain(raw, evbuffer_get_length(raw));
	evbuffer_add(raw, text, strlen(text));
	req.api = api;
	req.raw = raw;
	if (sy_req_parse(&req, raw, 64, &status, &err) != 0) {
		printf("# parse failed: %s\n", err);
		exit(2);
	}
	req.model = model ? model : req.client_model;
	snprintf(req.id, sizeof req.id, "r42");
	return &req;
}

#endif
