/* charts: SVG charts drawn from a finished report, for curl users and
 * dashboards to embed (GET /v1/jobs/{id}/charts/{name}.svg).
 *
 *   accuracy  accuracy (%) against the corruption radius for the "model"
 *             group (else the group with the most results): per (norm,
 *             sparsity, steps) a gradient-based line (solid), the random
 *             mean (dashed) and the random worst trial (dotted, thin) when
 *             the results have random trials; the clean accuracy as a
 *             reference line. x is log when the radii span more than 20x.
 *   loss      the realised loss change (gradient.loss_change) against its
 *             first-order estimate (first_order), every result of every
 *             group a point, one series per norm; y = x drawn; log-log when
 *             every value is positive and they span more than 20x
 *   ranking   the top 20 groups by loss change of the ranking's setting
 *             (norm, epsilon, sparsity, block) with the most entries, as
 *             horizontal bars named by group (a name past 44 characters cut
 *             in the middle, whole in the label's <title>); the setting in
 *             the title, which says "of N groups" when the setting ranks
 *             more, and a <text class="note"> under the legend "K more
 *             groups not shown"
 *   harden    (reports with "before" and "after", each holding "clean" and
 *             "results") the gradient-based accuracy lines of both, before
 *             dashed and after solid, and both clean accuracies
 *   faults    (reports with faults.random) accuracy (%) against the bit
 *             error rate (log x) for the "model" group (else the first
 *             group): per format the mean over the trials (solid) and the
 *             worst trial (dotted)
 *   search    (reports with faults.search) accuracy (%) against the number
 *             of bits flipped, from 0 (the format's clean accuracy), one
 *             line per search of the "model" group (else the first): plain
 *             BFA dashed, paracorr's search solid; the target accuracy as a
 *             reference line when every search shares it
 *   critical  (reports with critical[]) per group of the first setting of
 *             critical[] (norm, sparsity, block), two horizontal bars: the
 *             gradient critical radius (row 2i + 1) and the random one (row
 *             2i + 2), a radius not reached left out; the drop in the title
 *
 * The contract a reader can rely on, to check a chart against its report:
 * - the document is <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 W H"
 *   width="W" height="H"> with a <title>, a <g class="legend"> and
 *   <text class="tick"> labels on the axes;
 * - every data series is exactly one
 *     <path class="series" data-series="LABEL" data-points="N" d="...">
 *   (LABEL XML-escaped) and nothing else has class "series"; d holds exactly
 *   N points, each starting with an "M" or "L" command: a line is
 *   "M x y L x y ..." sorted by x, a scatter point is "M x y h 0" (drawn as a
 *   dot by a round line cap), a bar is "M x0 y0 H x1 V y1 H x0 Z" from x = 0
 *   to its value, centred on its row. No other M or L appears in d;
 * - labels: accuracy "<norm> gradient|random mean|random worst[, N weights]
 *   [, N steps]"; loss "<norm> corruption"; ranking "loss change"; harden
 *   "before: <norm> gradient..." and "after: <norm> gradient..."; faults
 *   "<format> random mean|random worst"; search "<format> <method>"; critical
 *   "gradient critical radius" and "random critical radius";
 * - the plot area is <g class="plot" data-x0 data-x1 data-y0 data-y1
 *   data-xmin data-xmax data-ymin data-ymax data-xlog data-ylog>: pixels
 *   x0..x1 span xmin..xmax and y0 (bottom) .. y1 (top) span ymin..ymax,
 *   linearly or in log10 when xlog / ylog is 1. Accuracy is in percent; the
 *   ranking's y is the bar's position, 1 at the top (ymin > ymax);
 * - reference lines (clean accuracy, y = x) are <line class="reference">,
 *   a solid line's point markers <circle class="marker">;
 * - coordinates have at most 2 decimals; the same report gives the same
 *   bytes. */
#ifndef PARACORR_SERVER_CHARTS_H
#define PARACORR_SERVER_CHARTS_H

#include <jansson.h>

#include "paracorr/error.h"

/* The charts the report offers, in display order (accuracy, loss, ranking,
 * harden, faults, search): a new JSON array of {"name", "title"}; a chart is offered
 * exactly when pcd_chart_svg draws it. NULL when out of memory. */
json_t *pcd_charts_list(const json_t *report);

/* Draws chart `name` of report as an SVG document (*svg malloc'd,
 * NUL-terminated; the caller frees; NULL on error). PC_ERR_NOT_FOUND when
 * the report has no such chart (unknown name, no ranking, no results, not
 * a harden report); PC_ERR_FORMAT when it is malformed, err->where naming
 * the field ("results[3].gradient.accuracy"). */
int pcd_chart_svg(const json_t *report, const char *name, char **svg, struct pc_error *err);

#endif
