# The Python binding (python/libmigrate, SPEC §9): its unittest suite in
# `make test`, and its installation by `make install PYTHONDIR=...`.

# The interpreter the suite runs under: Debian's (the pyenv python3 on PATH
# may lack Debian's packages). Python 3.11 or later.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)

# Where `make install` puts the libmigrate package; empty (the default):
# not installed. Debian's python3 reads /usr/lib/python3/dist-packages (for
# PREFIX=/usr) and /usr/local/lib/python3.11/dist-packages (for /usr/local);
# `pip install ./python` is the other way in (python/README.md).
PYTHONDIR =
PY_MODULES := $(sort $(wildcard python/libmigrate/*.py)) python/libmigrate/py.typed

install: install-python
uninstall: uninstall-python
.PHONY: install-python uninstall-python
install-python:
	@if [ -n "$(PYTHONDIR)" ]; then \
	    echo "$(INSTALL) -d $(DESTDIR)$(PYTHONDIR)/libmigrate"; \
	    $(INSTALL) -d $(DESTDIR)$(PYTHONDIR)/libmigrate && \
	    for f in $(PY_MODULES); do \
	        echo "$(INSTALL_DATA) $$f $(DESTDIR)$(PYTHONDIR)/libmigrate/"; \
	        $(INSTALL_DATA) $$f $(DESTDIR)$(PYTHONDIR)/libmigrate/ || exit 1; \
	    done; \
	fi
uninstall-python:
	@if [ -n "$(PYTHONDIR)" ]; then \
	    for f in $(notdir $(PY_MODULES)); do rm -f $(DESTDIR)$(PYTHONDIR)/libmigrate/$$f; done; \
	    rm -rf $(DESTDIR)$(PYTHONDIR)/libmigrate/__pycache__; \
	    if [ -d $(DESTDIR)$(PYTHONDIR)/libmigrate ]; then \
	        rmdir $(DESTDIR)$(PYTHONDIR)/libmigrate 2>/dev/null || true; fi; \
	fi

# The C side the suite compares with: struct layouts and migrate_report_json().
$(BUILD)/tests/python-oracle: tests/python/oracle.c $(BUILD)/libmigrate.a
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) -O0 $(SANFLAGS) -D_GNU_SOURCE -Iinclude -o $@ $< \
	    $(BUILD)/libmigrate.a $(DEP_LIBS) -lm

# Under SAN=1 the library needs the sanitizer runtime first in the process:
# preloaded into the (uninstrumented) interpreter, leak checking off (the
# interpreter's own allocations would drown it; the suite's RSS test and
# the C tests under valgrind cover leaks).
PY_SAN_ENV = $(if $(filter 1,$(SAN)),LD_PRELOAD=$(shell $(CC) -print-file-name=libasan.so) \
    ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0 LIBMIGRATE_TEST_SAN=1,)

# The suite as make test runs it: the freshly built library through
# LIBMIGRATE_LIBRARY, the package from the tree; ends with "N passed, N failed".
$(BUILD)/tests/python: tests/python/run.py mk/python.mk $(BUILD)/libmigrate.so \
    $(BUILD)/tests/python-oracle $(BUILD)/.python-deps
	@mkdir -p $(@D)
	@printf '%s\n' '#!/bin/sh' \
	    'exec env LIBMIGRATE_LIBRARY="$(abspath $(BUILD))/libmigrate.so" \' \
	    '    LIBMIGRATE_TEST_ORACLE="$(abspath $(BUILD))/tests/python-oracle" \' \
	    '    PYTHONPATH="$(CURDIR)/python" PYTHONDONTWRITEBYTECODE=1 $(PY_SAN_ENV) \' \
	    '    "$(PYTHON)" "$(CURDIR)/tests/python/run.py"' > $@.tmp
	@chmod +x $@.tmp && mv -f $@.tmp $@
TEST_PROGRAMS += $(BUILD)/tests/python

# pip install ./python builds with setuptools (Debian python3-setuptools),
# which the suite exercises through pip (python3-pip): both test-role deps.
$(BUILD)/.python-deps: vendor/deps.txt
	@sh vendor/bootstrap.sh test
	@mkdir -p $(@D) && touch $@
