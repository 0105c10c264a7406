/* check: `paracorr check REPORT.json --require EXPR ...`, the CI gate.
 *
 * A requirement is `metric(args) op number`, e.g.
 * `accuracy(l2, 0.1, gradient) >= 0.80`: the metric is a row of the table in
 * check.c that finds one number in a report; op is one of >= > <= < ==. */
#ifndef PCD_CHECK_H
#define PCD_CHECK_H

#include <jansson.h>
#include <stdio.h>

#include "paracorr/error.h"

struct pcd_check {
	char text[256];	 /* the requirement as written */
	int present;	 /* the report holds the metric */
	double value;	 /* its value when present (may be +inf: "not reached") */
	int ok;		 /* the requirement holds */
	char why[256];	 /* what failed, for the table and JUnit */
};

/* Evaluates one requirement against a report. A malformed requirement
 * (unknown metric, wrong arguments, bad operator or number) is
 * PC_ERR_INVALID naming what is wrong; a metric the report lacks is not an
 * error: the requirement fails with out->present = 0. */
int pcd_check_eval(const json_t *report, const char *expr, struct pcd_check *out, struct pc_error *err);

/* The results as a JUnit XML test suite (one testcase per requirement). */
int pcd_check_junit(FILE *f, const char *suite, const struct pcd_check *c, int n);

/* The command: 0 when every requirement holds, 1 when one fails (or the
 * report cannot be read), 2 for a usage error or a malformed requirement. */
int pcd_check_main(int argc, char **argv);

#endif
