# Data races in the threaded tests: the ones that run the library on
# several threads at once, test_state (runs on separate state paths from
# threads) and the concurrency program (six threads on one state path, four
# on separate ones).
# - ThreadSanitizer: the library and those tests rebuilt with
#   -fsanitize=thread into build/tsan by a recursive make; any report fails
#   (halt_on_error, exitcode 66).
# - Helgrind over the regular build of the same two programs: ThreadSanitizer
#   sees only instrumented code, and the race cJSON had (a static written by
#   every parse) is inside the uninstrumented system libcjson; helgrind
#   watches every instruction.
# See RELIABILITY.md.
TSAN_BUILD := build/tsan
TSAN_PROGRAMS := $(TSAN_BUILD)/tests/test_state $(TSAN_BUILD)/reliability/concurrency \
                 $(TSAN_BUILD)/reliability/confine

.PHONY: tsan
ifneq ($(BUILD),$(TSAN_BUILD))
tsan: $(BUILD)/tests/test_state $(REL)/concurrency $(REL)/confine
	$(MAKE) BUILD=$(TSAN_BUILD) SAN=thread $(TSAN_PROGRAMS)
	@TSAN_OPTIONS='halt_on_error=1 exitcode=66 second_deadlock_stack=1' \
	    sh tests/run.sh $(TSAN_PROGRAMS)
	@for t in $(BUILD)/tests/test_state $(REL)/concurrency; do \
	    echo "helgrind: $$t"; \
	    valgrind --tool=helgrind --error-exitcode=67 -q $$t > $(BUILD)/helgrind.log 2>&1 \
	        || { cat $(BUILD)/helgrind.log; exit 1; }; \
	    tail -n 1 $(BUILD)/helgrind.log; \
	done
endif
