/* The account stage: when an exchange ends, its record (tokens, cost, timings, decisions) becomes one access-log line and the metrics' counts. */
#include "accesslog.h"
#include "exchange.h"
#include "metrics.h"
#include "req.h"
#include "worker.h"

static void
account_end(struct sy_exchange *x)
{
	struct sy_record rec;

	sy_req_record(&x->req, &rec);
	sy_accesslog_write(x->w->rt->log, &rec);
	sy_metrics_record(x->w->metrics, &rec);
}

/* Nothing on the way: it only ends, after every other stage's end. */
const struct sy_stage sy_stage_account = {
	.name = "account",
	.end = account_end
};
