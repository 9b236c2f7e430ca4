/* confine.c - confinement holds while another process swaps a path
 * component for a symlink (SPEC §5).
 *
 * The home holds a real directory d and a symlink d_alt to a directory
 * outside the allowed roots, each with files of the same names. A flipper
 * thread exchanges the two names (renameat2 RENAME_EXCHANGE) over and over
 * while a migration loops over every fs function on paths through ~/d,
 * each call in a pcall. Through the directory a call works; through the
 * link it must raise "outside allowed roots". Whatever the interleaving:
 *  - the outside directory is byte for byte, mode for mode, as it was
 *    (a listing with sizes, modes and content, taken before and after);
 *  - no read, copy, list, stat or read_json ever returned anything of it
 *    (its secret, its marker file, its size), counted by the script;
 *  - no file in the home holds the secret afterwards (no copy got out).
 * The test is counted, not timed: the script does LOOPS rounds, and the
 * flipper goes on until the script is done and it made MIN_FLIPS flips.
 * It prints the counts ("race iterations") that RELIABILITY.md quotes.
 *
 * usage: confine [--full | --loops N]   (LOOPS 400; --full or REL_FULL=1:
 * 4000; make valgrind asks for a few, since memcheck runs one thread at a
 * time and looks for memory errors on these paths, not for interleavings) */
#include "rel.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIN_FLIPS 2000
#define SECRET "SECRET-OUTSIDE-f00dfeed"

static const char SCRIPT[] =
    "local SECRET, LOOPS = %s, %d\n"
    "local leaks, done, refused = 0, 0, 0\n"
    "local function try(f, ...)\n"
    "  local ok, r = pcall(f, ...)\n"
    "  if ok then done = done + 1 else refused = refused + 1 end\n"
    "  if not ok and not tostring(r):find('outside allowed roots', 1, true) then\n"
    "    -- any other failure is an interleaving (a name gone meanwhile): fine\n"
    "  end\n"
    "  return ok and r or nil\n"
    "end\n"
    "local function seen(v)\n"
    "  if type(v) == 'string' and v:find(SECRET, 1, true) then leaks = leaks + 1 end\n"
    "  if type(v) == 'table' then\n"
    "    for _, x in pairs(v) do\n"
    "      if x == 'outside_marker' or (type(x) == 'string' and x:find(SECRET, 1, true)) then\n"
    "        leaks = leaks + 1\n"
    "      end\n"
    "    end\n"
    "    if v.size == #SECRET or v.mode == 384 then leaks = leaks + 1 end\n"
    "  end\n"
    "  if v == true then leaks = leaks + 1 end\n"
    "end\n"
    "function check() return fs.exists('~/result') end\n"
    "function migrate()\n"
    "  for _ = 1, LOOPS do\n"
    "    try(fs.write, '~/d/w', 'x')\n"
    "    try(fs.write, '~/d/secret', 'inside', '0644')\n"
    "    seen(try(fs.read, '~/d/secret'))\n"
    "    try(fs.copy, '~/d/secret', '~/d/copy')\n"
    "    seen(try(fs.read, '~/d/copy'))\n"
    "    try(fs.mkdir, '~/d/m/n')\n"
    "    try(fs.remove, '~/d/m/n')\n"
    "    try(fs.remove, '~/d/m')\n"
    "    try(fs.symlink, 'secret', '~/d/l')\n"
    "    try(fs.readlink, '~/d/l')\n"
    "    try(fs.remove, '~/d/l')\n"
    "    try(fs.chmod, '~/d/secret', '0604')\n"
    "    try(fs.remove, '~/d/victim')\n"
    "    try(fs.write, '~/d/victim', 'v')\n"
    "    try(fs.remove_tree, '~/d/tree')\n"
    "    try(fs.mkdir, '~/d/tree/sub')\n"
    "    try(fs.write, '~/d/tree/sub/f', 't')\n"
    "    try(fs.rename, '~/d/r1', '~/d/r2')\n"
    "    try(fs.rename, '~/d/r2', '~/d/r1')\n"
    "    try(fs.write, '~/d/r1', 'r')\n"
    "    seen(try(fs.list, '~/d'))\n"
    "    seen(try(fs.stat, '~/d/secret'))\n"
    "    seen(try(fs.stat, '~/d/outside_marker'))\n"
    "    seen(try(fs.exists, '~/d/outside_marker'))\n"
    "    seen(try(fs.is_file, '~/d/outside_marker'))\n"
    "    seen(try(fs.is_dir, '~/d/outside_dir'))\n"
    "    try(fs.write_json, '~/d/j.json', {a = 1})\n"
    "    seen(try(fs.read_json, '~/d/secret.json'))\n"
    "  end\n"
    "  fs.write('~/result', string.format('%%d %%d %%d', leaks, done, refused))\n"
    "  return true\n"
    "end\n";

typedef struct flipper {
    const char *a, *b;
    atomic_bool script_done;
    atomic_long flips;
    int error;
} flipper;

static void *flip(void *arg)
{
    flipper *f = arg;
    while (!atomic_load(&f->script_done) || atomic_load(&f->flips) < MIN_FLIPS) {
        if (renameat2(AT_FDCWD, f->a, AT_FDCWD, f->b, RENAME_EXCHANGE) != 0) {
            f->error = errno;
            break;
        }
        atomic_fetch_add(&f->flips, 1);
    }
    return NULL;
}

/* ---- a listing of a tree: names, types, modes, sizes, contents ----------- */

static char *listing;
static size_t listing_len;
static size_t base_len;
static bool secret_found;

static void append(const char *s)
{
    size_t n = strlen(s);
    char *bigger = realloc(listing, listing_len + n + 1);
    if (bigger == NULL)
        rel_die("out of memory");
    listing = bigger;
    memcpy(listing + listing_len, s, n + 1);
    listing_len += n;
}

static int list_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)type;
    (void)ftw;
    char *line = rel_fmt("%s %o %lld", path + base_len, (unsigned)st->st_mode,
                         (long long)st->st_size);
    append(line);
    free(line);
    if (S_ISREG(st->st_mode)) {
        char *content = rel_read(path);
        append(" ");
        append(content != NULL ? content : "(unreadable)");
        if (content != NULL && strstr(content, SECRET) != NULL)
            secret_found = true;
        free(content);
    }
    append("\n");
    return 0;
}

/* The listing of dir (malloc'd); *secret: whether a file holds SECRET. */
static char *list_tree(const char *dir, bool *secret)
{
    listing = NULL;
    listing_len = 0;
    base_len = strlen(dir);
    secret_found = false;
    append("");
    if (nftw(dir, list_entry, 16, FTW_PHYS) != 0)
        rel_die("nftw %s: %s", dir, strerror(errno));
    if (secret != NULL)
        *secret = secret_found;
    return listing;
}

static void put(const char *dir, const char *name, const char *content, mode_t mode)
{
    char *path = rel_fmt("%s/%s", dir, name);
    rel_write(path, content);
    if (chmod(path, mode) != 0)
        rel_die("chmod %s: %s", path, strerror(errno));
    free(path);
}

int main(int argc, char **argv)
{
    int loops = rel_full(argc, argv) ? 4000 : 400;
    int asked = argc == 3 && strcmp(argv[1], "--loops") == 0 ? atoi(argv[2]) : 0;
    if (asked > 0)
        loops = asked;
    rel_world w;
    rel_world_init(&w, "confine", 600000);
    char *d = rel_fmt("%s/d", w.home), *alt = rel_fmt("%s/d_alt", w.home);
    char *outside = rel_fmt("%s/outside", w.root);
    /* The outside: every name the script touches, and more. */
    put(outside, "secret", SECRET, 0644);
    put(outside, "secret.json", "{\"s\": \"" SECRET "\"}", 0644);
    put(outside, "victim", "outside victim", 0644);
    put(outside, "tree/sub/f", "outside tree", 0644);
    put(outside, "r1", "outside r1", 0644);
    put(outside, "outside_marker", "marker", 0600);
    char *odir = rel_fmt("%s/outside_dir", outside);
    if (mkdir(odir, 0755) != 0)
        rel_die("mkdir %s: %s", odir, strerror(errno));
    free(odir);
    /* The inside: the same names, other contents. */
    put(d, "secret", "inside", 0644);
    put(d, "secret.json", "{\"s\": \"inside\"}", 0644);
    put(d, "r1", "r", 0644);
    if (symlink(outside, alt) != 0)
        rel_die("symlink: %s", strerror(errno));
    char *script = rel_fmt("%s/v1.0.0/001_race.lua", w.migrations);
    char *lua = rel_fmt(SCRIPT, "'" SECRET "'", loops);
    rel_write(script, lua);
    free(lua);

    char *before = list_tree(outside, NULL);
    flipper f = {.a = d, .b = alt};
    atomic_init(&f.script_done, false);
    atomic_init(&f.flips, 0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, flip, &f) != 0)
        rel_die("pthread_create failed");
    migrate_report *rep = NULL;
    int rc = migrate_run(NULL, NULL, &w.opts, &rep);
    atomic_store(&f.script_done, true);
    pthread_join(thread, NULL);
    REL_CHECK(f.error == 0, "the flipper failed: %s", strerror(f.error));
    REL_CHECK(rc == MIGRATE_OK, "migrate_run returned %d: %s", rc, migrate_report_error(rep));
    migrate_report_free(rep);

    bool secret_in_home;
    char *after = list_tree(outside, NULL);
    char *home_listing = list_tree(w.home, &secret_in_home);
    free(home_listing);
    REL_CHECK(strcmp(before, after) == 0, "the outside directory changed:\n--- before\n%s--- after\n%s",
              before, after);
    REL_CHECK(!secret_in_home, "a file in the home holds the outside secret");
    char *result_path = rel_fmt("%s/result", w.home);
    char *result = rel_read(result_path);
    long leaks = -1, done = 0, refused = 0;
    REL_CHECK(result != NULL && sscanf(result, "%ld %ld %ld", &leaks, &done, &refused) == 3,
              "the script wrote no result");
    REL_CHECK(leaks == 0, "%ld calls returned something of the outside directory", leaks);
    printf("race iterations: %d script loops, %ld fs calls (%ld done, %ld raised), %ld flips\n",
           loops, done + refused, done, refused, (long)atomic_load(&f.flips));
    rel_case();
    free(result);
    free(result_path);
    free(before);
    free(after);
    free(script);
    free(d);
    free(alt);
    free(outside);
    rel_world_free(&w);
    return rel_summary();
}
