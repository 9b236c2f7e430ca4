# make lint: luacheck over the Lua the runner loads (migrations/, lua/) and
# over the authoring guide's samples, with the sandbox's own standard
# (.luacheckrc), and cppcheck over the library. Brings in its tools itself
# (the "dev" role of vendor/deps.txt).

# cppcheck sees the project's headers only. The dependencies' headers are
# left out on purpose: cppcheck does not read libc's <limits.h>, so
# luaconf.h stops at its "#error Compiler does not support 'long long'",
# and what lies behind lua.h and cJSON.h is not ours to lint.
CPPCHECK_FLAGS := --error-exitcode=1 --enable=warning,style,performance,portability \
                  --std=c11 -D_GNU_SOURCE -Iinclude -Isrc --inline-suppr --quiet

# The guide's lua blocks, one file each, named after the line of their
# fence: line n of README.md-line-F.lua is line F + n of the guide. Blocks
# marked to fail ("fails" in their sample comment) are left out: they show
# what the runner refuses, and luacheck flags most of them for that reason.
GUIDE_SAMPLES := $(BUILD)/lint/guide

.PHONY: lint
lint:
	@sh vendor/bootstrap.sh dev
	luacheck --no-color --codes migrations lua
	@rm -rf $(GUIDE_SAMPLES) && mkdir -p $(GUIDE_SAMPLES)
	@awk -v dir=$(GUIDE_SAMPLES) ' \
	    /^<!-- sample:/ { marker = $$0; next } \
	    out != "" && /^```/ { close(out); out = ""; marker = ""; next } \
	    out != "" { print > out; next } \
	    /^```lua/ { if (marker !~ /"fails"/) out = sprintf("%s/README.md-line-%04d.lua", dir, NR); \
	                else skip = 1; next } \
	    skip && /^```/ { skip = 0; marker = ""; next } \
	    { marker = "" }' migrations/README.md
	luacheck --no-color --codes $(GUIDE_SAMPLES)
	cppcheck $(CPPCHECK_FLAGS) src
