# Reliability: I/O fault injection, crash (SIGKILL) testing, concurrency,
# a daemon soak, fuzzing and valgrind. See RELIABILITY.md.
#   make test         quick versions of the fault sweep, crash and concurrency tests
#   make reliability  the full versions and the soak
#   make fuzz         every libFuzzer target for FUZZ_SECONDS (default 30) each
#   make valgrind     every cmocka test and reliability program under valgrind
REL := $(BUILD)/reliability
REL_PROGRAMS := $(REL)/fault_sweep $(REL)/crash_test $(REL)/concurrency $(REL)/soak
REL_HELPERS := tests/reliability/rel.c tests/reliability/rel.h

# The shim is never built with sanitizers: it only forwards calls.
$(REL)/faultshim.so: tests/reliability/faultshim.c
	@mkdir -p $(@D)
	$(CC) $(WARN) -O2 -g -fPIC -shared -o $@ $< -ldl

$(REL)/%: tests/reliability/%.c $(REL_HELPERS) $(BUILD)/libmigrate.a $(REL)/faultshim.so
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE -Iinclude -Itests/reliability \
	    $(DEP_CFLAGS) -o $@ $< tests/reliability/rel.c $(BUILD)/libmigrate.a $(DEP_LIBS) -ldl -lm -pthread

TEST_PROGRAMS += $(REL)/fault_sweep $(REL)/crash_test $(REL)/concurrency $(REL)/soak

.PHONY: reliability
reliability: $(REL_PROGRAMS)
	@REL_FULL=1 sh tests/run.sh $(REL_PROGRAMS)
