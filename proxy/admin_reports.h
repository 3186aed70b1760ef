/* The lab's experiment reports on the admin listener: the files of admin_api.reports_dir, listed and served read-only. */
#ifndef SY_ADMIN_REPORTS_H
#define SY_ADMIN_REPORTS_H

#include "admin.h"

/*
 * GET /admin/reports: {"reports": [{"name", "bytes", "mtime"}, ...]}, the
 * regular files of admin_api.reports_dir (not hidden, no links); 404 when no
 * directory is configured.
 */
void sy_admin_reports_list(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body);

/*
 * GET /admin/reports/NAME: that file, with a type by its ending and a
 * sandboxing Content-Security-Policy; 404 for any other name (no paths,
 * no links).
 */
void sy_admin_reports_file(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body);

#endif
