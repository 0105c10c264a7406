/* compare: finished reports side by side, for the question users ask most
 * (did hardening help, is v2 more fragile than v1, int8 against float32):
 * GET /v1/compare, `paracorr compare` and the dashboard's compare page.
 *
 * Every array of the comparison has one entry per compared study, in the
 * order given. A harden report compared alone is its before and after
 * studies; among other reports it stands for its after study (the hardened
 * model). Rows are aligned by setting and kept when every study has them:
 *
 *   results   (group, norm, epsilon, sparsity, steps) of the corruption
 *             study: gradient accuracy and loss change, random mean
 *             accuracy (null for a study without random trials)
 *   ranking   (group, norm, epsilon, sparsity): rank and loss change
 *   faults    each format's clean accuracy; random bit errors by (format,
 *             ber, group): mean accuracy; searches by (format, group,
 *             method): flips committed and whether the target was reached
 *
 * "unmatched" counts per study the rows left out because another study
 * lacks them, so a comparison of unrelated specs says so instead of
 * looking empty. "differences" lists every leaf of the studies' specs (by
 * JSON pointer; an array is one leaf) whose values are not all equal, null
 * where a spec lacks it. */
#ifndef PARACORR_SERVER_COMPARE_H
#define PARACORR_SERVER_COMPARE_H

#include <jansson.h>
#include <stdio.h>

#include "paracorr/error.h"

#define PCD_COMPARE_MAX 8

/* Compares reports[0..n-1] (n in [1, PCD_COMPARE_MAX]; one only when it is
 * a harden report), labelled labels[i] (a file name or a job id). On
 * success *out is a new JSON reference. PC_ERR_INVALID naming
 * "reports[i]" when one is not a finished study's report, or "reports"
 * when there are too few or too many. */
int pcd_compare(json_t *const *reports, const char *const *labels, int n, json_t **out, struct pc_error *err);

/* A comparison as tables for a terminal: the studies, their clean
 * numbers, what differs, then per setting of the whole model the accuracy
 * of each study under gradient and random corruption, the searches and
 * the random bit errors. */
void pcd_compare_print(const json_t *cmp, FILE *f);

#endif
