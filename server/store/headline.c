/* headline: a study's numbers for the job list (headline.h). */
#include "headline.h"

#include <string.h>

static int same_setting(const json_t *a, const json_t *b)
{
	static const char *const keys[] = {"group", "norm", "sparsity", "steps"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!json_equal(json_object_get(a, keys[i]), json_object_get(b, keys[i])))
			return 0;
	return 1;
}

static void set_number(json_t *o, const char *key, const json_t *v)
{
	if (json_is_number(v))
		json_object_set_new(o, key, json_real(json_number_value(v)));
}

static json_t *study_headline(const json_t *r)
{
	const json_t *clean = json_object_get(r, "clean"), *results = json_object_get(r, "results");
	const json_t *first = json_array_get(results, 0), *best = NULL, *row, *v;
	json_t *h;
	size_t i;

	if (!json_is_number(json_object_get(clean, "accuracy")) || !(h = json_object()))
		return NULL;
	set_number(h, "clean_accuracy", json_object_get(clean, "accuracy"));
	json_array_foreach(results, i, row)
	{
		if (!same_setting(first, row) || !json_is_number(json_object_get(row, "epsilon")))
			continue;
		if (!best || json_number_value(json_object_get(row, "epsilon")) >
				 json_number_value(json_object_get(best, "epsilon")))
			best = row;
	}
	if (best) {
		if (json_is_string(v = json_object_get(best, "norm")))
			json_object_set(h, "norm", (json_t *)v);
		set_number(h, "epsilon", json_object_get(best, "epsilon"));
		set_number(h, "gradient_accuracy", json_object_get(json_object_get(best, "gradient"), "accuracy"));
		set_number(h, "random_accuracy", json_object_get(json_object_get(best, "random"), "accuracy_mean"));
	}
	set_number(h, "critical_epsilon",
		   json_object_get(json_object_get(json_array_get(json_object_get(r, "critical"), 0), "gradient"),
				   "epsilon"));
	v = json_object_get(json_array_get(json_object_get(json_object_get(r, "faults"), "search"), 0), "flips");
	if (json_is_array(v))
		json_object_set_new(h, "flips_to_target", json_integer((json_int_t)json_array_size(v)));
	return h;
}

json_t *pcd_headline_of_report(const char *report_text)
{
	json_t *r = report_text ? json_loads(report_text, 0, NULL) : NULL;
	const json_t *before = json_object_get(r, "before"), *after = json_object_get(r, "after");
	json_t *h = NULL, *hb;

	if (!r)
		return NULL;
	if (json_is_object(after) && json_is_object(before)) {
		if ((h = study_headline(after)) && (hb = study_headline(before))) {
			json_object_set(h, "before_clean_accuracy", json_object_get(hb, "clean_accuracy"));
			json_decref(hb);
		}
	} else {
		h = study_headline(r);
	}
	json_decref(r);
	return h;
}
