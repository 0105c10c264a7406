# paracorr: build, test, bench.
#   make deps                       install the Debian packages (root; idempotent)
#   make                            build/libparacorr.a and build/paracorr
#   make test                       unit, reference and CLI tests
#   make SANITIZE=address,undefined test   the same under ASan + UBSan (in build-san/)
#   make bench                      benchmarks against PyTorch and OpenBLAS
#   make demo                       the daemon and a study on Fashion-MNIST (DEMO_EXIT=1: stop after)
#   make image                      the container image (docker/Dockerfile) as $(IMAGE); its base
#                                   built from Debian's packages where no registry answers
#   make fuzz FUZZ_SECONDS=60       every libFuzzer target (tests/fuzz/) for N s each, built with
#                                   clang and ASan + UBSan in build-fuzz/; FUZZ_TARGETS="onnx spec"
#                                   narrows it; exits non-zero on a crash, leaving the input in
#                                   build-fuzz/crashes/

CC ?= cc
PKGS := openblas libprotobuf-c jansson libmicrohttpd sqlite3 libpq zlib libcurl nettle
TEST_PKGS := expat
DEB_PACKAGES := build-essential pkg-config protobuf-c-compiler libprotobuf-c-dev libopenblas-dev \
	libjansson-dev libmicrohttpd-dev libsqlite3-dev libpq-dev zlib1g-dev libcurl4-openssl-dev nettle-dev \
	libexpat1-dev dataset-fashion-mnist
# what only the tests need beyond that: the dashboard's headless-browser
# test, the Python client's (Debian's python3, a venv for pip install), the
# check of api/ against what paracorr writes (jsonschema, yaml), and the
# PostgreSQL store's (postgresql: the tests initdb and start a throwaway
# server of their own, tests/pg_util.c; the system's is never used)
DEB_TEST := chromium python3 python3-venv python3-jsonschema python3-yaml postgresql
DEB_REFERENCE := python3-torch python3-torchvision python3-onnx python3-numpy

# the fuzz build: clang's libFuzzer instrumentation on every object (the
# fuzzer's main is linked into the targets only), in its own directory so
# that gcc builds are untouched
DEB_FUZZ := clang-14 libfuzzer-14-dev
ifdef FUZZ
CC := clang-14
BUILD ?= build-fuzz
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT ?= -O1
else ifdef SANITIZE
BUILD ?= build-san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT ?= -O1
else
BUILD ?= build
SANFLAGS :=
OPT ?= -O3
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_LIBS := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wno-unused-parameter
CPPFLAGS := -Iinclude -Icore -I$(BUILD)/gen $(PKG_CFLAGS) -D_GNU_SOURCE
CFLAGS := -std=c11 $(OPT) -g $(WARN) $(SANFLAGS) -MMD -MP
LDFLAGS := $(SANFLAGS)
LDLIBS := $(PKG_LIBS) -lpthread -lm

GEN := $(BUILD)/gen/onnx.pb-c.c
CORE_SRC := $(wildcard core/*.c core/ops/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/onnx.pb-c.o
# server/: the two programs' mains, and the daemon's modules (linked into
# paracorrd and into the tests)
SERVER_MAINS := server/cli/paracorr.c server/paracorrd.c
SERVER_SRC := $(filter-out $(SERVER_MAINS),$(wildcard server/*.c server/*/*.c))
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o) $(BUILD)/server/http/assets_data.o
# the server's folders, on the include path of the server and the tests
# only: the core never includes a server header
SERVER_INC := -Iserver $(patsubst %/,-I%,$(filter-out server/dashboard/,$(wildcard server/*/)))
# files the daemon serves, built into it (server/http/assets_data.S)
ASSETS := api/openapi.yaml server/dashboard/index.html server/dashboard/app.js server/dashboard/style.css
# tests/fuzz/targets.c: the fuzz entry points, also run by the ordinary
# tests on the committed regression inputs (tests/test_fuzz_regress.c)
TEST_SRC := $(wildcard tests/*.c) tests/fuzz/targets.c
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all deps deps-test deps-reference test test-run clean bench bench-run demo fuzz fuzz-run image

# Installs those of the Debian packages $(1) that are missing (as root, or
# through sudo), so that make demo and make test work on a fresh machine.
install_missing = missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "make $@: installing" $$missing; \
		if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; \
		else echo "make $@: run 'make deps deps-test' as root first"; exit 1; fi; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

all: $(BUILD)/libparacorr.a $(BUILD)/paracorr $(if $(wildcard server/paracorrd.c),$(BUILD)/paracorrd)

deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root (apt-get)"; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PACKAGES)

deps-test:
	@if [ "$$(id -u)" != 0 ]; then echo "make deps-test: run as root (apt-get)"; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_TEST)

# The reference script's packages are only needed to regenerate fixtures and
# to run the PyTorch side of the benchmarks.
deps-reference:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_REFERENCE)

$(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h &: core/onnx.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=core --c_out=$(BUILD)/gen core/onnx.proto

# generated code: our warnings are not its concern
$(BUILD)/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c
	$(CC) $(CPPFLAGS) -std=c11 $(OPT) -g $(SANFLAGS) -c $< -o $@

$(BUILD)/%.o: %.c | $(BUILD)/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/server/%.o $(BUILD)/tests/%.o: CPPFLAGS += $(SERVER_INC)

$(BUILD)/server/http/assets_data.o: server/http/assets_data.S $(ASSETS)
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

$(BUILD)/libparacorr.a: $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/paracorr: $(BUILD)/server/cli/paracorr.o $(SERVER_OBJ) $(BUILD)/libparacorr.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/paracorrd: $(BUILD)/server/paracorrd.o $(SERVER_OBJ) $(BUILD)/libparacorr.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# tests link the objects, not the archive, so every test file's constructor
# registration is kept; the test binary alone routes the allocator through
# the allocation-failure injector (tests/allocfail.c)
AF_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=aligned_alloc \
	-Wl,--wrap=posix_memalign,--wrap=strdup,--wrap=strndup
$(BUILD)/tests/run_tests: $(TEST_OBJ) $(CORE_OBJ) $(SERVER_OBJ)
	$(CC) $(LDFLAGS) $(AF_WRAP) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

# make test installs what is missing first (as make demo does), then builds
# and runs in a new make, whose pkg-config flags see the new packages.
test:
	@$(call install_missing,$(DEB_PACKAGES) $(DEB_TEST))
	@$(MAKE) --no-print-directory test-run

test-run: $(BUILD)/tests/run_tests all
	PARACORR_BIN=$(BUILD)/paracorr PARACORRD_BIN=$(BUILD)/paracorrd PARACORR_ARTIFACT_DIR=$(BUILD)/test-artifacts \
		$(BUILD)/tests/run_tests

# The demo (server/demo.sh): installs the Debian packages that are missing,
# builds, starts paracorrd on a local port with a data directory under
# $(BUILD), uploads the fixture CNN and the Fashion-MNIST test set, runs the
# study of api/examples/demo-cnn.json and prints its tables and the
# dashboard's address; the daemon runs until Ctrl-C (DEMO_EXIT=1: until the
# study is done).
demo:
	@$(call install_missing,$(DEB_PACKAGES))
	$(MAKE) all
	server/demo.sh $(BUILD)

# The benchmarks (tests/bench/run_bench.py says what and how they measure):
# the study of tests/bench/specs/*.json (MLP, CNN, ResNet on Fashion-MNIST;
# the LSTM and GPT language models on licence text) by paracorr and by
# PyTorch at 1 and 2 threads, cross-checked, with each side's peak RSS, then
# Conv and sgemm GFLOPS; then a sharded study on three paracorrd nodes
# (127.0.0.2-4) sharing one PostgreSQL database against one node
# (tests/bench/shards_bench.py: a ratio, its reports equal to an unsharded
# SQLite node's; it starts and removes a throwaway PostgreSQL server of its
# own as tests/pg_util.c does, so it runs as root). It installs what it
# lacks (Debian's python3-torch, python3-onnx, postgresql); never fails on
# speed.
# BENCH_FLAGS narrows a run, e.g. BENCH_FLAGS="--models lm_lstm,lm_gpt --skip-gemm".
BENCH_PYTHON := /usr/bin/python3
BENCH_FLAGS ?=

$(BUILD)/tests/bench/gemm_bench: $(BUILD)/tests/bench/gemm_bench.o $(BUILD)/tests/bench/bench_util.o $(BUILD)/server/blas_select.o $(BUILD)/libparacorr.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/bench/curv_bench: $(BUILD)/tests/bench/curv_bench.o $(BUILD)/tests/bench/bench_util.o $(BUILD)/server/blas_select.o $(BUILD)/libparacorr.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench:
	@$(call install_missing,$(DEB_PACKAGES) $(DEB_REFERENCE) postgresql)
	@$(MAKE) --no-print-directory bench-run

bench-run: $(BUILD)/paracorr $(BUILD)/paracorrd $(BUILD)/tests/bench/gemm_bench $(BUILD)/tests/bench/curv_bench
	@$(BENCH_PYTHON) -c 'import torch, onnx, numpy' 2>/dev/null || { echo "make bench: $(BENCH_PYTHON) cannot import torch, onnx and numpy; install Debian's python3-torch python3-onnx python3-numpy (make deps-reference, as root)"; exit 1; }
	$(BENCH_PYTHON) tests/bench/run_bench.py --build $(BUILD) $(BENCH_FLAGS)
	$(BENCH_PYTHON) tests/bench/shards_bench.py --build $(BUILD)

# Fuzzing (tests/fuzz/README.md): one binary per tests/fuzz/fuzz_<target>.c,
# each run for FUZZ_SECONDS with its seeds (tests/fuzz/corpus/<target>/ and
# those gen_seeds makes from the fixtures) by tests/fuzz/run.sh.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

fuzz:
	@$(call install_missing,$(DEB_PACKAGES) $(DEB_FUZZ))
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-run

$(BUILD)/fuzz/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/targets.o $(CORE_OBJ) $(SERVER_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

$(BUILD)/fuzz/gen_seeds: $(BUILD)/tests/fuzz/gen_seeds.o $(BUILD)/server/store/sha256.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz-run: $(FUZZ_BINS) $(BUILD)/fuzz/gen_seeds
	tests/fuzz/run.sh $(BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The container image: docker/base.sh finds or makes the base (pulled, or
# debootstrapped from Debian's packages), then the two-stage build, with
# host networking (the build's apt-get reaches the mirror as the host does)
# and the package layers cached ahead of the source copy.
IMAGE ?= paracorr
image:
	@command -v docker >/dev/null || { echo "make image: docker is not installed (apt-get install docker.io)"; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make image: no Docker daemon answers (start dockerd)"; exit 1; }
	base=$$(docker/base.sh) && docker build --network host --build-arg BASE=$$base -f docker/Dockerfile -t $(IMAGE) .

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
