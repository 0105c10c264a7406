/* The upload check in a child process (server/store/validate.h): what the parent
 * answers when the child succeeds, fails, crashes or runs out of CPU. The
 * child is $PARACORRD_BIN in --validate mode (tests skip without it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx_build.h"
#include "paracorr/limits.h"
#include "test.h"
#include "validate.h"

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(data, 1, len, f) == len;

	if (f && fclose(f))
		ok = 0;
	return ok;
}

/* A valid 1 KB model whose load folds eight 2048x2048 MatMuls of constants
 * (about 140 GFLOP): seconds of CPU from a file smaller than a page. */
static unsigned char *costly_model(size_t *len)
{
	static const int64_t in_dims[2] = {-1, 4}, w_dims[2] = {3, 4}, b_dims[1] = {3}, s_dims[1] = {2};
	static const int64_t side[2] = {2048, 2048};
	static const float w[12] = {0.1f, 0.2f, 0.3f, 0.4f, -0.1f, 0.5f, 0.2f, 0.1f, 0.3f, -0.2f, 0.1f, 0.6f};
	static const float bias[3] = {0.1f, 0.0f, -0.1f};
	static struct ob_model b;
	static char names[10][16];
	static const char *ins[10][3], *outs[10][2];
	Onnx__NodeProto *g, *r;

	ob_init(&b, 13, "x", 2, in_dims, "y");
	ob_float(&b, "W", 2, w_dims, w);
	ob_float(&b, "B", 1, b_dims, bias);
	ob_int64(&b, "side", 1, s_dims, side);
	ob_node(&b, "ConstantOfShape", "zeros", (const char *const[]){"side", NULL},
		(const char *const[]){"c0", NULL});
	for (int i = 1; i <= 8; i++) {
		snprintf(names[i], sizeof(names[i]), "c%d", i);
		ins[i][0] = names[i - 1][0] ? names[i - 1] : "c0";
		ins[i][1] = "c0";
		ins[i][2] = NULL;
		outs[i][0] = names[i];
		outs[i][1] = NULL;
		ob_node(&b, "MatMul", names[i], ins[i], outs[i]);
	}
	r = ob_node(&b, "ReduceSum", "sum", (const char *const[]){"c8", NULL}, (const char *const[]){"s", NULL});
	ob_attr_int(r, &b, "keepdims", 0);
	g = ob_node(&b, "Gemm", "gemm0", (const char *const[]){"x", "W", "B", NULL}, (const char *const[]){"h", NULL});
	ob_attr_int(g, &b, "transB", 1);
	ob_node(&b, "Add", "add0", (const char *const[]){"h", "s", NULL}, (const char *const[]){"y", NULL});
	return ob_pack(&b, len);
}

/* path (a mkstemp template) made and filled with data. */
static int temp_file(char *path, const void *data, size_t len)
{
	int fd = mkstemp(path);

	if (fd < 0)
		return 0;
	close(fd);
	return write_file(path, data, len);
}

static const char *validator_bin(struct pc_test *t)
{
	const char *bin = getenv("PARACORRD_BIN");

	if (!bin || access(bin, X_OK))
		pc_test_skip(t, "PARACORRD_BIN is not set");
	return bin && !access(bin, X_OK) ? bin : NULL;
}

TEST(validate_child_describes_a_model)
{
	const char *bin = validator_bin(t);
	struct pcd_validator v = {bin, 4096, 60};
	struct pc_error err = {0};
	struct ob_model b;
	unsigned char *buf;
	size_t len;
	char path[] = "/tmp/pc_validate_XXXXXX";
	json_t *info = NULL;

	if (!bin)
		return;
	ob_mlp(&b);
	buf = ob_pack(&b, &len);
	REQUIRE(temp_file(path, buf, len));
	CHECK_MSG(pcd_validate_model(&v, path, "abc", len, &info, &err) == PC_OK, "%s", err.text);
	CHECK(info && json_integer_value(json_object_get(info, "parameters")) == 15);
	CHECK(info && !strcmp(json_string_value(json_object_get(info, "id")) ?: "", "abc"));
	CHECK(info && json_integer_value(json_object_get(info, "classes")) == 3);
	json_decref(info);
	info = NULL;
	/* the loader's own error comes back with its code and text */
	REQUIRE(write_file(path, "\x0a\xff\xff", 3));
	pc_error_clear(&err);
	CHECK(pcd_validate_model(&v, path, "abc", 3, &info, &err) == PC_ERR_FORMAT);
	CHECK_MSG(strstr(err.text, "byte") != NULL, "no offset in: %s", err.text);
	CHECK(info == NULL);
	/* the child refuses by the caps in force in its parent, not its defaults */
	{
		struct pc_limits l, old = *pc_limits_get();
		REQUIRE(write_file(path, buf, len));
		l = old;
		l.max_nodes = 1;
		pc_limits_set(&l);
		pc_error_clear(&err);
		CHECK(pcd_validate_model(&v, path, "abc", len, &info, &err) == PC_ERR_LIMIT);
		CHECK_MSG(strstr(err.text, "more than 1 nodes") != NULL, "%s", err.text);
		pc_limits_set(&old);
	}
	unlink(path);
	free(buf);
}

TEST(validate_cpu_limit_refuses_a_costly_model)
{
	const char *bin = validator_bin(t);
	struct pcd_validator v = {bin, 0, 1};
	struct pc_error err = {0};
	unsigned char *buf;
	size_t len;
	char path[] = "/tmp/pc_validate_XXXXXX";
	json_t *info = NULL;

	if (!bin)
		return;
	buf = costly_model(&len);
	REQUIRE(len < 4096);
	REQUIRE(temp_file(path, buf, len));
	CHECK(pcd_validate_model(&v, path, "abc", len, &info, &err) == PC_ERR_LIMIT);
	CHECK_MSG(strstr(err.text, "1 s of CPU (validate_cpu_s)") != NULL, "%s", err.text);
	CHECK(info == NULL);
	unlink(path);
	free(buf);
}

/* An unknown crash in a parser: here a "validator" that dies by SIGSEGV. */
TEST(validate_crash_costs_one_answer)
{
	char dir[] = "/tmp/pc_validate_XXXXXX", exe[64], model[64];
	struct pcd_validator v = {exe, 0, 10};
	struct pc_error err = {0};
	json_t *info = NULL;

	REQUIRE(mkdtemp(dir));
	snprintf(exe, sizeof(exe), "%s/crash", dir);
	snprintf(model, sizeof(model), "%s/m.onnx", dir);
	REQUIRE(write_file(exe, "#!/bin/sh\nkill -SEGV $$\n", 24));
	REQUIRE(chmod(exe, 0755) == 0);
	REQUIRE(write_file(model, "x", 1));
	CHECK(pcd_validate_model(&v, model, "abc", 1, &info, &err) == PC_ERR_INTERNAL);
	CHECK_MSG(strstr(err.text, "crashed (signal 11") != NULL, "%s", err.text);
	CHECK(info == NULL);
	/* a child that exits without an answer */
	REQUIRE(write_file(exe, "#!/bin/sh\nexit 0\n", 17));
	pc_error_clear(&err);
	CHECK(pcd_validate_dataset(&v, model, NULL, "abc", 1, 1 << 20, &info, &err) == PC_ERR_INTERNAL);
	CHECK_MSG(strstr(err.text, "without an answer") != NULL, "%s", err.text);
	unlink(exe);
	unlink(model);
	rmdir(dir);
}
