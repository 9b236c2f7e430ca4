# The yaml module's differential suite: yaml.decode against PyYAML's
# CSafeLoader on a generated corpus, and yaml.encode read back by PyYAML
# (tests/yaml/run.sh; the oracle is Debian's /usr/bin/python3 with
# python3-yaml, a test-role dependency in vendor/deps.txt).
$(BUILD)/tests/yaml_oracle: tests/yaml/yaml_oracle.c tests/lua_formats.h $(BUILD)/libmigrate.a $(BUILD)/.cmocka
	@mkdir -p $(@D)
	$(CC) $(WARN) -Wno-missing-prototypes $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE -Iinclude -Isrc \
	    $(DEP_CFLAGS) -o $@ $< $(BUILD)/libmigrate.a $(DEP_LIBS) -lm

$(BUILD)/tests/yaml-suite: tests/yaml/run.sh tests/yaml/oracle.py $(BUILD)/tests/yaml_oracle
	@mkdir -p $(@D)
	cp $< $@ && chmod +x $@

TEST_PROGRAMS += $(BUILD)/tests/yaml-suite
