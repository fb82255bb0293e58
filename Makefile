# kcard — one GNU make build. `make` builds everything, `make check` builds
# and runs every test, `make demo` shows the main job end to end.
# Sources are found by wildcard: adding a file to a folder adds it to the build.

BUILD    ?= build
CC       ?= cc
FUZZ_CC  ?= clang
PKGS     := libcbor libcrypto hidapi-hidraw jansson libmicrohttpd libcurl sqlite3 libpcap zlib
TEST_PKGS := cmocka

SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ifeq ($(SANITIZE),1)
  BUILD   := build/san
  OPT     := -O1 -g $(SAN_FLAGS)
  LDSAN   := $(SAN_FLAGS)
else
  OPT     := -O2 -g
  LDSAN   :=
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS := $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS   := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 -I. $(OPT) $(PKG_CFLAGS)
LDLIBS  := $(PKG_LIBS) -lpthread

# libctaphid: every .c in ctaphid/
LIB_SRCS := $(wildcard ctaphid/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libctaphid.a

# the virtual card's core: every .c in harness/vcard/ but the two mains
VCARD_MAINS := harness/vcard/vcard_main.c harness/vcard/vcard_ctl.c
VCARD_SRCS  := $(filter-out $(VCARD_MAINS),$(wildcard harness/vcard/*.c))
VCARD_OBJS  := $(VCARD_SRCS:%.c=$(BUILD)/%.o)
VCARD_LIB   := $(BUILD)/libvcard.a

# the chain's shared and per-service code (services/, regression/, harness/chain/):
# every .c but the *_main.c files, which are the programs below
SVC_MAINS := $(wildcard services/*/*_main.c regression/*_main.c harness/chain/*_main.c)
SVC_SRCS  := $(filter-out $(SVC_MAINS),$(wildcard services/*/*.c regression/*.c harness/chain/*.c))
SVC_OBJS  := $(SVC_SRCS:%.c=$(BUILD)/%.o)
SVC_LIB   := $(BUILD)/libkcsvc.a

# programs: name -> sources
RAWCTAP_SRCS := $(wildcard probe/rawctap*.c)
PROBE_SRCS   := $(wildcard probe/fido2_probe*.c)
PROGRAMS := $(BUILD)/bin/vcard $(BUILD)/bin/vcard-ctl
ifneq ($(RAWCTAP_SRCS),)
  PROGRAMS += $(BUILD)/bin/rawctap
endif
ifneq ($(PROBE_SRCS),)
  PROGRAMS += $(BUILD)/bin/fido2-probe
endif

# a *_main.c becomes a program named after it: k_server_main.c -> k_server,
# chain_regress_main.c -> chain-regress (services keep their k_ names)
svc_prog = $(BUILD)/bin/$(if $(filter k_%,$(1)),$(1),$(subst _,-,$(1)))
SVC_PROGRAMS := $(foreach m,$(SVC_MAINS),$(call svc_prog,$(patsubst %_main.c,%,$(notdir $(m)))))
PROGRAMS += $(SVC_PROGRAMS)

UNIT_SRCS  := $(wildcard tests/unit/*/test_*.c tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:%.c=$(BUILD)/%)
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
BENCH_SRCS := $(wildcard bench/bench_*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
INTEROP_SRCS := $(wildcard tests/interop/*.c)
INTEROP_BINS := $(INTEROP_SRCS:tests/interop/%.c=$(BUILD)/interop/%)

.PHONY: all deps lib programs unit unit-san e2e check demo fuzz fuzz-build bench clean format \
        format-check interop vm-test install browser-test

all: lib programs

deps:
	@sh ci/install-deps.sh

lib: $(LIB)
programs: $(PROGRAMS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(VCARD_LIB): $(VCARD_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SVC_LIB): $(SVC_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

define svc_rule
$(call svc_prog,$(patsubst %_main.c,%,$(notdir $(1)))): $(BUILD)/$(1:%.c=%.o) $(SVC_LIB) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDSAN) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach m,$(SVC_MAINS),$(eval $(call svc_rule,$(m))))

$(BUILD)/bin/vcard: $(BUILD)/harness/vcard/vcard_main.o $(VCARD_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/vcard-ctl: $(BUILD)/harness/vcard/vcard_ctl.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/rawctap: $(RAWCTAP_SRCS:%.c=$(BUILD)/%.o) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/fido2-probe: $(PROBE_SRCS:%.c=$(BUILD)/%.o) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

# unit tests: one cmocka program per test_*.c, linked with both libraries
$(BUILD)/tests/unit/%: tests/unit/%.c $(SVC_LIB) $(VCARD_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) -MMD -MP -o $@ $< $(SVC_LIB) $(VCARD_LIB) $(LIB) $(LDSAN) $(TEST_LIBS) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(SVC_LIB) $(VCARD_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(SVC_LIB) $(VCARD_LIB) $(LIB) $(LDSAN) $(LDLIBS)

$(BUILD)/interop/%: tests/interop/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags libfido2) -o $@ $< $(LIB) $(LDSAN) \
	    $(shell pkg-config --libs libfido2) $(LDLIBS)

# libFuzzer targets: clang, both libraries rebuilt with coverage + ASan/UBSan
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer-no-link,address,undefined $(PKG_CFLAGS)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=build/fuzz/obj/%.o) $(VCARD_SRCS:%.c=build/fuzz/obj/%.o) \
                 $(SVC_SRCS:%.c=build/fuzz/obj/%.o)
build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@
build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJS) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# Each fuzzer for a bounded time (FUZZ_SECONDS, default 30), seeded from its corpus.
FUZZ_SECONDS ?= 30
fuzz: fuzz-build
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

unit: $(UNIT_BINS)
	@sh tests/run-unit.sh $(UNIT_BINS)

unit-san:
	@$(MAKE) --no-print-directory SANITIZE=1 unit

interop: $(INTEROP_BINS)

e2e: all interop
	@sh tests/e2e/run.sh $(BUILD)

# The real kernel hidraw path, in a small qemu VM (harness/vm/README.md).
vm-test: all
	@sh harness/vm/run.sh

# The README's test command: install what is missing, build, run every test.
check: deps
	@$(MAKE) --no-print-directory all
	@sh ci/check.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@sh ci/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BINS)
	@sh bench/run.sh $(BUILD)

# Installs the programs, the regression wrapper and the man pages under PREFIX.
PREFIX ?= /usr/local
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 regression/phase5_chain_regression.sh $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 docs/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	if [ -d services/k_client_portal/static ]; then \
	    install -d $(DESTDIR)$(PREFIX)/share/kcard/portal && \
	    cp -R services/k_client_portal/static/. $(DESTDIR)$(PREFIX)/share/kcard/portal/; fi

# The browser regression of the portal (Playwright with the system Chromium).
browser-test: all
	@sh harness/browser/run.sh

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

format-check:
	@sh ci/format-check.sh

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
