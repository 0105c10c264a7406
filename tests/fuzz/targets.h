/* The fuzz targets' entry points: one function per parser, fed one input.
 *
 * Each tests/fuzz/fuzz_<name>.c is a libFuzzer LLVMFuzzerTestOneInput that
 * calls pcf_<name>; tests/test_fuzz_regress.c calls the same functions on
 * the committed inputs under tests/fuzz/regress/<name>/, so a crash the
 * fuzzer found stays a test in the ordinary build. Every function returns
 * 0 (libFuzzer's convention) and checks nothing itself: ASan, UBSan and
 * the parsers' own asserts are the oracle, plus the few invariants the
 * functions abort on (an error code without a message, a result that does
 * not hold what its parser promises). */
#ifndef PARACORR_TESTS_FUZZ_TARGETS_H
#define PARACORR_TESTS_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

typedef int (*pcf_fn)(const uint8_t *data, size_t size);

/* pc_onnx_load_buffer on the bytes; of a model it loads, the upload's
 * description (pcd_model_info) and pc_eval_data_for. */
int pcf_onnx(const uint8_t *data, size_t size);
/* pc_dataset_load_memory_max: byte 0 picks the read mode (inputs, labels,
 * preprocessing, a limit) and whether a labels file follows; then, with
 * labels, a 4-byte little-endian length of the inputs; then the file(s). */
int pcf_data(const uint8_t *data, size_t size);
/* pc_spec_parse on the bytes as JSON, and its round trip through
 * pc_spec_to_json. */
int pcf_spec(const uint8_t *data, size_t size);
/* pcd_settings_load_file and pcd_settings_validate on the bytes as a
 * config file. */
int pcf_settings(const uint8_t *data, size_t size);
/* pcd_http_tokens_load on the bytes as a tokens file. */
int pcf_tokens(const uint8_t *data, size_t size);
/* pcd_ckpt_read: byte 0 picks the trainer's state size, the rest is the
 * checkpoint file. */
int pcf_ckpt(const uint8_t *data, size_t size);
/* pcd_charts_list and pcd_chart_svg of every chart on the bytes as a report. */
int pcf_charts(const uint8_t *data, size_t size);
/* The bytes as what a client sends on one connection to the daemon's HTTP
 * front (an in-process MHD with no listening socket, a socketpair per
 * input, a temporary data directory); the answer is read to the end. */
int pcf_http(const uint8_t *data, size_t size);

struct pcf_target {
	const char *name;
	pcf_fn fn;
};
/* Every target, ended by {NULL, NULL}. */
extern const struct pcf_target pcf_targets[];

#endif
