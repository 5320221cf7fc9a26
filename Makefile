# ao — one non-recursive Makefile.  See README.md and docs/.
#
#   make            build libaocommon.a and every binary into bin/
#   make test       install missing Debian packages, build, run unit + integration tests
#   make asan       the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make run        build and run the daemon set on the default data dir
#   make bench      benchmarks (ratios against baselines measured in the same run)
#   make fuzz       libFuzzer harnesses for FUZZ_SECONDS (default 60) each
#   make clean

VARIANT ?= release
O       := build/$(VARIANT)
ifeq ($(VARIANT),release)
BINDIR  := bin
else
BINDIR  := $(O)/bin
endif

CC      ?= cc
PKGS    := libevent msgpack sqlite3 jansson inih libsystemd nettle liburing
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

SAN_FLAGS :=
ifeq ($(VARIANT),asan)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. $(PKG_CFLAGS) $(SAN_FLAGS) -MMD -MP
LDFLAGS += $(SAN_FLAGS)
LDLIBS  := $(PKG_LIBS)

DAEMONS := storaged cdcd lcmd reaperd supervisor
BINS    := $(addprefix $(BINDIR)/ao-,$(DAEMONS)) $(BINDIR)/ao

LIB_SRCS := $(wildcard common/*.c proto/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(O)/%.o)
LIB      := $(O)/libaocommon.a

TESTLIB_SRCS := $(wildcard tests/lib/*.c)
UNIT_SRCS  := $(wildcard tests/unit/*.c) $(TESTLIB_SRCS)
# Unit tests link each daemon's modules, all but the file holding main.
DAEMON_MODS := $(foreach d,$(DAEMONS),$(filter-out $(O)/$(d)/$(d).o,$(patsubst %.c,$(O)/%.o,$(wildcard $(d)/*.c))))
INTEG_SRCS := $(wildcard tests/integ/*.c) $(TESTLIB_SRCS)
HELPERS    := $(patsubst tests/helpers/%.c,$(O)/tests/%,$(wildcard tests/helpers/*.c))
TEST_BINS  := $(O)/tests/unit-tests $(O)/tests/integ-tests $(HELPERS)
BENCH_BINS := $(patsubst bench/%.c,$(O)/bench/%,$(filter-out bench/benchlib.c,$(wildcard bench/*.c)))

all: $(BINS)

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(O)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

define daemon_rule
$(BINDIR)/ao-$(1): $(patsubst %.c,$(O)/%.o,$(wildcard $(1)/*.c)) $(LIB)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach d,$(DAEMONS),$(eval $(call daemon_rule,$(d))))

$(BINDIR)/ao: $(patsubst %.c,$(O)/%.o,$(wildcard cli/*.c)) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/tests/%.o: CFLAGS += $(CHECK_CFLAGS)
$(O)/tests/unit-tests: $(UNIT_SRCS:%.c=$(O)/%.o) $(DAEMON_MODS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)
$(O)/tests/integ-tests: $(INTEG_SRCS:%.c=$(O)/%.o) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)
$(O)/tests/%: $(O)/tests/helpers/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(O)/bench/%: $(O)/bench/%.o $(O)/bench/benchlib.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

build-tests: $(BINS) $(TEST_BINS)

# Tests find the binaries under test (and the scripts of the source tree)
# through the environment, so the asan variant runs the same suites against
# its own build.
TEST_ENV := AO_BIN_DIR=$(abspath $(BINDIR)) AO_TEST_DIR=$(abspath $(O)/tests) \
            AO_SRC_DIR=$(abspath .)

run-tests: build-tests
	$(TEST_ENV) $(O)/tests/unit-tests
	$(TEST_ENV) $(O)/tests/integ-tests

test: deps
	@$(MAKE) --no-print-directory run-tests

asan: deps
	@$(MAKE) --no-print-directory VARIANT=asan run-tests

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run.sh $(BINDIR) $(RUN_ARGS)

bench: deps deps-bench
	@$(MAKE) --no-print-directory $(BINS) $(BENCH_BINS) $(HELPERS)
	@bench/run.sh $(abspath $(O)/bench) $(abspath $(BINDIR))

# libFuzzer needs clang; the harnesses link the library sources directly.
FUZZ_SECONDS ?= 60
FUZZ_SRCS := $(wildcard tests/fuzz/*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -I. -g -O1 $(PKG_CFLAGS) \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

build/fuzz/%: tests/fuzz/%.c $(LIB_SRCS) $(wildcard common/*.h proto/*.h)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRCS) $(PKG_LIBS)

fuzz: deps-fuzz $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
		n=$$(basename $$f); mkdir -p build/fuzz/corpus-$$n; \
		echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		    build/fuzz/corpus-$$n tests/fuzz/seeds-$$n || exit 1; \
	done

# Debian packages.  Installed with apt-get when missing and running as root;
# otherwise the exact command is printed and the target fails.  python3-pynvim
# is the stock msgpack-rpc client the integration tests talk to ao with.
DEB_PKGS      := gcc make pkg-config libevent-dev libmsgpack-dev libsqlite3-dev check \
                 libjansson-dev libinih-dev libsystemd-dev libbsd-dev nettle-dev liburing-dev \
                 git tmux procps python3-pynvim
DEB_PKGS_FUZZ := clang libclang-rt-dev
# Peers measured beside ao in the same run.
DEB_PKGS_BENCH := redis-server redis-tools
define install_pkgs
	@missing=""; for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "deps: installing$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "deps: missing Debian packages; run:"; \
			echo "  sudo apt-get install -y$$missing"; exit 1; \
		fi; \
	fi
endef

deps:
	$(call install_pkgs,$(DEB_PKGS))
deps-fuzz:
	$(call install_pkgs,$(DEB_PKGS_FUZZ))
deps-bench:
	$(call install_pkgs,$(DEB_PKGS_BENCH))

clean:
	rm -rf build bin

.PHONY: all test asan run bench fuzz clean deps deps-fuzz deps-bench build-tests run-tests
.SECONDARY:
-include $(shell find build -name '*.d' 2>/dev/null)
