# The YAML editor's differential suite: a driver running Lua edit scripts
# over the backend, checked by PyYAML (tests/yaml_edit/oracle.py).
$(BUILD)/yaml-edit-driver: tests/yaml_edit/driver.c $(BUILD)/libmigrate.a
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) -O0 $(SANFLAGS) -D_GNU_SOURCE -Iinclude -Isrc $(DEP_CFLAGS) \
	    -o $@ $< $(BUILD)/libmigrate.a $(DEP_LIBS) -lm
