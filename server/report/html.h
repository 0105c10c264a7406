/* html: a report as one self-contained HTML file, for a model card or a
 * pull request (`paracorr report --html`, GET /v1/jobs/{id}/report.html).
 *
 * The file needs nothing else to be read: the charts are the SVG documents
 * of charts.h inlined, the style is inline, there is no script and no
 * external reference (no src=, no href= to another file). The contract a
 * reader or a test can rely on:
 * - <section data-section="NAME"> for clean, charts, results, ranking,
 *   spec (and before / after for a harden report, each holding its own
 *   clean and results);
 * - every chart is <figure data-chart="NAME"> holding the very bytes
 *   pcd_chart_svg draws for that report;
 * - every results row is <tr data-group data-norm data-epsilon
 *   data-sparsity data-steps> with the numbers in <td data-field="...">
 *   as the report has them (%.17g), or "-" where the report has none;
 * - the same report gives the same bytes. */
#ifndef PARACORR_SERVER_HTML_H
#define PARACORR_SERVER_HTML_H

#include <jansson.h>
#include <stddef.h>

#include "paracorr/error.h"

/* *html (malloc'd, NUL-terminated, *len bytes) from report.
 * PC_ERR_FORMAT when it is not a report (no "clean" object, nor "before"
 * and "after"); a chart that cannot be drawn is left out, the rest stays. */
int pcd_report_html(const json_t *report, char **html, size_t *len, struct pc_error *err);

#endif
