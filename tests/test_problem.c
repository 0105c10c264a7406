/* The problem vocabulary (server/problem.c): every problem object comes
 * from the error table, field paths become JSON pointers by one rule, and
 * api/openapi.yaml lists exactly the table's problem types. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "be_util.h"
#include "json_out.h"
#include "paracorr/error.h"
#include "problem.h"
#include "test.h"

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

TEST(problem_json_pointer_rule)
{
	char p[64];

	CHECK(pcd_problem_pointer("corruption.epsilons[2]", p, sizeof(p)) == 0 &&
	      strcmp(p, "/corruption/epsilons/2") == 0);
	CHECK(pcd_problem_pointer("corruption[1].norms[0]", p, sizeof(p)) == 0 &&
	      strcmp(p, "/corruption/1/norms/0") == 0);
	CHECK(pcd_problem_pointer("model", p, sizeof(p)) == 0 && strcmp(p, "/model") == 0);
	CHECK(pcd_problem_pointer("training.dataset", p, sizeof(p)) == 0 && strcmp(p, "/training/dataset") == 0);
	CHECK(pcd_problem_pointer("a~b/c", p, sizeof(p)) == 0 && strcmp(p, "/a~0b~1c") == 0);
	CHECK(pcd_problem_pointer("", p, sizeof(p)) == 0 && strcmp(p, "") == 0);
	CHECK(pcd_problem_pointer("corruption.epsilons[2]", p, 8) == -1);
}

TEST(problem_place_error_has_no_field)
{
	struct pc_error err = {0};
	json_t *pr;

	pc_error_set(&err, PC_ERR_SHAPE, "input", "model wants 1x28x28, data is 3x32x32");
	REQUIRE((pr = pcd_problem_json(&err)));
	CHECK_INT(json_integer_value(json_object_get(pr, "status")), 422);
	CHECK(!strcmp(str(pr, "type"), "/problems/shape"));
	CHECK(!strcmp(str(pr, "title"), "shape mismatch"));
	CHECK(!strcmp(str(pr, "detail"), "input: model wants 1x28x28, data is 3x32x32"));
	CHECK(json_object_get(pr, "errors") == NULL);
	CHECK(json_object_get(pr, "instance") == NULL);
	json_decref(pr);
}

/* The stored form of a problem is the object as one compact line, and the
 * two JSON text forms are exactly these bytes. */
TEST(problem_json_text_is_the_compact_object)
{
	struct pc_error err = {0};
	json_t *v;
	char *text;

	pc_error_set(&err, PC_ERR_SHAPE, "input", "model wants 1x28x28");
	REQUIRE((text = pcd_problem_json_text(&err)));
	CHECK(!strcmp(text, "{\"type\":\"/problems/shape\",\"title\":\"shape mismatch\",\"status\":422,"
			    "\"detail\":\"input: model wants 1x28x28\"}"));
	free(text);
	REQUIRE((v = json_pack("{s:f, s:[i]}", "x", 0.1, "é", 2)));
	REQUIRE((text = pcd_json_text(v, PCD_JSON_COMPACT)));
	CHECK(!strcmp(text, "{\"x\":0.10000000000000001,\"é\":[2]}"));
	free(text);
	REQUIRE((text = pcd_json_text(v, PCD_JSON_ANSWER)));
	CHECK(!strcmp(text, "{\n  \"x\": 0.10000000000000001,\n  \"é\": [\n    2\n  ]\n}"));
	free(text);
	json_decref(v);
	CHECK(pcd_json_text(NULL, PCD_JSON_COMPACT) == NULL);
}

/* A spec field error is one row, 422 with its pointer, wherever caught. */
TEST(problem_field_error_carries_its_pointer)
{
	struct pc_error err = {0};
	json_t *pr, *e;

	pc_error_set(&err, PC_ERR_INVALID, "corruption.epsilons[2]", "must be > 0");
	REQUIRE((pr = pcd_problem_json(&err)));
	CHECK_INT(json_integer_value(json_object_get(pr, "status")), 422);
	CHECK(!strcmp(str(pr, "type"), "/problems/invalid"));
	CHECK(!strcmp(str(pr, "detail"), "corruption.epsilons[2]: must be > 0"));
	e = json_array_get(json_object_get(pr, "errors"), 0);
	CHECK_INT(json_array_size(json_object_get(pr, "errors")), 1);
	CHECK(!strcmp(str(e, "pointer"), "/corruption/epsilons/2"));
	CHECK(!strcmp(str(e, "detail"), "must be > 0"));
	json_decref(pr);
	/* a field error without a field: no errors member */
	pc_error_clear(&err);
	pc_error_set(&err, PC_ERR_INVALID, NULL, "the job spec must be a JSON object");
	REQUIRE((pr = pcd_problem_json(&err)));
	CHECK(json_object_get(pr, "errors") == NULL);
	json_decref(pr);
}

/* The CLI's text of a problem: the detail, then a line per field in
 * errors[]; one with no detail (or not a problem at all) says the
 * caller's fallback; a setting's entry (pointer "") adds no line. */
TEST(problem_cli_text_lists_the_fields)
{
	struct pc_error err = {0};
	char buf[256];
	json_t *pr;

	pc_error_set(&err, PC_ERR_INVALID, "corruption.epsilons[2]", "must be > 0");
	REQUIRE((pr = pcd_problem_json(&err)));
	CHECK(!strcmp(pcd_problem_cli_text(pr, "no detail", buf, sizeof(buf)),
		      "corruption.epsilons[2]: must be > 0\n  /corruption/epsilons/2: must be > 0"));
	json_decref(pr);
	REQUIRE((pr = json_pack("{s:s, s:s, s:i, s:s, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]}", "type",
				"/problems/invalid", "title", "invalid argument", "status", 422, "detail",
				"model: required", "errors", "pointer", "/model", "detail", "required", "pointer",
				"", "detail", "max_upload", "pointer", "/corruption/0/kind", "detail",
				"unknown kind 'fog'")));
	CHECK(!strcmp(pcd_problem_cli_text(pr, "no detail", buf, sizeof(buf)),
		      "model: required\n  /model: required\n  /corruption/0/kind: unknown kind 'fog'"));
	/* cut short to the buffer, still a string */
	CHECK(!strcmp(pcd_problem_cli_text(pr, "no detail", buf, 20), "model: required\n  /"));
	json_decref(pr);
	pc_error_clear(&err);
	pc_error_set(&err, PC_ERR_SHAPE, "input", "model wants 1x28x28");
	REQUIRE((pr = pcd_problem_json(&err)));
	CHECK(!strcmp(pcd_problem_cli_text(pr, "no detail", buf, sizeof(buf)), "input: model wants 1x28x28"));
	json_decref(pr);
	REQUIRE((pr = json_pack("{s:s, s:i}", "title", "busy", "status", 503)));
	CHECK(!strcmp(pcd_problem_cli_text(pr, "no detail", buf, sizeof(buf)), "no detail"));
	json_decref(pr);
	CHECK(!strcmp(pcd_problem_cli_text(NULL, "<html>bad gateway</html>", buf, sizeof(buf)),
		      "<html>bad gateway</html>"));
}

/* A bound set by a setting: errors[0] names it, pointing at the whole body. */
TEST(problem_setting_error_names_the_setting)
{
	static const struct {
		enum pc_status code;
		const char *setting, *type;
		int status;
	} rows[] = {
		{PC_ERR_QUOTA, "tenant_max_queued_jobs", "/problems/quota", 429},
		{PC_ERR_STORAGE_QUOTA, "tenant_max_stored_mb", "/problems/storage_quota", 507},
		{PC_ERR_TOO_MUCH_WORK, "max_job_work", "/problems/too_much_work", 422},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct pc_error err = {0};
		json_t *pr, *e;

		pc_error_set(&err, rows[i].code, rows[i].setting, "over");
		REQUIRE((pr = pcd_problem_json(&err)));
		e = json_array_get(json_object_get(pr, "errors"), 0);
		CHECK_MSG(!strcmp(str(pr, "type"), rows[i].type), "%s", str(pr, "type"));
		CHECK_INT(json_integer_value(json_object_get(pr, "status")), rows[i].status);
		CHECK(e && !strcmp(str(e, "pointer"), "") && !strcmp(str(e, "detail"), rows[i].setting));
		json_decref(pr);
	}
}

TEST(problem_codes_round_trip_through_types)
{
	char type[64];
	struct pc_error none = {0};
	json_t *pr;

	for (int c = 0; c < PC_ERR_COUNT; c++) {
		pcd_problem_type((enum pc_status)c, type, sizeof(type));
		CHECK_MSG(pcd_problem_code(type) == c, "%s", type);
	}
	CHECK_INT(pcd_problem_code("/problems/no-such-thing"), -1);
	CHECK_INT(pcd_problem_code("invalid"), -1);
	CHECK_INT(pcd_problem_code(NULL), -1);
	/* a caller that lost its error still answers as a failure */
	REQUIRE((pr = pcd_problem_json(&none)));
	CHECK(!strcmp(str(pr, "type"), "/problems/internal"));
	CHECK_INT(json_integer_value(json_object_get(pr, "status")), 500);
	json_decref(pr);
	/* bytes that are not UTF-8 do not make a problem unbuildable */
	pc_error_set(&none, PC_ERR_NOT_FOUND, NULL, "no \xff\xfe here");
	REQUIRE((pr = pcd_problem_json(&none)));
	CHECK(!strcmp(str(pr, "detail"), "no ?? here"));
	json_decref(pr);
}

/* The Problem schema's type enum of api/openapi.yaml is the error table:
 * every row but ok, each once, and nothing else. */
TEST(problem_types_in_openapi_are_the_table)
{
	char path[PATH_MAX], want[64];
	size_t len = 0, n = 0;
	char *text, *p, *end;
	int seen[PC_ERR_COUNT] = {0};

	snprintf(path, sizeof(path), "%s/api/openapi.yaml", pc_test_root());
	REQUIRE((text = be_read_file(path, &len)));
	p = strstr(text, "\n    Problem:\n");
	REQUIRE_MSG(p, "no Problem schema in api/openapi.yaml");
	p = strstr(p, "enum:\n");
	REQUIRE(p);
	p += strlen("enum:\n");
	/* the list: lines "            - /problems/<name>" up to the first other line */
	while ((end = strchr(p, '\n'))) {
		char *dash = p;
		int code;

		while (*dash == ' ')
			dash++;
		if (strncmp(dash, "- ", 2))
			break;
		*end = '\0';
		code = pcd_problem_code(dash + 2);
		CHECK_MSG(code > 0, "api/openapi.yaml lists %s, which the error table does not have", dash + 2);
		if (code > 0) {
			CHECK_MSG(!seen[code], "%s is listed twice", dash + 2);
			seen[code] = 1;
		}
		n++;
		p = end + 1;
	}
	for (int c = 1; c < PC_ERR_COUNT; c++)
		CHECK_MSG(seen[c], "api/openapi.yaml does not list %s",
			  pcd_problem_type((enum pc_status)c, want, sizeof(want)));
	CHECK_INT(n, PC_ERR_COUNT - 1);
	free(text);
}
