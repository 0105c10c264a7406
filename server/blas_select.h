/* blas_select: give OpenBLAS the kernels this CPU can run.
 *
 * OpenBLAS picks its kernels when it loads. A build older than the CPU does
 * not recognise the model and falls back to SSE3 ("Prescott") kernels, four
 * times slower than the AVX-512 ones the CPU runs (22 against 92 GFLOPS
 * single-threaded, measured on the Xeon of our CI). When the kernels loaded
 * are of a lower class than the CPU's features allow, and OPENBLAS_CORETYPE
 * is not set, the process re-executes itself once with OPENBLAS_CORETYPE
 * naming the best class. An OPENBLAS_CORETYPE already set is never touched;
 * PARACORR_BLAS_CORETYPE=off disables this, =NAME forces a kernel class. */
#ifndef PARACORR_BLAS_SELECT_H
#define PARACORR_BLAS_SELECT_H

/* Call first thing in main; returns only when no re-execution happens. */
void pc_blas_select_kernels(char **argv);

/* Threads OpenBLAS may use, process-wide. The programs (CLI, daemon, test
 * runner) set 1 at start-up, after pc_blas_select_kernels: parallelism
 * comes from a runner's workers, each running whole plans, and BLAS threads
 * under them would oversubscribe the cores. The core never calls this. */
void pc_blas_set_threads(int n);

#endif
