# Fixture harness for migration authors (tools/fixture.c); see
# migrations/README.md, "Testing a migration on fixtures".
all: $(BUILD)/migrate-fixture

$(BUILD)/migrate-fixture: tools/fixture.c $(BUILD)/libmigrate.a
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE -Iinclude $(DEP_CFLAGS) -o $@ $< \
	    $(BUILD)/libmigrate.a $(DEP_LIBS) -lm
