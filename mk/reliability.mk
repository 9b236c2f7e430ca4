# Reliability: I/O fault injection, crash (SIGKILL) testing, concurrency,
# a daemon soak, fuzzing and valgrind. See RELIABILITY.md.
#   make test         quick versions of the fault sweep, crash test, concurrency
#                     test and soak, and a replay of every committed fuzz seed
#   make reliability  the full versions of the four programs
#   make fuzz         every libFuzzer target for FUZZ_SECONDS (default 30) each
#   make valgrind     every cmocka test, reliability program and replay under valgrind
REL := $(BUILD)/reliability
REL_PROGRAMS := $(REL)/fault_sweep $(REL)/crash_test $(REL)/concurrency $(REL)/soak $(REL)/memory \
                $(REL)/confine
REL_HELPERS := tests/reliability/rel.c tests/reliability/rel.h tests/procfd.c tests/procfd.h

# The shim is never built with sanitizers: it only forwards calls.
$(REL)/faultshim.so: tests/reliability/faultshim.c
	@mkdir -p $(@D)
	$(CC) $(WARN) -O2 -g -fPIC -shared -o $@ $< -ldl

$(REL)/%: tests/reliability/%.c $(REL_HELPERS) $(BUILD)/libmigrate.a $(REL)/faultshim.so
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE -Iinclude -Itests/reliability -Itests \
	    $(DEP_CFLAGS) -o $@ $< tests/reliability/rel.c tests/procfd.c $(BUILD)/libmigrate.a $(DEP_LIBS) -ldl -lm -pthread

TEST_PROGRAMS += $(REL)/fault_sweep $(REL)/crash_test $(REL)/concurrency $(REL)/soak $(REL)/memory \
                 $(REL)/confine

# The power-loss simulator records through fsrec.so (never sanitized: it
# only forwards calls) and links the test build of the library, whose
# MIGRATE_TEST_SKIP_FSYNC switch it uses to prove each fsync is needed.
$(REL)/fsrec.so: tests/reliability/fsrec.c
	@mkdir -p $(@D)
	$(CC) $(WARN) -Wno-missing-prototypes -O2 -g -fPIC -shared -o $@ $< -ldl
$(REL)/powerloss: tests/reliability/powerloss.c $(REL_HELPERS) $(BUILD)/libmigrate-test.a $(REL)/fsrec.so
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE -Iinclude -Itests/reliability -Itests \
	    $(DEP_CFLAGS) -o $@ $< tests/reliability/rel.c tests/procfd.c $(BUILD)/libmigrate-test.a $(DEP_LIBS) -ldl -lm
REL_PROGRAMS += $(REL)/powerloss
TEST_PROGRAMS += $(REL)/powerloss

.PHONY: reliability
reliability: $(REL_PROGRAMS)
	@REL_FULL=1 sh tests/run.sh $(REL_PROGRAMS)

# ---- fuzzing (libFuzzer) ----------------------------------------------------
# The library is rebuilt with clang, ASan, UBSan and fuzzer coverage into
# build/fuzz by a recursive make (its own BUILD, so these rules stay out).
FUZZ_BUILD := build/fuzz
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := version state names json sandbox edit dotenv pattern yaml yaml_edit
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
# What the targets include besides the library (header-only, one translation unit each).
FUZZ_HEADERS := tests/fuzz/fuzz_lua.h tests/fuzz/fuzz_tmp.h tests/lua_formats.h
FUZZ_FLAGS := -std=c11 -Wall -Wextra -Werror -Wno-missing-prototypes -O1 -g \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
              -fno-omit-frame-pointer -D_GNU_SOURCE -Iinclude -Isrc
# The sandbox target checks every file-system call the library makes.
FUZZ_WRAP_sandbox := -Wl,--wrap=open,--wrap=openat,--wrap=rename,--wrap=mkdir,--wrap=unlink \
                     -Wl,--wrap=unlinkat,--wrap=rmdir,--wrap=symlink,--wrap=chmod,--wrap=opendir

ifneq ($(BUILD),$(FUZZ_BUILD))
$(FUZZ_BUILD)/libmigrate.a: $(SRC) $(LUA_SRC) $(wildcard src/*.h) include/migrate.h tools/embed.c
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) SAN=1 CFLAGS='-O1 -g -fsanitize=fuzzer-no-link' $@

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HEADERS) $(FUZZ_BUILD)/libmigrate.a
	$(FUZZ_CC) $(FUZZ_FLAGS) $(DEP_CFLAGS) -o $@ $< $(FUZZ_BUILD)/libmigrate.a \
	    $(FUZZ_WRAP_$*) $(DEP_LIBS) -lm

.PHONY: fuzz
fuzz: $(FUZZ_BINS)
	@sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)
endif

# Every committed seed and crash reproducer, replayed without libFuzzer by
# the regular compiler (and its sanitizers with SAN=1): regression tests.
REPLAYS := $(FUZZ_TARGETS:%=$(REL)/replay_%)
$(REL)/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FUZZ_HEADERS) $(BUILD)/libmigrate.a
	@mkdir -p $(@D)
	$(CC) $(WARN) -Wno-missing-prototypes $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE -Iinclude -Isrc \
	    $(DEP_CFLAGS) -DREPLAY_CORPUS='"tests/fuzz/$*"' -o $@ $< tests/fuzz/replay.c \
	    $(BUILD)/libmigrate.a $(FUZZ_WRAP_$*) $(DEP_LIBS) -lm
TEST_PROGRAMS += $(REPLAYS)

# ---- valgrind ---------------------------------------------------------------
.PHONY: valgrind
valgrind: $(TESTS) $(REL_PROGRAMS) $(REPLAYS) $(REL)/faultshim.so
	@sh tests/reliability/valgrind.sh $(REL)/faultshim.so $(TESTS) $(REL_PROGRAMS) $(REPLAYS)

# test_fs again with every lookup through fs.c's O_NOFOLLOW walk, as on a
# kernel without openat2 (the test build's MIGRATE_TEST_NO_OPENAT2 switch).
# A generated wrapper, like dotenv-suite, so each build runs its own test_fs.
$(BUILD)/tests/test_fs-walk: $(BUILD)/tests/test_fs
	@mkdir -p $(@D)
	printf '#!/bin/sh\nMIGRATE_TEST_NO_OPENAT2=1 exec "%s/$(BUILD)/tests/test_fs" "$$@"\n' \
	    "$(CURDIR)" > $@
	chmod +x $@
TEST_PROGRAMS += $(BUILD)/tests/test_fs-walk
