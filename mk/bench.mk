# Benchmarks against the physical floor (tools/bench.c, BENCHMARKS.md).
# `make bench` runs the full sizes; `make test` runs the tiny size once, as
# a smoke test that every scenario still runs (not that it meets a target).
# The bench links its own -O2 objects of the library, never the sanitizer
# build, so its numbers mean the same whatever BUILD and SAN say.
BENCH_CFLAGS := $(WARN) -O2 -g -fPIC -fvisibility=hidden -D_GNU_SOURCE \
                -Iinclude -Isrc $(DEP_CFLAGS)
BENCH_OBJ := $(SRC:src/%.c=$(BUILD)/bench-obj/%.o) $(BUILD)/bench-obj/embedded.o

$(BUILD)/bench-obj/%.o: src/%.c build/deps.mk
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) $(DEPFLAGS) -c -o $@ $<
$(BUILD)/bench-obj/embedded.o: $(BUILD)/gen/embedded.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/bench: tools/bench.c $(BENCH_OBJ)
	$(CC) $(BENCH_CFLAGS) $(DEPFLAGS) -o $@ $< $(BENCH_OBJ) $(DEP_LIBS) -ldl -lm
# How far past its deadline each way of spending a call's time ends
# (tools/overshoot.c, RELIABILITY.md): figures, so `make bench` only.
$(BUILD)/overshoot: tools/overshoot.c $(BENCH_OBJ)
	$(CC) $(BENCH_CFLAGS) $(DEPFLAGS) -o $@ $< $(BENCH_OBJ) $(DEP_LIBS) -lm
-include $(wildcard $(BUILD)/bench-obj/*.d $(BUILD)/bench.d $(BUILD)/overshoot.d)

# The test suite's view: the tiny size, one summary line.
$(BUILD)/bench-tiny: $(BUILD)/bench
	@printf '#!/bin/sh\nBENCH_SCALE=tiny exec "%s" "$$@"\n' "$(abspath $(BUILD)/bench)" > $@
	@chmod +x $@
TEST_PROGRAMS += $(BUILD)/bench-tiny

.PHONY: bench
bench: $(BUILD)/bench $(BUILD)/overshoot
	$(BUILD)/bench
	$(BUILD)/overshoot
