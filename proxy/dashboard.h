/* The dashboard: one self-contained page (proxy/dashboard.html, built into the binary) that polls GET /admin/stats. */
#ifndef SY_DASHBOARD_H
#define SY_DASHBOARD_H

#include <stddef.h>

#include "admin.h"

/*
 * GET / and GET /dashboard on the admin listener: sends the page, with a
 * policy that keeps it from loading anything but /admin from its origin
 * and from being framed.
 */
void sy_dashboard_page(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body);

#endif
