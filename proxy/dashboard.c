/* The dashboard: one self-contained page (proxy/dashboard.html, built into the binary) that polls GET /admin/stats. */
#include <stddef.h>

#include <event2/buffer.h>

#include "dashboard.h"
#include "server.h"

/* sy_dashboard_html[]: proxy/dashboard.html, made by proxy/dashboard.am. */
#include "proxy/dashboard_page.h"

void
sy_dashboard_page(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body)
{
	struct evbuffer *out = evbuffer_new();

	evbuffer_add_reference(out, sy_dashboard_html, sizeof sy_dashboard_html,
	    NULL, NULL);
	sy_conn_respond(c, 200, "text/html; charset=utf-8",
	    "Cache-Control: no-store\r\n"
	    "Content-Security-Policy: default-src 'none'; script-src "
	    "'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
	    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
	    "X-Frame-Options: DENY\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Referrer-Policy: no-referrer\r\n", out);
	evbuffer_free(out);
}
