# resnet.c — plain Make. `make` builds the library and CLI into $(BUILD)/,
# `make test` builds and runs the test suite, `make test-asan` the same under sanitizers.

BUILD   ?= build
CC      ?= gcc
OPT     ?= -O2
SAN     ?=
CFLAGS  ?= $(OPT) -g
# PLplot draws the experiments' and training runs' plots (Debian's libplplot-dev).
PLPLOT_CFLAGS ?= $(shell pkg-config --cflags plplot 2>/dev/null || echo -I/usr/include/plplot)
PLPLOT_LIBS   ?= $(shell pkg-config --libs plplot 2>/dev/null || echo -lplplot)
# -fvisibility=hidden: the shared library exports what include/resnet.h marks RN_API, no more.
ALL_CFLAGS = $(CFLAGS) $(OBJ_SAN) -std=c11 -Wall -Wextra -Wshadow -fPIC -fvisibility=hidden -fopenmp -Iinclude -Isrc -I$(BUILD)/gen $(PLPLOT_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SAN)
# Each object is built with SAN but the direct convolution's microkernels, built with ROW_SAN
# (the fuzz build leaves them out, below).
OBJ_SAN = $(SAN)
ROW_SAN ?= $(SAN)
LDLIBS  += $(PLPLOT_LIBS) -lcjson -lprotobuf-c -lpng -ljpeg -lstb -lz -lm -lpthread -fopenmp
TEST_LDLIBS = -lcmocka
# MPI=1: training over several processes and machines (src/dist/, Open MPI from
# `tools/install-deps.sh --mpi`). Without it src/dist/ is its one-process build and nothing
# needs MPI. Use a build folder of its own: make MPI=1 BUILD=build-mpi.
MPI ?=
ifeq ($(MPI),1)
MPI_CFLAGS ?= $(shell pkg-config --cflags ompi-c 2>/dev/null || mpicc --showme:compile)
MPI_LIBS   ?= $(shell pkg-config --libs ompi-c 2>/dev/null || mpicc --showme:link)
ALL_CFLAGS += -DRN_WITH_MPI $(MPI_CFLAGS)
LDLIBS     += $(MPI_LIBS)
endif

LIB_SRC  := $(sort $(wildcard src/core/*.c src/kernels/*.c src/io/*.c src/nn/*.c src/train/*.c \
                              src/plot/*.c src/experiments/*.c src/dist/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_SUPPORT_SRC := $(sort $(wildcard tests/support/*.c))
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))

# $(BUILD)/gen: code generated at build time (the ONNX schema's, rules at the end).
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/onnx.pb-c.o
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)

.PHONY: all test test-asan test-mpi demo deps clean install uninstall
# keep object files of examples and tests between builds
.SECONDARY:
all: $(BUILD)/libresnet.a $(BUILD)/libresnet.so $(BUILD)/resnet $(EXAMPLE_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# Kernels: -O3, so that loops over arrays vectorise (GCC 12's -O2 leaves a loop of unknown
# length scalar) and the microkernels' fixed-size loops unroll into registers. The AVX2 ones
# are built for AVX2 + FMA, the AVX-512 ones for AVX-512F too, and each only called where the
# CPU has them (src/kernels/cpu.c).
# -Wno-psabi: the portable builds (the Winograd transforms, the blocked microkernels' output
# helper) pass 8-float vectors between static functions, and GCC and clang note that their ABI
# changed or needs AVX; no call crosses a file.
$(BUILD)/obj/src/kernels/%.o: src/kernels/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O3 -Wno-psabi -c $< -o $@

$(BUILD)/obj/src/kernels/%_avx2.o: src/kernels/%_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O3 -mavx2 -mfma -c $< -o $@

$(BUILD)/obj/src/kernels/%_avx512.o: src/kernels/%_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O3 -mavx2 -mfma -mavx512f -c $< -o $@

$(BUILD)/obj/src/kernels/%_generic.o: src/kernels/%_generic.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O3 -Wno-psabi -c $< -o $@

# The builds of convb_row.h: every variant of the microkernel, unrolled.
$(foreach isa,avx512 avx2 generic,$(BUILD)/obj/src/kernels/convb_$(isa).o): OBJ_SAN = $(ROW_SAN)

$(BUILD)/libresnet.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The version is written once, in include/resnet.h; the soname carries its major number.
VERSION_PART = $(shell awk '/^.define RN_VERSION_$(1) /{print $$3}' include/resnet.h)
VERSION := $(call VERSION_PART,MAJOR).$(call VERSION_PART,MINOR).$(call VERSION_PART,PATCH)
SONAME := libresnet.so.$(call VERSION_PART,MAJOR)

$(BUILD)/libresnet.so.$(VERSION): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) -o $@ $^ $(ALL_LDFLAGS) $(LDLIBS)

$(BUILD)/libresnet.so: $(BUILD)/libresnet.so.$(VERSION)
	ln -sf libresnet.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

$(BUILD)/resnet: $(CLI_OBJ) $(BUILD)/libresnet.a
	$(CC) -o $@ $(CLI_OBJ) $(BUILD)/libresnet.a $(ALL_LDFLAGS) $(LDLIBS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(BUILD)/libresnet.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(BUILD)/libresnet.a $(ALL_LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT_OBJ) $(BUILD)/libresnet.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(TEST_SUPPORT_OBJ) $(BUILD)/libresnet.a $(ALL_LDFLAGS) $(LDLIBS) $(TEST_LDLIBS)

# The test runner regenerates the PyTorch reference states, then runs every test binary.
# The suite also runs each fuzz harness a few seconds on its corpus (TEST_FUZZ= leaves that out:
# the sanitizer run below, whose harnesses are the same).
TEST_FUZZ ?= fuzz
# What the suites run is built with a job per core, unless make was given -j (a plain
# `make test` built one file at a time: most of its 11-12 minutes on a 2-core Xeon).
TEST_JOBS = $(if $(findstring -j,$(MAKEFLAGS)),,-j$(shell nproc 2>/dev/null || echo 1))
.PHONY: test-build
test-build: all $(TEST_BIN) $(TEST_FUZZ)
test:
	$(MAKE) $(TEST_JOBS) test-build
	BUILD=$(BUILD) FUZZ_BUILD=$(if $(TEST_FUZZ),$(FUZZ_BUILD)) tools/run-tests.sh $(TEST_BIN)

# PLplot's font and driver loaders keep some memory until exit on purpose: tests/lsan.supp.
test-asan:
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp $(MAKE) BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  TEST_FUZZ= test

deps:
	tools/install-deps.sh

# The data-parallel trainer under mpirun with 2 and 3 processes (tests/mpi.sh), built with MPI=1
# in its own folder.
MPI_BUILD ?= build-mpi
test-mpi:
	$(MAKE) $(TEST_JOBS) MPI=1 BUILD=$(MPI_BUILD) $(MPI_BUILD)/resnet
	sh tests/mpi.sh $(MPI_BUILD)

# ---- make install / uninstall: PREFIX (default /usr/local) and DESTDIR as usual -------------
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
# What a static link of libresnet.a needs beyond it: the packages with a .pc file, then the rest.
PC_REQUIRES ?= plplot libcjson libprotobuf-c libpng libjpeg zlib stb
PC_LIBS     ?= -lm -lpthread -fopenmp

$(BUILD)/resnet.pc: resnet.pc.in include/resnet.h Makefile
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@REQUIRES_PRIVATE@|$(PC_REQUIRES)|' \
	    -e 's|@LIBS_PRIVATE@|$(PC_LIBS)|' resnet.pc.in > $@

# The man page is the program's own --help, through help2man: one text, no second copy.
$(BUILD)/resnet.1: $(BUILD)/resnet
	help2man --no-info --version-string=$(VERSION) \
	  --name="plain, highway and residual networks: build, train, evaluate, run" $(BUILD)/resnet > $@

install: all $(BUILD)/resnet.pc $(BUILD)/resnet.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BUILD)/resnet $(DESTDIR)$(BINDIR)/resnet
	install -m 644 include/resnet.h $(DESTDIR)$(INCLUDEDIR)/resnet.h
	install -m 644 $(BUILD)/libresnet.a $(DESTDIR)$(LIBDIR)/libresnet.a
	install -m 755 $(BUILD)/libresnet.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libresnet.so.$(VERSION)
	ln -sf libresnet.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libresnet.so
	install -m 644 $(BUILD)/resnet.pc $(DESTDIR)$(LIBDIR)/pkgconfig/resnet.pc
	install -m 644 $(BUILD)/resnet.1 $(DESTDIR)$(MANDIR)/man1/resnet.1
	if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null; then ldconfig; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/resnet $(DESTDIR)$(INCLUDEDIR)/resnet.h $(DESTDIR)$(LIBDIR)/libresnet.a \
	  $(DESTDIR)$(LIBDIR)/libresnet.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libresnet.so \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/resnet.pc $(DESTDIR)$(MANDIR)/man1/resnet.1
	if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null; then ldconfig; fi

demo: all
	tools/demo.sh $(BUILD)

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:$(BUILD)/tests/%=$(BUILD)/obj/tests/%.d)

# ---- fuzzing: clang's libFuzzer, one harness per parser (fuzz/fuzz_*.c) -------------------
# `make fuzz` builds them into build-fuzz/ (library built with -fsanitize=fuzzer-no-link plus
# ASan and UBSan); `make fuzz-run` runs each for FUZZ_SECONDS on fuzz/corpus/NAME and fails on
# any crash, leak, timeout or sanitizer report (tools/fuzz.sh; docs/reliability.md).
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 20
FUZZ_SRC     := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
.PHONY: fuzz fuzz-run fuzz-bins
# The microkernels' builds (convb_row.h: every variant unrolled) keep ASan but not UBSan or the
# fuzzer's coverage: under all three clang took 210 s for the AVX-512 one alone, most of the
# fuzz build, and 23 s under ASan alone. They hold no parser; fuzz_model's forward runs them,
# and `make test-asan` runs them under both sanitizers on every shape the tests use.
fuzz:
	$(MAKE) $(TEST_JOBS) BUILD=$(FUZZ_BUILD) CC=clang OPT=-O1 \
	  SAN="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
	  ROW_SAN="-fsanitize=address -fno-sanitize-recover=all -fno-omit-frame-pointer" fuzz-bins
fuzz-bins: $(FUZZ_SRC:fuzz/%.c=$(BUILD)/%)
# The option harness calls the CLI's own parsers (src/cli/args.c), so it links that object too.
FUZZ_CLI := $(BUILD)/obj/src/cli/args.o $(BUILD)/obj/src/cli/options.o
$(BUILD)/fuzz_%: $(BUILD)/obj/fuzz/fuzz_%.o $(FUZZ_CLI) $(BUILD)/libresnet.a
	$(CC) -o $@ $< $(FUZZ_CLI) $(BUILD)/libresnet.a $(ALL_LDFLAGS) -fsanitize=fuzzer $(LDLIBS)
fuzz-run: fuzz
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) tools/fuzz.sh
-include $(FUZZ_SRC:fuzz/%.c=$(BUILD)/obj/fuzz/%.d)

# ---- ThreadSanitizer: two networks trained at once, each in its own thread ------------------
# `make test-tsan` builds tests/test_threads.c and the library with -fsanitize=thread into
# $(TSAN_BUILD) and runs it; any report fails it. libgomp is not built for TSan and its own
# synchronisation would be reported falsely, so each network runs one OpenMP thread (the
# program's threads are its own pthreads).
TSAN_BUILD ?= build-tsan
.PHONY: test-tsan
test-tsan:
	$(MAKE) $(TEST_JOBS) BUILD=$(TSAN_BUILD) OPT=-O1 \
	  SAN="-fsanitize=thread -fno-omit-frame-pointer" $(TSAN_BUILD)/tests/test_threads
	OMP_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1 exitcode=66 $(TSAN_OPTIONS)" \
	  $(TSAN_BUILD)/tests/test_threads

# ---- ONNX export: the schema's C code, generated by protoc-c from Debian's libonnx-dev ----------
# Never committed: generated into $(BUILD)/gen and compiled into the library with the same flags
# (its symbols stay hidden like the rest's).
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: $(dir $(ONNX_PROTO))%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -I$(dir $(ONNX_PROTO)) $(notdir $<)
$(BUILD)/obj/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@
# the first build has no dependency files yet: the writer needs the generated header first
$(BUILD)/obj/src/io/onnx_export.o: $(BUILD)/gen/onnx.pb-c.h

# ---- allocation failures: every allocation of a scenario made to fail, one at a time ----------
# tests/faults/oom.c is linked with the allocation functions wrapped (-Wl,--wrap), so that the
# Nth allocation of the library's objects fails (docs/reliability.md). `make test` runs it
# (tools/run-tests.sh); FULL=1 tries every N instead of a sample.
OOM_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=posix_memalign,--wrap=aligned_alloc
$(BUILD)/tests/faults/oom: $(BUILD)/obj/tests/faults/oom.o $(BUILD)/libresnet.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(BUILD)/libresnet.a $(ALL_LDFLAGS) $(OOM_WRAP) $(LDLIBS)
test-build: $(BUILD)/tests/faults/oom
-include $(BUILD)/obj/tests/faults/oom.d
