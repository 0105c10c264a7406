/* Helpers for the daemon backend tests: fresh temp directories. */
#ifndef PARACORR_TEST_BE_UTIL_H
#define PARACORR_TEST_BE_UTIL_H

#include <stddef.h>

/* mkdtemp under $TMPDIR (or /tmp) into buf; returns buf or NULL. */
char *be_tmpdir(char *buf, size_t size);
/* rm -rf path. */
void be_rmtree(const char *path);
/* Whole file into a malloc'd NUL-terminated buffer; NULL on error. */
char *be_read_file(const char *path, size_t *len);

#endif
