/* The CLI summary's model-wide table: random accuracy with its interval. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "summary.h"
#include "test.h"

/* Each random cell reads "mean% ± h", h the half-width of accuracy_ci95
 * in points, both to two decimals: recomputed here from the demo report. */
TEST(summary_random_accuracy_with_interval)
{
	json_error_t jerr;
	json_t *rep = json_load_file("api/examples/demo-report.json", 0, &jerr), *row;
	char *text = NULL, want[64];
	size_t len = 0, i;
	int seen = 0;
	FILE *f;

	REQUIRE_MSG(rep, "%s", jerr.text);
	f = open_memstream(&text, &len);
	REQUIRE(f);
	pcd_summary_print(rep, 5, f);
	fclose(f);
	json_array_foreach(json_object_get(rep, "results"), i, row)
	{
		json_t *rd = json_object_get(row, "random"), *ci = json_object_get(rd, "accuracy_ci95");

		if (strcmp(json_string_value(json_object_get(row, "group")), "model") || !json_is_array(ci))
			continue;
		snprintf(want, sizeof(want), "%.2f%% \u00b1 %.2f",
			 100.0 * json_real_value(json_object_get(rd, "accuracy_mean")),
			 50.0 * (json_real_value(json_array_get(ci, 1)) - json_real_value(json_array_get(ci, 0))));
		CHECK_MSG(strstr(text, want) != NULL, "missing \"%s\" in\n%s", want, text);
		seen++;
	}
	CHECK_INT(seen, 7);
	/* eps 0.05, ten trials: 0.87404 -+ 2.262157163 * 0.000212 / sqrt(10) */
	CHECK(strstr(text, "  87.40% \u00b1 0.02  ") != NULL);
	free(text);
	json_decref(rep);
}

/* The CLI's progress line (run, submit --wait, uploads) in a log: the
 * stage, its count and unit, the share, the time spent and the time left;
 * the last line of a stage without a time left. */
TEST(progress_line_says_the_time_left)
{
	struct pcd_progress_bar b = {0, 0};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	REQUIRE(f);
	pcd_progress_draw(&b, "training epoch 2 of 5", 30, 120, pcd_progress_unit("training epoch 2 of 5"), 12.0,
			  47.2, 0, f);
	b.last_draw = 0; /* the next draw is not held back by the 2 s between log lines */
	pcd_progress_draw(&b, "uploading the dataset", 31000, 31000, "kB", 3.5, 0, 1, f);
	fclose(f);
	CHECK_MSG(text && !strcmp(text, "[training epoch 2 of 5] 30/120 steps (25%), 12.0 s elapsed, ~48 s left\n"
					"[uploading the dataset] 31000/31000 kB (100%), 3.5 s elapsed\n"),
		  "%s", text ? text : "");
	CHECK(!strcmp(pcd_progress_unit("before: l2 eps=0.5"), "passes"));
	free(text);
}
