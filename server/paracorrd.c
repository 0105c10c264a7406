/* paracorrd: the daemon. main wires the modules together and owns them:
 * settings -> store (recovering jobs a crash left running) -> blobs ->
 * metrics -> workers -> HTTP; then it waits for SIGTERM or SIGINT and
 * drains in the reverse order: stop accepting connections, let running
 * jobs reach a checkpoint and requeue them, finish the requests in flight,
 * close the store, exit 0.
 *
 * Signals are blocked in every thread (the mask is inherited by the
 * threads started after it is set) and taken synchronously by main with
 * sigwait, so no work happens in a signal handler. A thread started before
 * main runs (OpenBLAS starts its pool when the library loads) has them
 * unblocked, and the kernel hands a process-directed SIGTERM to it while
 * main has it blocked: there the one handler forwards it to main, where
 * it waits for sigwait, instead of the default action killing the daemon
 * mid-start. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "blas_select.h"
#include "blobs.h"
#include "http_server.h"
#include "log.h"
#include "paracorr/version.h"
#include "paracorr/sys.h"
#include "prom.h"
#include "settings.h"
#include "store.h"
#include "workers.h"

static void on_job_done(void *arg, const char *kind, enum pcd_job_status status, double seconds)
{
	const char *name = pcd_job_status_name(status);

	pcd_prom_job(arg, kind, name ? name : "unknown", seconds);
}

static void die(const char *what, const struct pc_error *err)
{
	fprintf(stderr, "paracorrd: %s: %s%s%s\n", what, err->where, err->where[0] ? ": " : "", err->text);
}

static pthread_t main_thread;

/* Runs only on a thread that does not block the signal: one main did not
 * start. pthread_kill is async-signal-safe. */
static void forward_to_main(int sig)
{
	pthread_kill(main_thread, sig);
}

int main(int argc, char **argv)
{
	struct pcd_settings s;
	struct pcd_app app;
	struct pcd_workers_cfg wcfg;
	struct pc_error err = {0};
	struct pcd_http *http = NULL;
	char path[PATH_MAX], q[1100], qn[300], node[PCD_NODE_MAX + 1];
	sigset_t sigs;
	int sig = 0, port = 0, n_requeued = 0, n_failed = 0, rc = 1, lock_fd = -1;
	double t0;

	/* the upload checker (validate.h) is this program in another mode */
	if (argc > 1 && !strcmp(argv[1], "--validate"))
		return pcd_validate_main(argc, argv);
	/* before the BLAS re-exec and the settings: help needs neither */
	if (pcd_settings_wants_help(argc, argv)) {
		pcd_settings_usage(stdout);
		return 0;
	}
	pc_blas_select_kernels(argv);
	pc_blas_set_threads(1);
	/* first, so that a signal at any point of the start waits for sigwait */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	main_thread = pthread_self();
	{
		struct sigaction sa = {0};

		sa.sa_handler = forward_to_main;
		sa.sa_mask = sigs;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&app, 0, sizeof(app));
	atomic_init(&app.draining, 0);
	if (pcd_settings_from_args(&s, argc, argv, &err)) {
		die("configuration", &err);
		return 2;
	}
	if (s.print_config) {
		pcd_settings_print(&s, stdout);
		return 0;
	}
	app.settings = &s;
	/* the checker is this very file, even if the path it was started by
	 * changes while it runs */
	app.validator.exe = "/proc/self/exe";
	app.validator.max_mb = s.validate_mb;
	app.validator.max_cpu_s = s.validate_cpu_s;
	{
		/* before anything loads a model or a dataset */
		struct pc_limits lim;
		pcd_settings_limits(&s, &lim);
		pc_limits_set(&lim);
	}


	/* what can be refused without touching the data directory first */
	if (s.tokens_file[0] && pcd_http_tokens_load(s.tokens_file, &app.tokens, &err)) {
		die("tokens", &err);
		goto out;
	}
	if (pcd_blobs_open(s.data_dir, &app.blobs, &err)) {
		die("data directory", &err);
		goto out;
	}
	/* one daemon per data directory: a second one's recovery would requeue
	 * the first one's running jobs */
	snprintf(path, sizeof(path), "%s/paracorrd.lock", s.data_dir);
	if ((lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0 || flock(lock_fd, LOCK_EX | LOCK_NB)) {
		fprintf(stderr, "paracorrd: data_dir: %s: %s\n", s.data_dir,
			lock_fd < 0 ? strerror(errno) : "another paracorrd is using this data directory");
		goto out;
	}
	if (!strcmp(s.store, "sqlite"))
		snprintf(path, sizeof(path), "%s/paracorr.db", s.data_dir);
	else
		snprintf(path, sizeof(path), "%s", s.store);
	pcd_settings_node_name(&s, node, sizeof(node));
	if (pcd_store_open(path, &app.store, &err) || pcd_store_set_node(app.store, node, s.lease_ms, &err)) {
		die("database", &err);
		goto out;
	}
	/* with PostgreSQL the uploads' bytes are the database's too (the open
	 * above made their tables), and the data directory only caches them */
	if (pcd_store_is_url(path) &&
	    pcd_blobs_share(app.blobs, path, (uint64_t)s.cache_max_mb << 20, 0, &err)) {
		die("cache", &err);
		goto out;
	}
	if (pcd_store_job_recover(app.store, s.max_attempts, &n_requeued, &n_failed, &err)) {
		die("recovery", &err);
		goto out;
	}
	if (n_requeued || n_failed)
		pcd_log("info", "msg=\"recovered jobs left running\" requeued=%d failed=%d", n_requeued, n_failed);
	if (!(app.prom = pcd_prom_new(node))) {
		fprintf(stderr, "paracorrd: out of memory\n");
		goto out;
	}
	pcd_workers_cfg_default(&wcfg);
	wcfg.n_workers = s.workers;
	wcfg.threads_per_job = s.threads_per_job;
	wcfg.cache_bytes = (size_t)s.cache_mb << 20;
	wcfg.max_attempts = s.max_attempts;
	wcfg.poll_ms = s.poll_ms;
	wcfg.max_work = pcd_settings_max_work(&s);
	wcfg.on_done = on_job_done;
	wcfg.on_done_arg = app.prom;
	wcfg.validator = app.validator;
	if (pcd_workers_start(&wcfg, app.store, app.blobs, &app.workers, &err)) {
		die("workers", &err);
		goto out;
	}
	if (pcd_http_start(&app, &http, &port, &err)) {
		die("http", &err);
		goto out;
	}
	pcd_log("info",
		"msg=listening listen=%s port=%d workers=%d threads_per_job=%d data_dir=%s store=%s node=%s auth=%s version=%s",
		s.listen, port, s.workers, s.threads_per_job, pcd_log_quote(s.data_dir, q, sizeof(q)),
		pcd_store_backend(app.store), pcd_log_quote(node, qn, sizeof(qn)),
		app.tokens ? "bearer" : "none", PC_VERSION);

	while (sigwait(&sigs, &sig) != 0)
		;
	t0 = pc_sys_seconds();
	pcd_log("info", "msg=draining signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	atomic_store(&app.draining, 1);
	pcd_http_quiesce(http);
	if (pcd_workers_drain_timed(app.workers, s.drain_timeout_s) > 0) {
		/* a job between checks cannot be stopped from outside; its row
		 * still says running, so the next start runs it again */
		pcd_log("warn",
			"msg=\"jobs did not reach a checkpoint within drain_timeout_s; they run again at the next "
			"start\" drain_s=%.3f",
			pc_sys_seconds() - t0);
		pcd_http_stop(http);
		fflush(NULL);
		_exit(0);
	}
	rc = 0;
out:
	pcd_http_stop(http);
	pcd_workers_free(app.workers);
	pcd_store_close(app.store);
	pcd_blobs_free(app.blobs);
	pcd_prom_free(app.prom);
	pcd_http_tokens_free(app.tokens);
	if (lock_fd >= 0)
		close(lock_fd);
	if (rc == 0)
		pcd_log("info", "msg=stopped drain_s=%.3f", pc_sys_seconds() - t0);
	return rc;
}
