/* charts: SVG charts drawn from a finished report, for curl users and
 * dashboards to embed (GET /v1/jobs/{id}/charts/{name}.svg).
 *
 *   accuracy  accuracy against the corruption radius for the whole model:
 *             gradient-based (solid), random mean (dashed) and the random
 *             worst trial (dotted), one set per norm / sparsity / steps;
 *             the clean accuracy as a reference line
 *   loss      the realised loss change against its first-order estimate,
 *             every result as a point, one series per norm; y = x drawn
 *   ranking   the most fragile groups of one setting as bars
 *   harden    (harden reports) accuracy against radius before and after
 *
 * The contract a reader can rely on, to check a chart against its report:
 * every data series is exactly one
 *   <path class="series" data-series="LABEL" data-points="N" d="…">
 * whose d holds exactly N "M" or "L" commands, one per point (a bar is one
 * "M … Z" outline); the plot area is
 *   <g class="plot" data-x0 data-x1 data-y0 data-y1 data-xmin data-xmax
 *      data-ymin data-ymax data-xlog data-ylog>
 * mapping data to pixels: x0..x1 spans xmin..xmax (log10 when xlog is 1),
 * y0 (bottom) .. y1 (top) spans ymin..ymax. Accuracy is drawn in percent.
 * The same report gives the same bytes. */
#ifndef PARACORR_SERVER_CHARTS_H
#define PARACORR_SERVER_CHARTS_H

#include <jansson.h>

#include "paracorr/error.h"

/* The charts the report offers, in display order: a new JSON array of
 * {"name", "title"}; NULL when out of memory. */
json_t *pcd_charts_list(const json_t *report);

/* Draws chart `name` of report as an SVG document (*svg malloc'd,
 * NUL-terminated; the caller frees). PC_ERR_NOT_FOUND when the report has
 * no such chart; PC_ERR_FORMAT naming the field when it is malformed. */
int pcd_chart_svg(const json_t *report, const char *name, char **svg, struct pc_error *err);

#endif
