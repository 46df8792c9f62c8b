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
ALL_CFLAGS = $(CFLAGS) $(SAN) -std=c11 -Wall -Wextra -Wshadow -fPIC -fopenmp -Iinclude -Isrc $(PLPLOT_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SAN)
LDLIBS  += $(PLPLOT_LIBS) -lcjson -lstb -lz -lm -lpthread -fopenmp
TEST_LDLIBS = -lcmocka

LIB_SRC  := $(sort $(wildcard src/core/*.c src/kernels/*.c src/io/*.c src/nn/*.c src/train/*.c \
                              src/plot/*.c src/experiments/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_SUPPORT_SRC := $(sort $(wildcard tests/support/*.c))
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)

.PHONY: all test test-asan demo deps clean
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
# -Wno-psabi: the portable build of the Winograd transforms passes 8-float vectors between
# static functions, and GCC notes that their ABI changed in GCC 4.6; no call crosses a file.
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
	$(CC) $(ALL_CFLAGS) -O3 -c $< -o $@

$(BUILD)/libresnet.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libresnet.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(ALL_LDFLAGS) $(LDLIBS)

$(BUILD)/resnet: $(CLI_OBJ) $(BUILD)/libresnet.a
	$(CC) -o $@ $(CLI_OBJ) $(BUILD)/libresnet.a $(ALL_LDFLAGS) $(LDLIBS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(BUILD)/libresnet.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(BUILD)/libresnet.a $(ALL_LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT_OBJ) $(BUILD)/libresnet.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(TEST_SUPPORT_OBJ) $(BUILD)/libresnet.a $(ALL_LDFLAGS) $(LDLIBS) $(TEST_LDLIBS)

# The test runner regenerates the PyTorch reference states, then runs every test binary.
test: all $(TEST_BIN)
	BUILD=$(BUILD) tools/run-tests.sh $(TEST_BIN)

# PLplot's font and driver loaders keep some memory until exit on purpose: tests/lsan.supp.
test-asan:
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp $(MAKE) BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

deps:
	tools/install-deps.sh

demo: all
	tools/demo.sh $(BUILD)

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:$(BUILD)/tests/%=$(BUILD)/obj/tests/%.d)
