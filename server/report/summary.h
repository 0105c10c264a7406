/* summary: what people read in a terminal. A report as tables (`paracorr
 * report`, `run --summary`, `submit --wait`, `make demo`) and a job's
 * progress as a bar on a terminal or a plain line in a log. */
#ifndef PARACORR_SERVER_SUMMARY_H
#define PARACORR_SERVER_SUMMARY_H

#include <jansson.h>
#include <stdio.h>

/* The clean numbers, the model-wide results per setting (accuracy under
 * gradient-based against random corruption, loss change against its
 * first-order estimate), the `top` most fragile groups of the ranking
 * setting with the most groups, and the bit-fault study's tables (each
 * format's clean numbers, random bit errors, bit positions, searches). Fields missing from the report print as
 * "-", never crash. */
/* The op kinds' times of a report's timing.ops (or paracorr eval's), most
 * time first, with each one's share of their sum: where a run's time went. */
void pcd_profile_print(const json_t *ops, FILE *f);

void pcd_summary_print(const json_t *report, int top, FILE *f);

/* A result row's norm as text: "l2", "linf" as the report names it, "l3"
 * from a number, "?" when missing; buf holds the made-up ones. */
const char *pcd_summary_norm(const json_t *row, char *buf, size_t size);

struct pcd_progress_bar {
	int tty;	  /* rewrite one line in place; otherwise a line now and then */
	double last_draw; /* monotonic seconds of the last line drawn */
};

/* Draws progress: phase, done of total (counted in unit: "passes",
 * "steps", "kB"), elapsed and remaining seconds (remaining < 0: unknown).
 * final: the last update, ends the line. */
void pcd_progress_draw(struct pcd_progress_bar *b, const char *phase, long long done, long long total,
		       const char *unit, double elapsed, double remaining, int final, FILE *f);
/* What a job's phase counts: a training epoch steps, a study dataset passes. */
const char *pcd_progress_unit(const char *phase);

#endif
