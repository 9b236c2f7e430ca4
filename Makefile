# libmigrate - see README.md. `make`, `make test`, `make demo` bring in
# missing dependencies themselves (vendor/bootstrap.sh).

BUILD ?= build
CC ?= cc
CFLAGS ?= -O2 -g
# Extra flags for sanitizer or coverage builds: make test BUILD=build/asan SAN=1
SAN ?=
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
endif
# ThreadSanitizer (make tsan, mk/tsan.mk): a build of its own, BUILD=build/tsan.
ifeq ($(SAN),thread)
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
endif

VERSION_PART = $(shell sed -n 's/^\#define MIGRATE_VERSION_$(1) \([0-9]*\)$$/\1/p' include/migrate.h)
MAJOR := $(call VERSION_PART,MAJOR)
MINOR := $(call VERSION_PART,MINOR)
PATCH := $(call VERSION_PART,PATCH)
VERSION := $(MAJOR).$(MINOR).$(PATCH)

# Lua 5.4 and cJSON flags come from pkg-config, through a fragment that the
# bootstrap writes (make re-reads the Makefile once it exists).
ifeq ($(filter clean,$(MAKECMDGOALS)),)
include build/deps.mk
endif
build/deps.mk: vendor/deps.txt vendor/bootstrap.sh
	@sh vendor/bootstrap.sh lib --flags $@

WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wvla
ALL_CFLAGS = $(WARN) $(CFLAGS) $(SANFLAGS) -fPIC -fvisibility=hidden \
             -D_GNU_SOURCE -Iinclude -Isrc $(DEP_CFLAGS)
# Every object records the headers it included (obj.d beside obj.o; -MP adds
# an empty rule per header so a removed one does not break the build).
DEPFLAGS = -MMD -MP

SRC := $(sort $(wildcard src/*.c))
LUA_SRC := $(sort $(wildcard lua/*.lua))
OBJ := $(SRC:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/embedded.o
# The test build of the library: same sources with the test seams compiled in.
TOBJ := $(SRC:src/%.c=$(BUILD)/tobj/%.o) $(BUILD)/tobj/embedded.o

.PHONY: all test demo clean
.DEFAULT_GOAL := all
# A recipe that fails takes its half-made target with it, so the next make
# rebuilds it instead of trusting it.
.DELETE_ON_ERROR:
all: $(BUILD)/libmigrate.a $(BUILD)/libmigrate.so $(BUILD)/migrate-demo

$(BUILD)/embed: tools/embed.c
	@mkdir -p $(@D)
	$(CC) -O1 -o $@ $<
$(BUILD)/gen/embedded.c: $(BUILD)/embed $(LUA_SRC)
	@mkdir -p $(@D)
	$(BUILD)/embed $@ $(LUA_SRC)

$(BUILD)/obj/%.o: src/%.c build/deps.mk
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<
$(BUILD)/obj/embedded.o: $(BUILD)/gen/embedded.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<
$(BUILD)/tobj/%.o: src/%.c build/deps.mk
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -DMIGRATE_TEST_SEAMS -O0 -c -o $@ $<
$(BUILD)/tobj/embedded.o: $(BUILD)/gen/embedded.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/libmigrate.a: $(OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/libmigrate-test.a: $(TOBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/libmigrate.so: $(OBJ) src/exports.map
	$(CC) $(CFLAGS) $(SANFLAGS) -shared -Wl,-soname,libmigrate.so.$(MAJOR) \
	    -Wl,--version-script=src/exports.map -Wl,--no-undefined \
	    -o $@ $(OBJ) $(DEP_LIBS)

# Hosts built on the library: the demo driver.
$(BUILD)/migrate-demo: tools/demo.c $(BUILD)/libmigrate.a
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE -Iinclude -o $@ $< \
	    $(BUILD)/libmigrate.a $(DEP_LIBS) -lm

# ---- tests ----------------------------------------------------------------
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TESTS := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_HELPERS := tests/testutil.c tests/procfd.c

$(BUILD)/.cmocka: vendor/deps.txt
	@sh vendor/bootstrap.sh test
	@mkdir -p $(@D) && touch $@

# A test is compiled and linked in one command from several sources, which -MMD
# cannot give one .d each; it is rebuilt whenever the library archive is, and
# that follows every header the library includes.
$(BUILD)/tests/%: tests/%.c $(TEST_HELPERS) tests/testutil.h tests/procfd.h tests/lua_formats.h $(BUILD)/libmigrate-test.a $(BUILD)/.cmocka
	@mkdir -p $(@D)
	$(CC) $(WARN) -Wno-missing-prototypes $(CFLAGS) -O0 $(SANFLAGS) -D_GNU_SOURCE \
	    -Iinclude -Isrc -Itests $(DEP_CFLAGS) -o $@ $< $(TEST_HELPERS) \
	    $(BUILD)/libmigrate-test.a $(DEP_LIBS) -lcmocka -lm

# Other suites (fixtures, packaging, ...) add executables here from their
# mk/*.mk fragment; each ends its output with "N passed, N failed".
TEST_PROGRAMS :=

test: $(TESTS) all test-programs
	@sh tests/run.sh $(TESTS) $(TEST_PROGRAMS)

demo: all
	@sh tools/demo.sh $(BUILD)

clean:
	rm -rf build

# The header dependencies the compiler recorded (none before a first build).
-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/tobj/*.d)

# One fragment per concern: install.mk, lint.mk, bench.mk, fixture.mk, ...
include $(sort $(wildcard mk/*.mk))
test-programs: $(TEST_PROGRAMS)
.PHONY: test-programs
