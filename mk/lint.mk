# make lint: luacheck over the Lua the runner loads (migrations/, lua/) with
# the sandbox's own standard (.luacheckrc), and cppcheck over the library.
# Brings in its tools itself (the "dev" role of vendor/deps.txt).

# cppcheck sees the project's headers only. The dependencies' headers are
# left out on purpose: cppcheck does not read libc's <limits.h>, so
# luaconf.h stops at its "#error Compiler does not support 'long long'",
# and what lies behind lua.h and cJSON.h is not ours to lint.
CPPCHECK_FLAGS := --error-exitcode=1 --enable=warning,style,performance,portability \
                  --std=c11 -D_GNU_SOURCE -Iinclude -Isrc --inline-suppr --quiet

.PHONY: lint
lint:
	@sh vendor/bootstrap.sh dev
	luacheck --no-color --codes migrations lua
	cppcheck $(CPPCHECK_FLAGS) src
