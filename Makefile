# kcard — one GNU make build. `make` builds everything, `make check` builds
# and runs every test, `make demo` shows the main job end to end.
# Sources are found by wildcard: adding a file to a folder adds it to the build.
#
# Each part of the tree is one small static library (the table under "the
# parts" below says what each holds and needs); each program, unit test, bench
# and interop program links only the libraries of the parts it uses, and each
# external package through its own `pkg-config --libs <name>`. Touching a file
# of one part relinks only the programs and tests that use that part.

BUILD    ?= build
CC       ?= cc
FUZZ_CC  ?= clang
# every external package of the tree (each part compiles and links with its own, below)
PKGS     := libcbor libcrypto hidapi-hidraw jansson libmicrohttpd gnutls libcurl sqlite3 libpcap zlib
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

# every package's compile flags: the fuzz targets and a file of no part use them
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
TEST_CFLAGS := $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS   := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

# the packages' flags are added per part (PART_CFLAGS, below)
CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 -I. $(OPT)

# Flags of one package, asked once each: $(PC_LIBS.jansson) is
# `pkg-config --libs jansson`, $(PC_CFLAGS.jansson) its --cflags.
# pthread and m are the C library's own, not packages.
$(foreach p,$(PKGS),$(eval PC_LIBS.$(p) := $(shell pkg-config --libs $(p) 2>/dev/null)))
$(foreach p,$(PKGS),$(eval PC_CFLAGS.$(p) := $(shell pkg-config --cflags $(p) 2>/dev/null)))
PC_LIBS.pthread := -lpthread
PC_LIBS.m       := -lm

# ---- the parts --------------------------------------------------------------
# A part is one static library $(BUILD)/lib<part>.a built from <part>_SRCS.
# <part>_USES names the parts it calls into, <part>_PKGS the packages it calls
# (read off its #include lines and checked by linking):
#
#   library             holds                                uses        packages
#   libkcutil           util/*.c but the two below           -           libcrypto
#   libkcutil_sqlite    util/sqlite_db.c                     kcutil      sqlite3
#   libkcutil_curl      util/curl_body.c                     kcutil      libcurl
#   libctaphid          ctaphid/*.c                          kcutil      libcbor libcrypto hidapi-hidraw
#                                                                        jansson libpcap zlib pthread
#   libkcsvc            services/common/*.c                  kcutil      libmicrohttpd gnutls jansson libcrypto
#                                                                        pthread
#   libvcard            harness/vcard/* but its two mains    ctaphid     libcbor libcrypto jansson pthread
#                                                            kcutil
#   libtriage           triage/* but rawctap.c, fido2_probe.c ctaphid    jansson libcrypto
#                                                            kcutil
#   libk_server         services/k_server/* but main         kcsvc       sqlite3 libcrypto pthread
#                                                            kcutil(_sqlite)
#   libk_proxy          services/k_proxy/* but main          kcsvc       libcurl sqlite3 jansson libcrypto
#                                                            ctaphid     pthread m
#                                                            kcutil(_sqlite,_curl)
#   libk_client_portal  services/k_client_portal/* but main  kcsvc       libcurl jansson libcrypto pthread
#                                                            kcutil(_curl)
#   libchain_regress    regression/*.c but main              kcutil(_curl) libcurl jansson libcrypto
#   libkc_forward       harness/chain/*.c but main           kcutil      jansson
#
# A program, test or bench links its part's library, the libraries of every
# part it uses (users first, for the static link) and the packages of all of
# them.

# libkcutil: the bottom layer of helpers every part may use (hex, base64url,
# random, error text, monotonic clock, capped buffer), every .c in util/ but
# the SQLite and libcurl ones, which are parts of their own so that a program
# without SQLite or libcurl names neither
KCUTIL_SQLITE_SRCS := util/sqlite_db.c
KCUTIL_CURL_SRCS   := util/curl_body.c
kcutil_SRCS := $(filter-out $(KCUTIL_SQLITE_SRCS) $(KCUTIL_CURL_SRCS),$(wildcard util/*.c))
kcutil_USES :=
kcutil_PKGS := libcrypto
# libkcutil_sqlite: open a state file, check it, apply the schema
kcutil_sqlite_SRCS := $(wildcard $(KCUTIL_SQLITE_SRCS))
kcutil_sqlite_USES := kcutil
kcutil_sqlite_PKGS := sqlite3
# libkcutil_curl: a transfer's answer into a capped buffer
kcutil_curl_SRCS := $(wildcard $(KCUTIL_CURL_SRCS))
kcutil_curl_USES := kcutil
kcutil_curl_PKGS := libcurl

# libctaphid: the CTAPHID/CTAP2 library, every .c in ctaphid/
ctaphid_SRCS := $(wildcard ctaphid/*.c)
ctaphid_USES := kcutil
ctaphid_PKGS := libcbor libcrypto hidapi-hidraw jansson libpcap zlib pthread

# libkcsvc: what the three services share (HTTP server, log, metrics, guard,
# crypto, upstream), every .c in services/common/
kcsvc_SRCS := $(wildcard services/common/*.c)
kcsvc_USES := kcutil
kcsvc_PKGS := libmicrohttpd gnutls jansson libcrypto pthread

# libvcard: the virtual card's core, every .c in harness/vcard/ but the two mains
VCARD_MAINS := harness/vcard/vcard_main.c harness/vcard/vcard_ctl.c
vcard_SRCS := $(filter-out $(VCARD_MAINS),$(wildcard harness/vcard/*.c))
vcard_USES := ctaphid kcutil
vcard_PKGS := libcbor libcrypto jansson pthread

# libtriage: rawctap's and fido2-probe's commands and output, every .c in triage/
# but the two files that hold main()
RAWCTAP_MAIN := triage/rawctap.c
PROBE_MAIN   := triage/fido2_probe.c
triage_SRCS := $(filter-out $(RAWCTAP_MAIN) $(PROBE_MAIN),$(wildcard triage/*.c))
triage_USES := ctaphid kcutil
triage_PKGS := jansson libcrypto

# one library per program family of the chain: the program's folder but its
# *_main.c (services/k_server/k_server_main.c -> build/bin/k_server with
# libk_server.a, regression/chain_regress_main.c -> chain-regress with
# libchain_regress.a, harness/chain/kc_forward_main.c -> kc-forward with
# libkc_forward.a)
SVC_MAINS := $(wildcard services/*/*_main.c regression/*_main.c harness/chain/*_main.c)
family_srcs = $(filter-out %_main.c,$(wildcard $(1)/*.c))

# libk_server: the counter service's store
k_server_SRCS := $(call family_srcs,services/k_server)
k_server_USES := kcsvc kcutil_sqlite kcutil
k_server_PKGS := sqlite3 libcrypto pthread

# libk_proxy: the card proxy (routes, card worker and auth, store, limits, upstream)
k_proxy_SRCS := $(call family_srcs,services/k_proxy)
k_proxy_USES := kcsvc ctaphid kcutil_sqlite kcutil_curl kcutil
k_proxy_PKGS := libcurl sqlite3 jansson libcrypto pthread m

# libk_client_portal: the portal's routes, sessions, cookies and proxy client
k_client_portal_SRCS := $(call family_srcs,services/k_client_portal)
k_client_portal_USES := kcsvc kcutil_curl kcutil
k_client_portal_PKGS := libcurl jansson libcrypto pthread

# libchain_regress: chain-regress's load run, parsing, analysis and report
chain_regress_SRCS := $(call family_srcs,regression)
chain_regress_USES := kcutil_curl kcutil
chain_regress_PKGS := libcurl jansson libcrypto

# libkc_forward: kc-forward's TCP relay and network-namespace helpers
kc_forward_SRCS := $(call family_srcs,harness/chain)
kc_forward_USES := kcutil
kc_forward_PKGS := jansson

PARTS := kcutil kcutil_sqlite kcutil_curl ctaphid kcsvc vcard triage k_server k_proxy k_client_portal chain_regress kc_forward

# the parts a list of parts needs, each after every part that uses it
part_tree = $(foreach p,$(1),$(p) $(call part_tree,$($(p)_USES)))
# a list with only the last copy of each word kept
keep_last = $(if $(1),$(if $(filter $(firstword $(1)),$(wordlist 2,$(words $(1)),$(1))),,$(firstword $(1))) \
            $(call keep_last,$(wordlist 2,$(words $(1)),$(1))))
part_order = $(strip $(call keep_last,$(call part_tree,$(1))))
# $(call part_libs,k_proxy): the archives to link, in link order
part_libs = $(foreach p,$(call part_order,$(1)),$(BUILD)/lib$(p).a)
# $(call part_ldlibs,k_proxy) and part_cflags: the packages' link and compile flags
part_pkgs   = $(sort $(foreach p,$(call part_order,$(1)),$($(p)_PKGS)))
part_ldlibs = $(strip $(foreach k,$(call part_pkgs,$(1)),$(PC_LIBS.$(k))))
part_cflags = $(strip $(call keep_last,$(foreach k,$(call part_pkgs,$(1)),$(PC_CFLAGS.$(k)))))

# the names the rest of the tree knows
LIB_SRCS  := $(ctaphid_SRCS)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB       := $(BUILD)/libctaphid.a
VCARD_SRCS := $(vcard_SRCS)
VCARD_OBJS := $(VCARD_SRCS:%.c=$(BUILD)/%.o)
VCARD_LIB  := $(BUILD)/libvcard.a
SVC_SRCS  := $(kcsvc_SRCS)
SVC_OBJS  := $(SVC_SRCS:%.c=$(BUILD)/%.o)
SVC_LIB   := $(BUILD)/libkcsvc.a
PART_LIBS := $(PARTS:%=$(BUILD)/lib%.a)

# programs: name -> sources
RAWCTAP_SRCS := $(wildcard $(RAWCTAP_MAIN))
PROBE_SRCS   := $(wildcard $(PROBE_MAIN))
PROGRAMS := $(BUILD)/bin/vcard $(BUILD)/bin/vcard-ctl
ifneq ($(RAWCTAP_SRCS),)
  PROGRAMS += $(BUILD)/bin/rawctap
endif
ifneq ($(PROBE_SRCS),)
  PROGRAMS += $(BUILD)/bin/fido2-probe
endif

# a *_main.c becomes a program named after it: k_server_main.c -> k_server,
# chain_regress_main.c -> chain-regress (services keep their k_ names)
main_part = $(patsubst %_main.c,%,$(notdir $(1)))
svc_prog = $(BUILD)/bin/$(if $(filter k_%,$(1)),$(1),$(subst _,-,$(1)))
SVC_PROGRAMS := $(foreach m,$(SVC_MAINS),$(call svc_prog,$(call main_part,$(m))))
PROGRAMS += $(SVC_PROGRAMS)

UNIT_SRCS  := $(wildcard tests/unit/*/test_*.c tests/unit/*/*/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:%.c=$(BUILD)/%)
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
BENCH_SRCS := $(wildcard bench/bench_*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
FLOOR_SRCS := $(wildcard bench/floor/floor_*.c)
FLOOR_BINS := $(FLOOR_SRCS:bench/floor/%.c=$(BUILD)/bench/%)
INTEROP_SRCS := $(wildcard tests/interop/*.c)
INTEROP_BINS := $(INTEROP_SRCS:tests/interop/%.c=$(BUILD)/interop/%)

.PHONY: all deps lib libs programs unit unit-san e2e check demo fuzz fuzz-build bench clean \
        format format-check interop vm-test install browser-test

all: lib programs

deps:
	@sh ci/install-deps.sh

lib: $(LIB)
libs: $(PART_LIBS)
programs: $(PROGRAMS)

# an object compiles with its part's package flags (PART_CFLAGS, set per
# object below; a file of no part gets every package's)
PART_CFLAGS = $(PKG_CFLAGS)
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PART_CFLAGS) -MMD -MP -c $< -o $@

define lib_rule
$$($(1)_SRCS:%.c=$$(BUILD)/%.o): PART_CFLAGS := $(call part_cflags,$(1))
$(BUILD)/lib$(1).a: $$($(1)_SRCS:%.c=$$(BUILD)/%.o)
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach p,$(PARTS),$(eval $(call lib_rule,$(p))))

# $(call prog_rule,program,objects,parts): a program from its main's objects
# and the libraries of the parts it uses
define prog_rule
$(2): PART_CFLAGS := $(call part_cflags,$(3))
$(1): $(2) $(call part_libs,$(3))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDSAN) -o $$@ $$^ $(call part_ldlibs,$(3))
endef
$(foreach m,$(SVC_MAINS),$(eval $(call prog_rule,$(call svc_prog,$(call main_part,$(m))),\
    $(BUILD)/$(m:%.c=%.o),$(call main_part,$(m)))))
$(eval $(call prog_rule,$(BUILD)/bin/vcard,$(BUILD)/harness/vcard/vcard_main.o,vcard))
$(eval $(call prog_rule,$(BUILD)/bin/vcard-ctl,$(BUILD)/harness/vcard/vcard_ctl.o,ctaphid))
$(eval $(call prog_rule,$(BUILD)/bin/rawctap,$(RAWCTAP_SRCS:%.c=$(BUILD)/%.o),triage))
$(eval $(call prog_rule,$(BUILD)/bin/fido2-probe,$(PROBE_SRCS:%.c=$(BUILD)/%.o),triage))

# unit tests: one cmocka program per tests/unit/<folder>/test_*.c, where
# <folder> is the source folder it tests (tests/unit/services/k_proxy tests
# services/k_proxy), linked with the parts it tests. UNIT_PARTS.<folder> maps a
# folder to its parts (the card and k_proxy tests drive the virtual card
# in-process); UNIT_PARTS.<folder>/<test> overrides it for one test; a folder
# not listed links every part but triage (tests/unit/triage links libtriage;
# the probe tests drive the virtual card in-process).
UNIT_PARTS.util                     := kcutil
UNIT_PARTS.util/test_sqlite_db      := kcutil_sqlite
UNIT_PARTS.util/test_capbuf         := kcutil_curl
UNIT_PARTS.ctaphid                  := vcard ctaphid
UNIT_PARTS.harness/vcard            := vcard
UNIT_PARTS.harness/chain            := kc_forward
UNIT_PARTS.triage                   := triage vcard ctaphid
UNIT_PARTS.services/common          := kcsvc
UNIT_PARTS.services/k_server        := k_server
UNIT_PARTS.services/k_proxy         := k_proxy vcard
UNIT_PARTS.services/k_proxy/test_upstream := k_proxy
UNIT_PARTS.services/k_client_portal := k_client_portal
UNIT_PARTS.regression               := chain_regress
ALL_PARTS_BUT_TRIAGE := $(filter-out triage,$(PARTS))
# $(call unit_parts,tests/unit/dir/test_x.c): the test's own entry, else its folder's
unit_key   = $(patsubst tests/unit/%.c,%,$(1))
unit_dir   = $(patsubst %/,%,$(dir $(call unit_key,$(1))))
unit_parts = $(or $(UNIT_PARTS.$(call unit_key,$(1))),$(UNIT_PARTS.$(call unit_dir,$(1))),$(ALL_PARTS_BUT_TRIAGE))

define unit_rule
$(BUILD)/$(1:%.c=%): $(1) $(call part_libs,$(2))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $(call part_cflags,$(2)) $$(TEST_CFLAGS) -MMD -MP -o $$@ $$< \
	    $(call part_libs,$(2)) $$(LDSAN) $$(TEST_LIBS) $(call part_ldlibs,$(2))
endef
$(foreach t,$(UNIT_SRCS),$(eval $(call unit_rule,$(t),$(call unit_parts,$(t)))))

# bench programs: BENCH_PARTS.<name> says what each measures; unlisted ones
# link every part but triage
BENCH_PARTS.bench_ctaphid   := ctaphid
BENCH_PARTS.bench_kpx_store := k_proxy
BENCH_PARTS.bench_vcard     := vcard
define bench_rule
$(BUILD)/bench/$(1): bench/$(1).c $(call part_libs,$(2))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $(call part_cflags,$(2)) -o $$@ $$< $(call part_libs,$(2)) $$(LDSAN) \
	    $(call part_ldlibs,$(2))
endef
$(foreach b,$(BENCH_SRCS:bench/%.c=%),\
    $(eval $(call bench_rule,$(b),$(or $(BENCH_PARTS.$(b)),$(ALL_PARTS_BUT_TRIAGE)))))

# the library floor of the chain bench (bench/floor/): libmicrohttpd and
# libcurl alone on the request path; of kcard's parts only util/'s strict
# numbers, for the shared command line (bench/floor/cli.c)
$(BUILD)/bench/floor_%: bench/floor/floor_%.c bench/floor/cli.c bench/floor/cli.h $(call part_libs,kcutil)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PC_CFLAGS.libmicrohttpd) $(PC_CFLAGS.libcurl) -o $@ $< bench/floor/cli.c \
	    $(call part_libs,kcutil) $(LDSAN) $(PC_LIBS.libmicrohttpd) $(PC_LIBS.libcurl) -lpthread

# interop programs: libfido2 talking to the virtual card; none of kcard's
# libraries, only libfido2 and libcrypto
INTEROP_CFLAGS := $(strip $(shell pkg-config --cflags libfido2 libcrypto 2>/dev/null))
INTEROP_LIBS   := $(strip $(shell pkg-config --libs libfido2 libcrypto 2>/dev/null))
$(BUILD)/interop/%: tests/interop/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INTEROP_CFLAGS) -o $@ $< $(LDSAN) $(INTEROP_LIBS)

# libFuzzer targets: clang; each part's library rebuilt with coverage +
# ASan/UBSan under build/fuzz/obj/, and each fuzzer linked with the parts it
# feeds (FUZZ_PARTS.<name>; an unlisted one links every part but triage).
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer-no-link,address,undefined $(PKG_CFLAGS)
FUZZ_SRCS_ALL := $(foreach p,$(PARTS),$($(p)_SRCS))
FUZZ_LIB_OBJS := $(FUZZ_SRCS_ALL:%.c=build/fuzz/obj/%.o)
FUZZ_PARTS_kcutil := fuzz_util_decode
FUZZ_PARTS_ctaphid := fuzz_assertion_decode fuzz_attestation_decode fuzz_attestation_verify \
    fuzz_authdata fuzz_cose fuzz_credman_reply fuzz_hid_desc fuzz_info fuzz_largeblob_array \
    fuzz_largeblob_inflate fuzz_pcap_import fuzz_pin_response fuzz_reassembly \
    fuzz_replay_match fuzz_sysfs_uevent fuzz_trace_replay fuzz_u2f_response
FUZZ_PARTS_vcard := fuzz_uhid_event fuzz_vcard_config fuzz_vcard_control fuzz_vcard_credman \
    fuzz_vcard_ctap1 fuzz_vcard_ctap2 fuzz_vcard_hid fuzz_vcard_script fuzz_vcard_state
FUZZ_PARTS_kcsvc := fuzz_flat fuzz_guard fuzz_upstream_auth
FUZZ_PARTS_k_proxy := fuzz_kpx_store fuzz_service_body fuzz_upstream_reply
FUZZ_PARTS_k_client_portal := fuzz_portal_request
FUZZ_PARTS_chain_regress := fuzz_chain_response fuzz_kcr_analyze_input
FUZZ_PARTS_triage := fuzz_rawctap_credfile fuzz_rawctap_doctor
$(foreach p,$(PARTS),$(foreach f,$(FUZZ_PARTS_$(p)),$(eval FUZZ_PARTS.$(f) := $(p))))
fuzz_part_libs = $(foreach p,$(call part_order,$(1)),build/fuzz/obj/lib$(p).a)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
define fuzz_lib_rule
build/fuzz/obj/lib$(1).a: $$($(1)_SRCS:%.c=build/fuzz/obj/%.o)
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach p,$(PARTS),$(eval $(call fuzz_lib_rule,$(p))))
define fuzz_rule
build/fuzz/$(1): tests/fuzz/$(1).c $(call fuzz_part_libs,$(2))
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -o $$@ $$< $(call fuzz_part_libs,$(2)) \
	    $(call part_ldlibs,$(2))
endef
$(foreach f,$(FUZZ_SRCS:tests/fuzz/%.c=%),\
    $(eval $(call fuzz_rule,$(f),$(or $(FUZZ_PARTS.$(f)),$(ALL_PARTS_BUT_TRIAGE)))))

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

e2e: all interop $(FLOOR_BINS)
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
	@$(MAKE) --no-print-directory all $(BENCH_BINS) $(FLOOR_BINS)
	@sh bench/run.sh $(BUILD)

# ---- libctaphid for other programs ------------------------------------------
# The public face: one umbrella header, <kcard/ctaphid.h>, and the ctaphid
# headers it includes, directly or through another (LIBCTAPHID_HEADERS: the
# public ones, installed under include/kcard/ctaphid/; every other header is
# private). The version is read from the umbrella's KC_VERSION_* lines.
LIBCTAPHID_UMBRELLA := ctaphid/include/kcard/ctaphid.h
LIBCTAPHID_HEADERS  := $(addprefix ctaphid/,status.h io.h discover.h ctap2.h pin.h credman.h \
    config.h largeblob.h authdata.h trace.h clock.h transport.h sysfs.h)
kc_version_part = $(shell sed -n 's/^.define KC_VERSION_$(1) \([0-9]*\)$$/\1/p' $(LIBCTAPHID_UMBRELLA))
KC_VERSION_MAJOR := $(call kc_version_part,MAJOR)
KC_VERSION_MINOR := $(call kc_version_part,MINOR)
KC_VERSION_PATCH := $(call kc_version_part,PATCH)
LIBCTAPHID_VERSION := $(KC_VERSION_MAJOR).$(KC_VERSION_MINOR).$(KC_VERSION_PATCH)
LIBCTAPHID_SONAME  := libctaphid.so.$(KC_VERSION_MAJOR)
LIBCTAPHID_SO      := $(BUILD)/$(LIBCTAPHID_SONAME)
# The shared library exports exactly the functions listed in the version
# script, which `make libctaphid-map` writes from the umbrella's declarations
# (gcc -aux-info) minus the private ones below (test hooks, sysfs scanning);
# an explicit list, not kc_* patterns, because internal cross-file helpers
# share the kc_ prefix. libctaphid-map-check fails when map and umbrella differ.
LIBCTAPHID_MAP := ctaphid/libctaphid.map
LIBCTAPHID_PRIVATE_RE := ^kc_(mem_|reassembly_|frag_|enum_|hid_uevent_parse$$|card_id_of_hidraw$$)
# libctaphid carries the util/ helpers it calls (libkcutil's objects), so the
# installed libraries stand alone; the version script keeps their kcu_
# symbols local in the shared one
LIBCTAPHID_ALL_SRCS := $(ctaphid_SRCS) $(kcutil_SRCS)
PIC_OBJS := $(LIBCTAPHID_ALL_SRCS:%.c=$(BUILD)/pic/%.o)
# the installed static archive: libctaphid.a and libkcutil.a in one
LIBCTAPHID_DIST_A := $(BUILD)/dist/libctaphid.a

.PHONY: libctaphid-shared libctaphid-map libctaphid-map-check
libctaphid-shared: $(LIBCTAPHID_SO)

$(LIBCTAPHID_DIST_A): $(LIBCTAPHID_ALL_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@.$$$$.tmp && ar rcs $@.$$$$.tmp $^ && mv -f $@.$$$$.tmp $@

# position-independent objects of libctaphid, for the shared library only.
# Written under a temporary name and renamed: two `make install` runs at once
# (the e2e tests run in parallel) never see a half-written object or library.
$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC $(call part_cflags,ctaphid) -MMD -MP -MF $(@:.o=.d) -MT $@ -c $< \
	    -o $@.$$$$.tmp && mv -f $@.$$$$.tmp $@

$(LIBCTAPHID_SO): $(PIC_OBJS) $(LIBCTAPHID_MAP)
	$(CC) $(LDSAN) -shared -Wl,-soname,$(LIBCTAPHID_SONAME) -Wl,--version-script=$(LIBCTAPHID_MAP) \
	    -Wl,--no-undefined -o $@.$$$$.tmp $(PIC_OBJS) $(call part_ldlibs,ctaphid) && mv -f $@.$$$$.tmp $@
	ln -sf $(LIBCTAPHID_SONAME) $(BUILD)/libctaphid.so

# the kc_ functions the umbrella declares, one a line, but the private ones
libctaphid_exports = printf '\043include "%s"\n' $(LIBCTAPHID_UMBRELLA) | \
    $(CC) -std=c11 -D_GNU_SOURCE -I. $(call part_cflags,ctaphid) -x c -fsyntax-only \
    -aux-info $(1).aux - && \
    sed -n 's|^/\* \(\./\)\{0,1\}ctaphid/[a-z0-9_]*\.h:.*[ *]\(kc_[a-z0-9_]*\) (.*|\2|p' $(1).aux | \
    LC_ALL=C sort -u | grep -Ev '$(LIBCTAPHID_PRIVATE_RE)'
define libctaphid_map_text
{ echo '/* libctaphid.so export list, written by `make libctaphid-map`: the kc_'; \
  echo '   functions <kcard/ctaphid.h> declares but the private ones. */'; \
  echo 'KCARD_CTAPHID_$(KC_VERSION_MAJOR) {'; echo '  global:'; \
  $(call libctaphid_exports,$(1)) | sed 's/.*/    &;/'; \
  echo '  local:'; echo '    *;'; echo '};'; rm -f $(1).aux; }
endef
libctaphid-map:
	@mkdir -p $(BUILD)
	$(call libctaphid_map_text,$(BUILD)/libctaphid-map) > $(BUILD)/libctaphid.map.new
	mv $(BUILD)/libctaphid.map.new $(LIBCTAPHID_MAP)
libctaphid-map-check:
	@mkdir -p $(BUILD)
	@$(call libctaphid_map_text,$(BUILD)/libctaphid-map) > $(BUILD)/libctaphid.map.new
	@diff -u $(LIBCTAPHID_MAP) $(BUILD)/libctaphid.map.new && rm -f $(BUILD)/libctaphid.map.new && \
	    echo "$(LIBCTAPHID_MAP) matches $(LIBCTAPHID_UMBRELLA)"

# examples/ built in the tree against libctaphid.a (the e2e test
# test_libctaphid_install.sh builds them against the installed tree instead)
EXAMPLE_BINS := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
.PHONY: examples
examples: $(EXAMPLE_BINS)
$(BUILD)/examples/%: examples/%.c $(call part_libs,ctaphid) $(LIBCTAPHID_UMBRELLA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ictaphid/include $(call part_cflags,ctaphid) -o $@ $< \
	    $(call part_libs,ctaphid) $(LDSAN) $(call part_ldlibs,ctaphid)

# Installs the programs, the regression wrapper and the man pages under PREFIX,
# and libctaphid: static and shared library, public headers (their
# "ctaphid/x.h" includes rewritten to "kcard/ctaphid/x.h"), libctaphid.pc.
PREFIX ?= /usr/local
LIBCTAPHID_PC_REQUIRES := $(filter-out pthread m,$(call part_pkgs,ctaphid))
LIBCTAPHID_PC_LIBS     := $(foreach k,$(filter pthread m,$(call part_pkgs,ctaphid)),$(PC_LIBS.$(k)))
install: all $(LIBCTAPHID_SO) $(LIBCTAPHID_DIST_A)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 regression/phase5_chain_regression.sh $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 docs/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -d $(DESTDIR)$(PREFIX)/share/man/man3 $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/include/kcard/ctaphid
	install -m 0644 docs/man/*.3 $(DESTDIR)$(PREFIX)/share/man/man3/
	install -m 0644 $(LIBCTAPHID_DIST_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(LIBCTAPHID_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(LIBCTAPHID_SONAME) $(DESTDIR)$(PREFIX)/lib/libctaphid.so
	for h in $(LIBCTAPHID_UMBRELLA:ctaphid/include/%=%) $(LIBCTAPHID_HEADERS:%=kcard/%); do \
	    src=$$(echo "$$h" | sed 's|^kcard/ctaphid.h$$|$(LIBCTAPHID_UMBRELLA)|; s|^kcard/ctaphid/|ctaphid/|'); \
	    sed 's|^\(.include "\)ctaphid/|\1kcard/ctaphid/|' "$$src" > $(DESTDIR)$(PREFIX)/include/$$h && \
	    chmod 0644 $(DESTDIR)$(PREFIX)/include/$$h || exit 1; done
	{ echo 'prefix=$(PREFIX)'; echo 'libdir=$${prefix}/lib'; echo 'includedir=$${prefix}/include'; \
	  echo; echo 'Name: libctaphid'; \
	  echo 'Description: kcard CTAPHID/CTAP2 library for FIDO2 security cards'; \
	  echo 'Version: $(LIBCTAPHID_VERSION)'; echo 'Requires.private: $(LIBCTAPHID_PC_REQUIRES)'; \
	  echo 'Cflags: -I$${includedir}'; echo 'Libs: -L$${libdir} -lctaphid'; \
	  echo 'Libs.private: $(LIBCTAPHID_PC_LIBS)'; } > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libctaphid.pc
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

-include $(shell find $(BUILD) build/fuzz -name '*.d' 2>/dev/null)
