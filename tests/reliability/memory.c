/* memory.c - a script cannot grow its host past memory_limit.
 *
 * A child process (fresh, so its peak is its own) runs migrations that each
 * try to make the host hold memory the limit does not count: a `return
 * false, reason` with a reason near the limit, an error as big, log lines
 * that big and many of them, a warn() flood, require() of a 1 MiB module
 * again and again with the heap at its limit (each failure once leaked the
 * module's source), and a plain allocation to the limit. Each attack runs
 * ROUNDS times in one process. The child then reads its peak resident size
 * (VmHWM in /proc/self/status) and the parent checks
 *     VmHWM <= memory_limit + MEMORY_SLACK_KIB
 * MEMORY_SLACK_KIB covers the process itself (libc, Lua, the library, the
 * test's own code: about 4 MiB), the error headroom (256 KiB), the longest
 * kept texts (64 KiB each) and their JSON, a module being read (up to its
 * size), and allocator slack. RELIABILITY.md quotes it.
 *
 * usage: memory [--full]    (ROUNDS 4; --full or REL_FULL=1: 16) */
#include "rel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT (32u << 20)
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED true
#else
#define SANITIZED false
#endif
#define MEMORY_SLACK_KIB (16 * 1024)

/* Fills the heap to its limit in ever smaller pieces, so that what
 * follows fails at any of its allocations. */
#define FILL                                                                \
    "local hold = {}\n"                                                     \
    "local function fill()\n"                                               \
    "  local n = 1 << 20\n"                                                 \
    "  while n >= 1 do\n"                                                   \
    "    if not pcall(function() hold[#hold + 1] = ('f'):rep(n) .. #hold end) then n = n // 2 end\n" \
    "  end\n"                                                               \
    "end\n"

typedef struct attack {
    const char *name;
    const char *lua;
} attack;

static const attack ATTACKS[] = {
    {"big reason",
     "function check() return false end\n"
     "function migrate() return false, ('r'):rep(28 << 20) end\n"},
    {"big error",
     "function check() return false end\n"
     "function migrate() error(('e'):rep(28 << 20)) end\n"},
    {"big error object",
     "function check() return false end\n"
     "function migrate() error(setmetatable({}, {__tostring = function() return ('o'):rep(12 << 20) end})) end\n"},
    {"big log lines",
     "function check() return false end\n"
     "function migrate()\n"
     "  local s = ('l'):rep(4 << 20)\n"
     "  for i = 1, 2000 do log.info(s) end\n"
     "  return false, 'logged'\n"
     "end\n"},
    {"warn flood",
     "function check() return false end\n"
     "function migrate()\n"
     "  local s = ('w'):rep(4 << 20)\n"
     "  for i = 1, 200 do warn(s) end\n"
     "  return false, 'warned'\n"
     "end\n"},
    {"require at the limit",
     FILL
     "function check() return false end\n"
     "function migrate()\n"
     "  fill()\n"
     "  for i = 1, 400 do\n"
     "    pcall(require, 'big')\n"
     "    if i % 8 == 0 then hold[#hold] = nil fill() end\n"
     "  end\n"
     "  return false, 'required'\n"
     "end\n"},
    {"allocate to the limit",
     "function check() return false end\n"
     "function migrate() local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1 << 16) .. i end end\n"},
};
#define NATTACKS (sizeof ATTACKS / sizeof ATTACKS[0])

typedef struct job {
    rel_world *w;
    int rounds;
} job;

static long vm_hwm_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* In the child: every attack, `rounds` times; o->calls gets VmHWM. */
static int run_attacks(void *arg, rel_outcome *o)
{
    job *j = arg;
    for (int r = 0; r < j->rounds; r++) {
        for (size_t a = 0; a < NATTACKS; a++) {
            char *dir = rel_fmt("%s/v1.0.%zu", j->w->migrations, a);
            char *script = rel_fmt("%s/001_attack.lua", dir);
            rel_write(script, ATTACKS[a].lua);
            migrate_report *rep = NULL;
            int rc = migrate_run(NULL, NULL, &j->w->opts, &rep);
            char *json = migrate_report_json(rep);
            if (rc != MIGRATE_EFAILED && o->error[0] == '\0')
                snprintf(o->error, sizeof o->error, "%s: migrate_run returned %d (%s)",
                         ATTACKS[a].name, rc, migrate_report_error(rep));
            free(json);
            migrate_report_free(rep);
            remove(script);
            remove(dir);
            free(script);
            free(dir);
        }
    }
    o->calls = vm_hwm_kib();
    return 0;
}

int main(int argc, char **argv)
{
    rel_world w;
    rel_world_init(&w, "memory", 20000);
    w.opts.memory_limit = LIMIT;
    /* The module required at the limit: 1 MiB, mostly a comment. */
    size_t big = 1u << 20;
    char *mod = malloc(big + 32);
    memset(mod, '-', big);
    memcpy(mod + big, "\nreturn {}\n", 12);
    char *lib = rel_fmt("%s/lib/big.lua", w.migrations);
    rel_write(lib, mod);
    free(mod);
    free(lib);

    job j = {&w, rel_full(argc, argv) ? 16 : 4};
    rel_outcome o;
    rel_in_child(run_attacks, &j, &o);
    REL_CHECK(o.exited && o.status == 0, "the child crashed (signal %d, status %d)", o.sig,
              o.status);
    REL_CHECK(o.error[0] == '\0', "%s", o.error);
    long bound = (long)(LIMIT >> 10) + MEMORY_SLACK_KIB;
    /* AddressSanitizer's quarantine and shadow, or valgrind's own heap,
     * make the peak meaningless there; those builds still check that every
     * attack ends in a failed migration, and for leaks. */
    const char *preload = getenv("LD_PRELOAD");
    bool instrumented = SANITIZED || (preload != NULL && strstr(preload, "vgpreload") != NULL);
    if (instrumented)
        printf("memory: instrumented build, the RSS bound is not checked\n");
    REL_CHECK(instrumented || (o.calls > 0 && o.calls <= bound),
              "peak RSS %ld KiB is over memory_limit + slack (%ld KiB)", o.calls, bound);
    printf("memory: %d rounds of %zu attacks, memory_limit %u KiB, peak RSS %ld KiB, bound %ld KiB\n",
           j.rounds, NATTACKS, LIMIT >> 10, o.calls, bound);
    rel_case();
    rel_world_free(&w);
    return rel_summary();
}
