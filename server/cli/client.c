/* client: see client.h. */
#include "client.h"

#include "paracorr/sys.h"
#include "problem.h"
#include "summary.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int pcd_client_init(struct pcd_client *c, const char *server, const char *token, struct pc_error *err)
{
	size_t n;

	if (!server)
		server = getenv("PARACORR_SERVER");
	if (!server || !server[0])
		server = "http://127.0.0.1:8080";
	if (!token)
		token = getenv("PARACORR_TOKEN");
	if (strncmp(server, "http://", 7) && strncmp(server, "https://", 8))
		return pc_error_set(err, PC_ERR_INVALID, "server", "'%s' is not an http:// or https:// URL", server);
	n = strlen(server);
	while (n && server[n - 1] == '/')
		n--;
	if (n >= sizeof(c->base))
		return pc_error_set(err, PC_ERR_INVALID, "server", "the URL is too long");
	memcpy(c->base, server, n);
	c->base[n] = '\0';
	c->auth[0] = '\0';
	c->extra = NULL;
	if (token && token[0]) {
		if (strlen(token) > sizeof(c->auth) - 32 || strpbrk(token, "\r\n"))
			return pc_error_set(err, PC_ERR_INVALID, "token", "not a usable bearer token");
		snprintf(c->auth, sizeof(c->auth), "Authorization: Bearer %s", token);
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return pc_error_set(err, PC_ERR_INTERNAL, "curl", "cannot initialise libcurl");
	return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct pcd_client_resp *r = arg;
	size_t k = size * n;
	char *b = realloc(r->body, r->len + k + 1);

	if (!b)
		return 0; /* makes curl fail the transfer */
	memcpy(b + r->len, p, k);
	r->body = b;
	r->len += k;
	b[r->len] = '\0';
	return k;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct pcd_client_resp *r = arg;
	size_t k = size * n;

	if (k > 9 && !strncasecmp(p, "Location:", 9)) {
		const char *v = p + 9;
		size_t len;

		while (*v == ' ')
			v++;
		len = strcspn(v, "\r\n");
		if (len >= sizeof(r->location))
			len = sizeof(r->location) - 1;
		memcpy(r->location, v, len);
		r->location[len] = '\0';
	}
	return k;
}

struct upload_progress {
	const char *label;
	struct pcd_progress_bar bar;
	double t0;
};

static int on_upload(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct upload_progress *u = arg;
	double el = pc_sys_seconds() - u->t0;

	(void)dltotal, (void)dlnow;
	if (ultotal > 0)
		pcd_progress_draw(&u->bar, u->label, (long long)(ulnow / 1000), (long long)(ultotal / 1000), "kB", el,
				  ulnow > 0 ? el / (double)ulnow * (double)(ultotal - ulnow) : -1.0, 0, stderr);
	return 0;
}

int pcd_client_do(const struct pcd_client *c, const char *method, const char *path, const char *content_type,
		  const char *body, size_t len, const char *upload_path, const char *const *parts,
		  struct pcd_client_resp *r, struct pc_error *err)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	curl_mime *mime = NULL;
	FILE *up = NULL;
	char url[1024], ct[160], cerr[CURL_ERROR_SIZE] = "";
	struct upload_progress prog = {0};
	CURLcode cc;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	if (!h)
		return pc_error_set(err, PC_ERR_NOMEM, "curl", "cannot create a request");
	snprintf(url, sizeof(url), "%s%s", c->base, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (c->auth[0])
		hdrs = curl_slist_append(hdrs, c->auth);
	if (c->extra)
		hdrs = curl_slist_append(hdrs, c->extra);
	if (content_type) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
		hdrs = curl_slist_append(hdrs, ct);
	}
	if (upload_path) {
		long size;

		if (!(up = fopen(upload_path, "rb")) || fseek(up, 0, SEEK_END) || (size = ftell(up)) < 0 ||
		    fseek(up, 0, SEEK_SET)) {
			rc = pc_error_set(err, PC_ERR_IO, upload_path, "cannot read the file");
			goto out;
		}
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_READDATA, up);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	} else if (parts) {
		mime = curl_mime_init(h);
		for (; parts[0]; parts += 2) {
			curl_mimepart *p = curl_mime_addpart(mime);

			curl_mime_name(p, parts[0]);
			if (curl_mime_filedata(p, parts[1]) != CURLE_OK) {
				rc = pc_error_set(err, PC_ERR_IO, parts[1], "cannot read the file");
				goto out;
			}
		}
		curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
	} else if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	if (c->upload_label && (upload_path || parts)) {
		prog.label = c->upload_label;
		prog.bar.tty = isatty(2);
		prog.t0 = pc_sys_seconds();
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_upload);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, &prog);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	/* uploads do not wait for a 100 Continue the server may not send */
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if ((cc = curl_easy_perform(h)) != CURLE_OK) {
		rc = pc_error_set(err, PC_ERR_IO, c->base, "%s", cerr[0] ? cerr : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	if (prog.label) {
		curl_off_t sent = 0;

		curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &sent);
		pcd_progress_draw(&prog.bar, prog.label, (long long)(sent / 1000), (long long)(sent / 1000), "kB",
				  pc_sys_seconds() - prog.t0, 0, 1, stderr);
	}
	if (!r->body && !(r->body = calloc(1, 1)))
		rc = pc_error_set(err, PC_ERR_NOMEM, "response", "out of memory");
out:
	if (up)
		fclose(up);
	curl_mime_free(mime);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	if (rc)
		pcd_client_resp_free(r);
	return rc;
}

void pcd_client_resp_free(struct pcd_client_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

void pcd_client_named_path(const char *path, const char *file, char *out, size_t n)
{
	const char *base = strrchr(file, '/');
	char *q = curl_easy_escape(NULL, base ? base + 1 : file, 0);

	/* the server bounds a name to 128 bytes: a longer base name goes
	 * unnamed rather than refused */
	if (q && strlen(base ? base + 1 : file) <= 128 && (size_t)snprintf(out, n, "%s?name=%s", path, q) < n) {
		curl_free(q);
		return;
	}
	curl_free(q);
	snprintf(out, n, "%s", path);
}

int pcd_client_problem(const struct pcd_client_resp *r, const char *what, struct pc_error *err)
{
	json_t *p = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
	json_t *e0 = json_array_get(json_object_get(p, "errors"), 0);
	const char *ptr = json_string_value(json_object_get(e0, "pointer"));
	/* the problem's type names the error (problem.h); an answer without
	 * one (a proxy's, say) is told by its status */
	int typed = pcd_problem_code(json_string_value(json_object_get(p, "type")));
	enum pc_status code = typed > 0 ? (enum pc_status)typed
			      : r->status == 404 ? PC_ERR_NOT_FOUND
			      : r->status == 409 ? PC_ERR_CONFLICT
			      : r->status == 503 ? PC_ERR_BUSY
			      : r->status == 422 || r->status == 400 ? PC_ERR_INVALID
								      : PC_ERR_IO;
	char text[sizeof(err->text)];

	pc_error_set(err, code, ptr && ptr[0] ? ptr : what, "HTTP %ld: %s", r->status,
		     pcd_problem_cli_text(p, r->len ? r->body : "no detail", text, sizeof(text)));
	json_decref(p);
	return code;
}
