# Fixture harness for migration authors (tools/fixture.c); see
# migrations/README.md, "Testing a migration on fixtures".
all: $(BUILD)/migrate-fixture

$(BUILD)/migrate-fixture: tools/fixture.c $(BUILD)/libmigrate.a
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE -Iinclude -Isrc $(DEP_CFLAGS) -o $@ $< \
	    $(BUILD)/libmigrate.a $(DEP_LIBS) -lm

# The suite of `make test`: tests/fixtures, coverage of migrations/, and
# tests/fixtures-must-fail. A copy next to the harness, so each build
# directory's suite runs its own harness.
$(BUILD)/tests/fixture-suite: tests/fixture-suite.sh $(BUILD)/migrate-fixture
	@mkdir -p $(@D)
	cp $< $@ && chmod +x $@

TEST_PROGRAMS += $(BUILD)/tests/fixture-suite
