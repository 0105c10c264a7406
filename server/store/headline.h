/* headline: the few numbers a job list shows for a finished study, taken
 * once from its report when the report is stored (pcd_store_job_complete),
 * so that a listing never parses reports. */
#ifndef PARACORR_SERVER_HEADLINE_H
#define PARACORR_SERVER_HEADLINE_H

#include <jansson.h>

/* From a report (an analyze report, or a harden report's "after" study):
 * {clean_accuracy, norm, epsilon, gradient_accuracy, random_accuracy}
 * at the largest radius of the first setting of results[] (its group,
 * norm, sparsity and steps), plus critical_epsilon (critical[0].gradient.
 * epsilon) and flips_to_target (the length of faults.search[0].flips)
 * when the report has them; a harden headline adds before_clean_accuracy.
 * A field the report lacks is left out. NULL when the text is not a
 * report with a clean accuracy (or out of memory). New reference. */
json_t *pcd_headline_of_report(const char *report_text);

#endif
