/* The tokens file: what a line means (a bare token, tenant= and role= in
 * any order, tabs, CRLF, tokens of any length) and how a bad file is
 * refused (by line number, never echoing a token). The daemon's answers
 * per tenant are http_tenants (test_http.c); the store's scopes are
 * store_tenant_scopes (test_store.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "sha256.h"
#include "test.h"

static int parse(const char *text, struct pcd_tokens **out, struct pc_error *err)
{
	pc_error_clear(err);
	return pcd_http_tokens_parse("tokens", text, strlen(text), out, err);
}

/* The entry whose digest is the SHA-256 of token, or NULL. */
static const struct pcd_token *find(const struct pcd_tokens *t, const char *token)
{
	struct pcd_sha256 c;
	uint8_t d[32];

	pcd_sha256_init(&c);
	pcd_sha256_update(&c, token, strlen(token));
	pcd_sha256_final(&c, d);
	for (size_t i = 0; t && i < t->n; i++)
		if (!memcmp(t->v[i].digest, d, sizeof(d)))
			return &t->v[i];
	return NULL;
}

TEST(tenants_tokens_file_lines)
{
	struct pcd_tokens *tk = NULL;
	struct pc_error err = {0};
	const struct pcd_token *e;
	char *long_text, *long_tok;
	const size_t long_n = 100000;

	REQUIRE_MSG(parse("# comment\n\nbare-token\n  tok-a tenant=alice\r\n"
			  "tok-b\trole=admin\ttenant=ops  \ntok-c role=user tenant=a.b_c-9\ntail-without-newline",
			  &tk, &err) == PC_OK,
		    "%s", err.text);
	CHECK_INT(tk->n, 5);
	CHECK((e = find(tk, "bare-token")) && !strcmp(e->tenant, "default") && !e->admin);
	CHECK((e = find(tk, "tok-a")) && !strcmp(e->tenant, "alice") && !e->admin); /* \r is not part of it */
	CHECK((e = find(tk, "tok-b")) && !strcmp(e->tenant, "ops") && e->admin);
	CHECK((e = find(tk, "tok-c")) && !strcmp(e->tenant, "a.b_c-9") && !e->admin);
	CHECK(find(tk, "tail-without-newline") != NULL);
	CHECK(find(tk, "tok") == NULL && find(tk, "tok-a tenant=alice") == NULL);
	pcd_http_tokens_free(tk);

	/* a token of 100,000 characters is one token: no piece of it is */
	long_tok = malloc(long_n + 1);
	long_text = malloc(long_n + 64);
	REQUIRE(long_tok && long_text);
	for (size_t i = 0; i < long_n; i++)
		long_tok[i] = (char)('a' + i % 26);
	long_tok[long_n] = '\0';
	snprintf(long_text, long_n + 64, "%s tenant=big\n", long_tok);
	REQUIRE(parse(long_text, &tk, &err) == PC_OK);
	CHECK_INT(tk->n, 1);
	CHECK((e = find(tk, long_tok)) && !strcmp(e->tenant, "big"));
	long_tok[1023] = '\0';
	CHECK(find(tk, long_tok) == NULL);
	pcd_http_tokens_free(tk);
	free(long_tok);
	free(long_text);
}

/* A bad line: PC_ERR_INVALID, where "tokens_file", the line number and
 * the path in the text, and nothing of the line's token. */
static void expect_bad(struct pc_test *t, int line, const char *text, size_t len, const char *want_line,
		       const char *want_word, const char *secret)
{
	struct pcd_tokens *toks = NULL;
	struct pc_error err = {0};
	int rc = pcd_http_tokens_parse("tokens", text, len, &toks, &err);

	if (rc != PC_ERR_INVALID || strcmp(err.where, "tokens_file") || !strstr(err.text, want_line) ||
	    !strstr(err.text, "tokens") || (want_word && !strstr(err.text, want_word)) ||
	    (secret && strstr(err.text, secret)))
		pc_test_fail(t, __FILE__, line, "rc %d, %s: %s (wanted \"%s\"%s%s)", rc, err.where, err.text, want_line,
			     want_word ? ", " : "", want_word ? want_word : "");
	pcd_http_tokens_free(toks);
}

#define EXPECT_BAD(text, want_line, want_word, secret)                                                            \
	expect_bad(t, __LINE__, text, strlen(text), want_line, want_word, secret)

TEST(tenants_tokens_file_errors)
{
	static const char nul[] = "ok-token\nsecret\0rest\n";

	EXPECT_BAD("", "holds no token", NULL, NULL);
	EXPECT_BAD("# only comments\n\n   \n", "holds no token", NULL, NULL);
	EXPECT_BAD("a tenant=x\nsecret-b role=root\n", "line 2", "role", "secret-b");
	EXPECT_BAD("secret-a tenant=bad/name\n", "line 1", "tenant", "secret-a");
	EXPECT_BAD("secret-a tenant=\n", "line 1", "tenant", "secret-a");
	EXPECT_BAD("secret-a "
		   "tenant=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", /* 65 */
		   "line 1", "tenant", "secret-a");
	EXPECT_BAD("secret-a tenant=x tenant=y\n", "line 1", "twice", "secret-a");
	EXPECT_BAD("secret-a role=user role=admin\n", "line 1", "twice", "secret-a");
	/* an unknown field may be the second half of a token with a space */
	EXPECT_BAD("secret first-half-of-secret\n", "line 1", "field 2", "secret");
	EXPECT_BAD("# x\n\ntenant=alice role=admin\n", "line 3", "missing", NULL);
	EXPECT_BAD("secret-same tenant=a\nother\nsecret-same tenant=b\n", "line 3", "line 1", "secret-same");
	expect_bad(t, __LINE__, nul, sizeof(nul) - 1, "line 2", "NUL", "secret");
}
