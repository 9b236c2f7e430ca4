/* options.c - migrate_options: defaults, versions, and the checks made
 * before a run does anything (SPEC §7, §7.1). */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int migrate_options_init(migrate_options *opts, unsigned version)
{
    if (opts == NULL || version == 0 || version > MIGRATE_OPTIONS_VERSION)
        return MIGRATE_EINVAL;
    migrate_options defaults = MIGRATE_OPTIONS_INIT;
    *opts = defaults;
    return MIGRATE_OK;
}

/* A later MINOR that adds fields raises MIGRATE_OPTIONS_VERSION and copies
 * here only the fields the caller's version has, defaulting the rest; the
 * caller's struct may be shorter than ours, so nothing past its version's
 * fields is read. Version 1 is the first and only one so far. */
int mig_options_copy(const migrate_options *in, migrate_options *out, char *err)
{
    migrate_options defaults = MIGRATE_OPTIONS_INIT;
    *out = defaults;
    out->migrations_dir = "migrations";
    if (in == NULL)
        return MIGRATE_OK;
    if (in->version == 0)
        return mig_errf(err, MIGRATE_EINVAL,
                        "opts.version is 0: the options were not initialized; fill them with "
                        "migrate_options_init(&opts, MIGRATE_OPTIONS_VERSION) or "
                        "MIGRATE_OPTIONS_INIT");
    if (in->version != MIGRATE_OPTIONS_VERSION)
        return mig_errf(err, MIGRATE_EINVAL,
                        "opts.version is %u: this library (%s) knows options versions 1 to %u "
                        "only (a host built against a newer migrate.h?)",
                        in->version, migrate_library_version(), MIGRATE_OPTIONS_VERSION);
    *out = *in;
    if (out->migrations_dir == NULL)
        out->migrations_dir = "migrations";
    if (out->memory_limit == 0)
        out->memory_limit = MIGRATE_DEFAULT_MEMORY_LIMIT;
    if (out->rehearsal_memory_limit == 0)
        out->rehearsal_memory_limit = MIGRATE_DEFAULT_REHEARSAL_MEMORY_LIMIT;
    return MIGRATE_OK;
}

int mig_options_check_discover(const migrate_options *o, char *err)
{
    if (o->migrations_dir[0] == '\0')
        return mig_errf(err, MIGRATE_EINVAL,
                        "opts.migrations_dir is \"\": give the directory of the migrations, or "
                        "NULL for \"migrations\"");
    return MIGRATE_OK;
}

/* An existing directory named by an absolute path; `what` names the option
 * in the message ("opts.home", "opts.allowed_roots[1]"). */
static int check_directory(const char *what, const char *path, const char *role, char *err)
{
    if (path[0] != '/')
        return mig_errf(err, MIGRATE_EINVAL,
                        "%s is \"%s\": %s must be an absolute path%s", what, path, role,
                        path[0] == '\0' ? ""
                                        : " (a relative one would depend on the working "
                                          "directory)");
    struct stat st;
    if (stat(path, &st) != 0) {
        char buf[128];
        int e = errno;
        return mig_errf(err, MIGRATE_EINVAL, "%s is \"%s\": %s%s", what, path,
                        e == ENOENT ? "it does not exist" : mig_strerror(e, buf, sizeof buf),
                        e == ENOENT ? " (the library never creates it)" : "");
    }
    if (!S_ISDIR(st.st_mode))
        return mig_errf(err, MIGRATE_EINVAL, "%s is \"%s\": not a directory", what, path);
    return MIGRATE_OK;
}

/* The state file's own path: absolute, a file name, and, where it or an
 * ancestor already exists, of the right kind. The missing part is created
 * (0700) by a real run. */
static int check_state_path(const char *path, char *err)
{
    if (path[0] == '\0')
        return mig_errf(err, MIGRATE_EINVAL,
                        "opts.state_path is \"\": give the state file's path, or NULL for "
                        "<home>/.teleclaude/migration_state.json");
    if (path[0] != '/')
        return mig_errf(err, MIGRATE_EINVAL,
                        "opts.state_path is \"%s\": the state file must be an absolute path (a "
                        "relative one would depend on the working directory)",
                        path);
    if (path[strlen(path) - 1] == '/')
        return mig_errf(err, MIGRATE_EINVAL,
                        "opts.state_path is \"%s\": it names a directory, not a file", path);
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return mig_errf(err, MIGRATE_EINVAL, "opts.state_path is \"%s\": %s", path,
                            S_ISDIR(st.st_mode) ? "a directory, not a file"
                                                : "not a regular file");
        return MIGRATE_OK;
    }
    char *dir = strdup(path);
    if (dir == NULL)
        return mig_errf(err, MIGRATE_ENOMEM, "out of memory");
    int rc = MIGRATE_OK;
    for (char *slash = strrchr(dir, '/'); slash != NULL; slash = strrchr(dir, '/')) {
        *slash = '\0';
        const char *at = dir[0] != '\0' ? dir : "/";
        if (stat(at, &st) != 0) {
            /* The run could not make the directory through it. */
            if (lstat(at, &st) == 0 && S_ISLNK(st.st_mode)) {
                rc = mig_errf(err, MIGRATE_EINVAL,
                              "opts.state_path is \"%s\": %s is a symlink to nothing", path, at);
                break;
            }
            continue;
        }
        if (!S_ISDIR(st.st_mode))
            rc = mig_errf(err, MIGRATE_EINVAL,
                          "opts.state_path is \"%s\": %s is not a directory", path, at);
        break;
    }
    free(dir);
    return rc;
}

int mig_options_check_run(const migrate_options *o, char *err)
{
    int rc = mig_options_check_discover(o, err);
    if (rc != MIGRATE_OK)
        return rc;
    const char *home = o->home;
    if (home == NULL && (home = getenv("HOME")) == NULL)
        return mig_errf(err, MIGRATE_EINVAL, "no home directory: set opts.home or $HOME");
    rc = check_directory(o->home != NULL ? "opts.home" : "$HOME", home, "the home", err);
    if (rc != MIGRATE_OK)
        return rc;
    if (o->allowed_roots != NULL && o->allowed_roots[0] == NULL)
        return mig_errf(err, MIGRATE_EINVAL,
                        "opts.allowed_roots is an empty list: give at least one root, or NULL "
                        "for { home }");
    for (size_t i = 0; o->allowed_roots != NULL && o->allowed_roots[i] != NULL; i++) {
        char what[64];
        snprintf(what, sizeof what, "opts.allowed_roots[%zu]", i);
        if ((rc = check_directory(what, o->allowed_roots[i], "a root", err)) != MIGRATE_OK)
            return rc;
    }
    return o->state_path != NULL ? check_state_path(o->state_path, err) : MIGRATE_OK;
}
