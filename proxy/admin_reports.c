/* The lab's experiment reports on the admin listener: the files of admin_api.reports_dir, listed and served read-only. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "admin_reports.h"
#include "config.h"
#include "http1.h"
#include "server.h"
#include "util.h"

/* The largest report served. */
#define REPORT_MAX	(16u << 20)

/* Whether name is a report's name: [A-Za-z0-9._-], not starting with '.'. */
static int
report_name(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || len > 255 || name[0] == '.')
		return 0;
	for (i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') ||
		    name[i] == '.' || name[i] == '_' || name[i] == '-'))
			return 0;
	return 1;
}

/* The Content-Type of a report by its name's ending. */
static const char *
report_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".md", "text/markdown; charset=utf-8" },
		{ ".json", "application/json" },
		{ ".jsonl", "application/jsonl" },
		{ ".csv", "text/csv; charset=utf-8" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
	};
	size_t i, n = strlen(name), e;

	for (i = 0; i < sizeof types / sizeof types[0]; i++) {
		e = strlen(types[i].ext);
		if (n > e && strcmp(name + n - e, types[i].ext) == 0)
			return types[i].type;
	}
	return "text/plain; charset=utf-8";
}

/* Sends 404 for reports when none are configured. */
static int
no_reports(struct sy_conn *c, const struct sy_config *cfg)
{
	if (cfg->admin_api.reports_dir != NULL)
		return 0;
	sy_respond_error(c, 404, "invalid_request_error", "not_found",
	    "no experiment reports: admin_api.reports_dir is not set", NULL);
	return 1;
}

void
sy_admin_reports_list(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body)
{
	const struct sy_config *cfg = a->current(a->arg);
	json_t *list;
	struct dirent *de;
	struct stat st;
	char *msg;
	DIR *d;

	if (no_reports(c, cfg))
		return;
	if ((d = opendir(cfg->admin_api.reports_dir)) == NULL) {
		msg = sy_xasprintf("cannot read admin_api.reports_dir %s: %s",
		    cfg->admin_api.reports_dir, strerror(errno));
		sy_respond_error(c, 500, "server_error", "reports_unreadable",
		    msg, NULL);
		free(msg);
		return;
	}
	list = json_array();
	while ((de = readdir(d)) != NULL) {
		if (!report_name(de->d_name, strlen(de->d_name)) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		json_array_append_new(list, json_pack("{s:s,s:I,s:I}",
		    "name", de->d_name, "bytes", (json_int_t)st.st_size,
		    "mtime", (json_int_t)st.st_mtime));
	}
	closedir(d);
	sy_admin_json(c, 200, json_pack("{s:o}", "reports", list));
}

/* Reads the regular file name (no link) of dir into out; 0, or an errno. */
static int
read_report(const char *dir, const char *name, struct evbuffer *out)
{
	struct stat st;
	int dfd, fd, err = 0, n;
	size_t got = 0;

	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return errno;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	err = fd < 0 ? errno : 0;
	close(dfd);
	if (fd < 0)
		return err == ELOOP ? ENOENT : err;
	if (fstat(fd, &st) != 0)
		err = errno;
	else if (!S_ISREG(st.st_mode))
		err = ENOENT;
	else if ((size_t)st.st_size > REPORT_MAX)
		err = EFBIG;
	else
		/* evbuffer_read takes a few KiB at a time. */
		while (got < (size_t)st.st_size) {
			if ((n = evbuffer_read(out, fd,
			    (int)((size_t)st.st_size - got))) <= 0) {
				err = n < 0 ? errno : EIO;
				break;
			}
			got += (size_t)n;
		}
	close(fd);
	return err;
}

void
sy_admin_reports_file(struct sy_admin *a, struct sy_conn *c,
    const struct sy_http1_msg *head, struct evbuffer *body)
{
	const struct sy_config *cfg = a->current(a->arg);
	const char *name = head->target + strlen("/admin/reports/");
	size_t len = strcspn(name, "?");
	struct evbuffer *out;
	char *file, *msg;
	int err;

	if (no_reports(c, cfg))
		return;
	if (!report_name(name, len)) {
		sy_respond_error(c, 404, "invalid_request_error", "not_found",
		    "a report's name is letters, digits, '.', '_' and '-', "
		    "not starting with '.'", NULL);
		return;
	}
	file = sy_xasprintf("%.*s", (int)len, name);
	out = evbuffer_new();
	if ((err = read_report(cfg->admin_api.reports_dir, file, out)) == 0)
		/* A report is data: sandboxed, it runs nothing on this origin. */
		sy_conn_respond(c, 200, report_type(file),
		    "Cache-Control: no-store\r\n"
		    "Content-Security-Policy: sandbox; default-src 'none'; "
		    "img-src data:; style-src 'unsafe-inline'\r\n"
		    "X-Content-Type-Options: nosniff\r\n", out);
	else {
		msg = sy_xasprintf("report %s: %s", file, err == ENOENT ?
		    "no such report" : strerror(err));
		sy_respond_error(c, err == ENOENT ? 404 : 500,
		    err == ENOENT ? "invalid_request_error" : "server_error",
		    err == ENOENT ? "not_found" : "report_unreadable", msg, NULL);
		free(msg);
	}
	evbuffer_free(out);
	free(file);
}
