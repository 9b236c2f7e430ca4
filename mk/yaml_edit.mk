# The YAML editor's differential suite: a driver running Lua edit scripts
# over the backend, checked by PyYAML (tests/yaml_edit/oracle.py).
$(BUILD)/yaml-edit-driver: tests/yaml_edit/driver.c tests/lua_formats.h $(BUILD)/libmigrate.a
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) -O0 $(SANFLAGS) -D_GNU_SOURCE -Iinclude -Isrc $(DEP_CFLAGS) \
	    -o $@ $< $(BUILD)/libmigrate.a $(DEP_LIBS) -lm

# The suite as make test runs it: PyYAML from Debian's python3 (SPEC: the
# python3 on PATH may lack it).
$(BUILD)/yaml-edit-oracle: $(BUILD)/yaml-edit-driver tests/yaml_edit/oracle.py
	@printf '#!/bin/sh\nexec /usr/bin/python3 "%s" "%s"\n' "$(abspath tests/yaml_edit/oracle.py)" \
	    "$(abspath $(BUILD)/yaml-edit-driver)" > $@
	@chmod +x $@
TEST_PROGRAMS += $(BUILD)/yaml-edit-oracle
