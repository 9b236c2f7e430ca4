#include "rel.h"

#include <cJSON.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

static int rel_passed, rel_failed, rel_checks;
static bool case_failed, case_open;

void rel_check(bool ok, const char *file, int line, const char *fmt, ...)
{
    rel_checks++;
    case_open = true;
    if (ok)
        return;
    case_failed = true;
    fprintf(stdout, "FAIL %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

void rel_case(void)
{
    if (!case_open)
        return;
    if (case_failed)
        rel_failed++;
    else
        rel_passed++;
    case_open = case_failed = false;
}

bool rel_full(int argc, char **argv)
{
    const char *env = getenv("REL_FULL");
    return (argc > 1 && strcmp(argv[1], "--full") == 0) || (env != NULL && strcmp(env, "1") == 0);
}

int rel_summary(void)
{
    rel_case();
    printf("(%d checks in %d cases)\n", rel_checks, rel_passed + rel_failed);
    printf("%d passed, %d failed\n", rel_passed, rel_failed);
    return rel_failed == 0 ? 0 : 1;
}

void rel_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fatal: ", stdout);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    rel_case();
    printf("%d passed, %d failed\n", rel_passed, rel_failed + 1);
    exit(1);
}

char *rel_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        rel_die("out of memory");
    va_end(ap);
    return s;
}

char *rel_tmpdir(const char *tag)
{
    /* tmpfs by default: these programs fsync thousands of times and test
     * what the library does with each call's result, not the disk. */
    const char *base = getenv("REL_TMPDIR");
    if (base == NULL || *base == '\0')
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    char *tmpl = rel_fmt("%s/libmigrate-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (mkdtemp(tmpl) == NULL)
        rel_die("mkdtemp %s: %s", tmpl, strerror(errno));
    char *real = realpath(tmpl, NULL);
    free(tmpl);
    if (real == NULL)
        rel_die("realpath: %s", strerror(errno));
    return real;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

void rel_rmtree(const char *path)
{
    nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

static void mkparents(const char *path)
{
    char *p = rel_fmt("%s", path);
    for (char *s = strchr(p + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            rel_die("mkdir %s: %s", p, strerror(errno));
        *s = '/';
    }
    free(p);
}

void rel_write(const char *path, const char *content)
{
    mkparents(path);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        rel_die("open %s: %s", path, strerror(errno));
    size_t n = strlen(content);
    if (fwrite(content, 1, n, f) != n || fclose(f) != 0)
        rel_die("write %s: %s", path, strerror(errno));
}

char *rel_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, len = 0, got;
    char *buf = malloc(cap);
    while (buf != NULL && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (buf == NULL)
        rel_die("out of memory");
    buf[len] = '\0';
    return buf;
}

void rel_world_init(rel_world *w, const char *tag, unsigned timeout_ms)
{
    w->root = rel_tmpdir(tag);
    w->migrations = rel_fmt("%s/migrations", w->root);
    w->home = rel_fmt("%s/home", w->root);
    /* The library refuses a missing home (it never creates one). */
    if (mkdir(w->home, 0755) != 0 && errno != EEXIST)
        rel_die("mkdir %s: %s", w->home, strerror(errno));
    migrate_options_init(&w->opts, MIGRATE_OPTIONS_VERSION);
    w->opts.migrations_dir = w->migrations;
    w->opts.home = w->home;
    w->opts.timeout_ms = timeout_ms;
    w->opts.memory_limit = 32u << 20;
}

void rel_world_free(rel_world *w)
{
    rel_rmtree(w->root);
    free(w->root);
    free(w->migrations);
    free(w->home);
}

void rel_reset_home(const char *home)
{
    rel_rmtree(home);
    char *keep = rel_fmt("%s/keep", home);
    rel_write(keep, "");
    free(keep);
}

bool rel_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int rel_count_prefixed(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

int rel_count_fds(void)
{
    return rel_count_prefixed("/proc/self/fd", "") - 3; /* ., .., opendir's own */
}

long rel_rss_kib(void)
{
    char *status = rel_read("/proc/self/status");
    const char *at = status ? strstr(status, "VmRSS:") : NULL;
    long kib = at ? strtol(at + 6, NULL, 10) : -1;
    free(status);
    return kib;
}

int rel_state_ids(const char *path, char ***ids, size_t *count, const char **why)
{
    *ids = NULL;
    *count = 0;
    *why = NULL;
    char *text = rel_read(path);
    if (text == NULL)
        return 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *applied = cJSON_GetObjectItemCaseSensitive(root, "applied");
    if (root == NULL || !cJSON_IsArray(applied)) {
        *why = root == NULL ? "not JSON" : "no \"applied\" array";
        cJSON_Delete(root);
        return -1;
    }
    size_t n = (size_t)cJSON_GetArraySize(applied);
    *ids = calloc(n + 1, sizeof **ids);
    const cJSON *id;
    cJSON_ArrayForEach(id, applied)
    {
        if (!cJSON_IsString(id)) {
            *why = "an applied id is not a string";
            break;
        }
        (*ids)[(*count)++] = strdup(id->valuestring);
    }
    cJSON_Delete(root);
    return *why == NULL ? 1 : -1;
}

void rel_free_ids(char **ids, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(ids[i]);
    free(ids);
}

/* ---- the fault shim --------------------------------------------------------- */

void rel_with_shim(char **argv)
{
    if (dlsym(RTLD_DEFAULT, "faultshim_arm") != NULL)
        return;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        rel_die("readlink /proc/self/exe: %s", strerror(errno));
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    *slash = '\0';
    char *shim = rel_fmt("%s/faultshim.so", exe);
    *slash = '/';
    if (!rel_exists(shim))
        rel_die("%s is missing (make builds it beside this program)", shim);
    setenv("LD_PRELOAD", shim, 1);
#if defined(__SANITIZE_ADDRESS__)
    /* The shim comes before the sanitizer runtime in the library list;
     * it only forwards calls, which the sanitizer then sees as usual. */
    const char *old = getenv("ASAN_OPTIONS");
    setenv("ASAN_OPTIONS", rel_fmt("%s%sverify_asan_link_order=0", old ? old : "", old ? ":" : ""), 1);
#endif
    execv(exe, argv);
    rel_die("execv %s: %s", exe, strerror(errno));
}

static void *shim_fn(const char *name)
{
    void *fn = dlsym(RTLD_DEFAULT, name);
    if (fn == NULL)
        rel_die("%s: the fault shim is not loaded", name);
    return fn;
}

void rel_shim_arm(const char *prefix, const char *ops, long nth, const char *err,
                  const char *action)
{
    char n[32];
    snprintf(n, sizeof n, "%ld", nth);
    setenv("FAULTSHIM_NTH", n, 1);
#define SET(name, v) ((v) != NULL ? setenv(name, v, 1) : unsetenv(name))
    SET("FAULTSHIM_PREFIX", prefix);
    SET("FAULTSHIM_OPS", ops);
    SET("FAULTSHIM_ERRNO", err);
    SET("FAULTSHIM_ACTION", action);
#undef SET
    ((void (*)(void))shim_fn("faultshim_arm"))();
}

void rel_shim_disarm(void)
{
    ((void (*)(void))shim_fn("faultshim_disarm"))();
}

long rel_shim_calls(void)
{
    return ((long (*)(void))shim_fn("faultshim_calls"))();
}

const char *rel_shim_fired_at(void)
{
    return ((const char *(*)(void))shim_fn("faultshim_fired_at"))();
}

/* ---- children -------------------------------------------------------------- */

void rel_in_child(int (*fn)(void *arg, rel_outcome *o), void *arg, rel_outcome *out)
{
    int fds[2];
    if (pipe(fds) != 0)
        rel_die("pipe: %s", strerror(errno));
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        rel_die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        rel_outcome o;
        memset(&o, 0, sizeof o);
        o.rc = 1000; /* "never returned" */
        int status = fn(arg, &o);
        ssize_t w = write(fds[1], &o, sizeof o);
        _exit(w == (ssize_t)sizeof o ? status : 99);
    }
    close(fds[1]);
    memset(out, 0, sizeof *out);
    out->rc = 1000;
    size_t got = 0;
    while (got < sizeof *out) {
        ssize_t n = read(fds[0], (char *)out + got, sizeof *out - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    if (got != sizeof *out) {
        memset(out, 0, sizeof *out);
        out->rc = 1000;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            rel_die("waitpid: %s", strerror(errno));
    out->exited = WIFEXITED(status);
    out->status = out->exited ? WEXITSTATUS(status) : -1;
    out->sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

