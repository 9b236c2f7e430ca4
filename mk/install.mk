# make install / make uninstall, laid out as the GNU coding standards say:
#   make install PREFIX=/usr                       # into /usr
#   make install DESTDIR=/tmp/stage PREFIX=/usr    # staged, for a package
# PREFIX, EXEC_PREFIX, LIBDIR, INCLUDEDIR, DATAROOTDIR, DATADIR and
# PKGCONFIGDIR may each be overridden on the command line. DESTDIR only
# stages the files: it never appears inside an installed file, so the staged
# tree works once copied to /.

PREFIX = /usr/local
EXEC_PREFIX = $(PREFIX)
LIBDIR = $(EXEC_PREFIX)/lib
INCLUDEDIR = $(PREFIX)/include
DATAROOTDIR = $(PREFIX)/share
DATADIR = $(DATAROOTDIR)
PKGCONFIGDIR = $(LIBDIR)/pkgconfig
LUAMETADIR = $(DATADIR)/migrate/meta

INSTALL = install
INSTALL_DATA = $(INSTALL) -m 644
INSTALL_LIB = $(INSTALL) -m 755
# Run after a real (not staged) install by root, so that the dynamic linker
# finds the new library in directories it only knows through its cache
# (/usr/local/lib on Debian). LDCONFIG=: skips it.
LDCONFIG = ldconfig

# The LuaLS annotation file for migration authors; installed when present.
LUA_META = lua/meta/migrate.lua

SHLIB := libmigrate.so.$(VERSION)
SHLIB_SONAME := libmigrate.so.$(MAJOR)

# The shared library under its full versioned name, as it is installed (its
# SONAME, libmigrate.so.$(MAJOR), is set where it is linked).
all: $(BUILD)/$(SHLIB)
$(BUILD)/$(SHLIB): $(BUILD)/libmigrate.so
	cp -f $< $@

# $(call pc_under,DIR,BASE,NAME): DIR with a leading BASE written ${NAME},
# so the .pc file stays relocatable with --define-variable=prefix=...
pc_under = $(if $(filter $(2) $(2)/%,$(1)),$${$(3)}$(patsubst $(2)%,%,$(1)),$(1))
pc_libdir = $(call pc_under,$(call pc_under,$(LIBDIR),$(EXEC_PREFIX),exec_prefix),$(PREFIX),prefix)
pc_dir = $(call pc_under,$(1),$(PREFIX),prefix)

# Written on every install: the directories are those of this invocation.
$(BUILD)/migrate.pc: tools/migrate.pc.in include/migrate.h FORCE
	@mkdir -p $(@D)
	sed -e 's|@prefix@|$(PREFIX)|' \
	    -e 's|@exec_prefix@|$(call pc_dir,$(EXEC_PREFIX))|' \
	    -e 's|@libdir@|$(pc_libdir)|' \
	    -e 's|@includedir@|$(call pc_dir,$(INCLUDEDIR))|' \
	    -e 's|@datadir@|$(call pc_dir,$(DATADIR))|' \
	    -e 's|@luametadir@|$(call pc_dir,$(LUAMETADIR))|' \
	    -e 's|@version@|$(VERSION)|' tools/migrate.pc.in > $@.tmp
	mv -f $@.tmp $@

# install(1) unlinks before it writes, so a running daemon keeps the library
# it mapped; each symlink is replaced by rename, so a program starting during
# an upgrade finds either the old link or the new one, never none.
install: all $(BUILD)/$(SHLIB) $(BUILD)/migrate.pc
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL_DATA) $(BUILD)/libmigrate.a $(DESTDIR)$(LIBDIR)/libmigrate.a
	$(INSTALL_LIB) $(BUILD)/$(SHLIB) $(DESTDIR)$(LIBDIR)/$(SHLIB)
	ln -sf $(SHLIB) $(DESTDIR)$(LIBDIR)/$(SHLIB_SONAME).new
	mv -f $(DESTDIR)$(LIBDIR)/$(SHLIB_SONAME).new $(DESTDIR)$(LIBDIR)/$(SHLIB_SONAME)
	ln -sf $(SHLIB_SONAME) $(DESTDIR)$(LIBDIR)/libmigrate.so.new
	mv -f $(DESTDIR)$(LIBDIR)/libmigrate.so.new $(DESTDIR)$(LIBDIR)/libmigrate.so
	$(INSTALL_DATA) include/migrate.h $(DESTDIR)$(INCLUDEDIR)/migrate.h
	$(INSTALL_DATA) $(BUILD)/migrate.pc $(DESTDIR)$(PKGCONFIGDIR)/migrate.pc
	@if [ -f $(LUA_META) ]; then \
	    echo "$(INSTALL_DATA) $(LUA_META) $(DESTDIR)$(LUAMETADIR)/migrate.lua"; \
	    $(INSTALL) -d $(DESTDIR)$(LUAMETADIR) && \
	    $(INSTALL_DATA) $(LUA_META) $(DESTDIR)$(LUAMETADIR)/migrate.lua; \
	fi
	@$(run_ldconfig)

# Removes exactly the files install puts there, and the directories that
# belong to libmigrate alone; shared ones (lib/, include/, ...) stay.
uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libmigrate.a $(DESTDIR)$(LIBDIR)/$(SHLIB) \
	    $(DESTDIR)$(LIBDIR)/$(SHLIB_SONAME) $(DESTDIR)$(LIBDIR)/libmigrate.so \
	    $(DESTDIR)$(INCLUDEDIR)/migrate.h $(DESTDIR)$(PKGCONFIGDIR)/migrate.pc \
	    $(DESTDIR)$(LUAMETADIR)/migrate.lua
	@for d in $(DESTDIR)$(LUAMETADIR) $(DESTDIR)$(DATADIR)/migrate; do \
	    if [ -d "$$d" ]; then rmdir "$$d" 2>/dev/null || true; fi; \
	done
	@$(run_ldconfig)

run_ldconfig = if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && \
	command -v $(firstword $(LDCONFIG)) >/dev/null 2>&1; then $(LDCONFIG) || true; fi

# ---- tests: tests/packaging/run.sh, through a wrapper that hands it this
# build's directory and compiler flags (tests/run.sh runs it without any).
# The header too: the wrapper bakes in the version it says.
$(BUILD)/tests/packaging: tests/packaging/run.sh mk/install.mk include/migrate.h
	@mkdir -p $(@D)
	@printf '%s\n' '#!/bin/sh' \
	    'exec env PKG_BUILD="$(abspath $(BUILD))" PKG_CC="$(CC)" PKG_SANFLAGS="$(SANFLAGS)" \' \
	    '    PKG_SAN="$(SAN)" PKG_VERSION="$(VERSION)" PKG_MAJOR="$(MAJOR)" \' \
	    '    PKG_CXX="$(CXX)" PKG_MAKE="$(MAKE)" \' \
	    '    sh "$(CURDIR)/tests/packaging/run.sh"' > $@.tmp
	@chmod +x $@.tmp && mv -f $@.tmp $@
TEST_PROGRAMS += $(BUILD)/tests/packaging

.PHONY: install uninstall FORCE
FORCE:
