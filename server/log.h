/* log: the daemon's event lines on stderr, in logfmt:
 *   ts=2026-11-28T15:00:00.123Z level=info msg="job queued" job=j-… req_id=r-…
 * One line per event, written with a single write(2) so that lines from
 * the HTTP and worker threads never interleave. */
#ifndef PARACORR_SERVER_LOG_H
#define PARACORR_SERVER_LOG_H

#include <stddef.h>

/* level: "debug", "info", "warn" or "error"; fmt gives the rest of the
 * line as key=value pairs (no newline). */
void pcd_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* s as a logfmt value: quoted, with quotes, backslashes and control
 * characters escaped, truncated to fit buf. Returns buf. */
const char *pcd_log_quote(const char *s, char *buf, size_t size);

#endif
