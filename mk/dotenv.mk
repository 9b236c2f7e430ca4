# The .env module against its oracle, python-dotenv 0.21 (Debian's
# /usr/bin/python3; the pyenv python3 on PATH lacks it): tests/dotenv/diff.py
# drives lua/dotenv.lua through a small runner. The suite is a generated
# wrapper so that each build directory's suite runs its own runner.
$(BUILD)/tests/dotenv-lua: tests/dotenv/lua_runner.c $(BUILD)/libmigrate-test.a
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) -O0 $(SANFLAGS) -D_GNU_SOURCE -Iinclude -Isrc $(DEP_CFLAGS) \
	    -o $@ $< $(BUILD)/libmigrate-test.a $(DEP_LIBS) -lm

$(BUILD)/tests/dotenv-suite: tests/dotenv/diff.py tests/dotenv/driver.lua $(BUILD)/tests/dotenv-lua
	@mkdir -p $(@D)
	printf '#!/bin/sh\nexec /usr/bin/python3 "%s/tests/dotenv/diff.py" "%s/$(BUILD)/tests/dotenv-lua"\n' \
	    "$(CURDIR)" "$(CURDIR)" > $@
	chmod +x $@

TEST_PROGRAMS += $(BUILD)/tests/dotenv-suite
