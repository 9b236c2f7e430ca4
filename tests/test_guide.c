/* The authoring guide's samples run, and the editor files match the sandbox.
 *
 * Every ```lua block of migrations/README.md is run for real through
 * migrate_run() in a fresh world (a temp migrations tree and home), one
 * cmocka test per block, named after the line of its fence. The tests run
 * from the repository root, as `make test` does.
 *
 * - A block that defines both check() and migrate() (`function check(` or
 *   `check = function`, and the same for migrate) is a whole migration:
 *   written as migrations/v1.1.0/001_sample.lua and run from 1.0.0 to 1.1.0.
 * - Any other block is the body of a migrate() whose check() is false before
 *   it runs and true after: it must run to its end without raising.
 * - The real migrations/lib/ is copied into every world, so samples can
 *   require("teleclaude").
 *
 * An HTML comment right before the fence (it may span lines; nothing may
 * stand between it and the fence) says what the block needs and does, as
 * one JSON object whose keys are all optional:
 *
 *   <!-- sample: {"home": {".teleclaude/config.json": {"api_url": "x"}}} -->
 *
 *   home     files to create in the home first: a string is the content,
 *            any other JSON value is written as JSON (one line + "\n")
 *   fails    the run must fail, with this text in its error (the "bad"
 *            examples); without it the run must succeed
 *   outcome  what a whole migration must end as: "applied" (the default)
 *            or "skipped_check"
 *   after    files the home must hold afterwards: a string is the exact
 *            content, another JSON value must equal the file's JSON (key
 *            order included), null means the file must not exist
 *   log      text that one of the run's log lines must contain
 *   as       also save this block at that path of the migrations tree
 *            ("lib/paths.lua", "v1.1.0/helpers.lua") for every later block
 *
 * A failure names README.md:<line of the fence> and what went wrong. */
#include "testutil.h"

#include <cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUIDE "migrations/README.md"
#define MAX_SAVED 16

typedef struct sample {
    int line;         /* of the ```lua fence in the guide */
    char *code;
    cJSON *marker;    /* the parsed <!-- sample: ... --> or NULL */
    size_t nsaved;    /* blocks marked "as" before this one */
} sample;

typedef struct saved_file {
    const char *rel;
    const char *code;
} saved_file;

static sample *samples;
static size_t nsamples;
static saved_file saved[MAX_SAVED];
static size_t nsaved;

/* ---- reading the guide ------------------------------------------------- */

static char *append(char *buf, const char *text, size_t len)
{
    size_t old = buf != NULL ? strlen(buf) : 0;
    char *out = realloc(buf, old + len + 1);
    assert_non_null(out);
    memcpy(out + old, text, len);
    out[old + len] = '\0';
    return out;
}

static cJSON *parse_marker(const char *text, int line)
{
    const char *start = strstr(text, "<!-- sample:") + strlen("<!-- sample:");
    const char *end = strstr(start, "-->");
    char *json = strndup(start, (size_t)(end - start));
    cJSON *marker = cJSON_Parse(json);
    free(json);
    if (marker == NULL || !cJSON_IsObject(marker)) {
        fprintf(stderr, "%s:%d: the sample comment is not a JSON object\n", GUIDE, line);
        exit(1);
    }
    return marker;
}

/* Splits the guide into its lua blocks. A malformed guide (a comment with
 * no block after it, an unclosed block) stops the program: it is a broken
 * test input, not a failing sample. */
static void read_guide(void)
{
    char *text = tu_read(GUIDE, NULL);
    if (text == NULL) {
        fprintf(stderr, "cannot read %s: run the test from the repository root\n", GUIDE);
        exit(1);
    }
    char *comment = NULL, *code = NULL;
    bool in_comment = false, in_lua = false, in_other = false;
    int line = 0, comment_line = 0, fence = 0;
    for (char *p = text, *next; *p != '\0'; p = next) {
        next = strchr(p, '\n');
        next = next != NULL ? next + 1 : p + strlen(p);
        size_t len = (size_t)(next - p);
        line++;
        if (in_lua) {
            if (strncmp(p, "```", 3) == 0) {
                samples = realloc(samples, (nsamples + 1) * sizeof *samples);
                assert_non_null(samples);
                cJSON *marker = comment != NULL ? parse_marker(comment, comment_line) : NULL;
                samples[nsamples++] = (sample){fence, code != NULL ? code : strdup(""), marker,
                                               nsaved};
                const cJSON *as = cJSON_GetObjectItem(marker, "as");
                if (cJSON_IsString(as) && nsaved == MAX_SAVED) {
                    fprintf(stderr, "%s:%d: more than %d blocks marked \"as\"\n", GUIDE, fence,
                            MAX_SAVED);
                    exit(1);
                }
                if (cJSON_IsString(as))
                    saved[nsaved++] = (saved_file){as->valuestring, samples[nsamples - 1].code};
                free(comment);
                comment = code = NULL;
                in_lua = false;
            } else {
                code = append(code, p, len);
            }
        } else if (in_other) {
            in_other = strncmp(p, "```", 3) != 0;
        } else if (in_comment || strncmp(p, "<!-- sample:", 12) == 0) {
            if (!in_comment)
                comment_line = line;
            comment = append(comment, p, len);
            in_comment = strstr(comment, "-->") == NULL;
        } else if (strncmp(p, "```lua", 6) == 0) {
            in_lua = true;
            fence = line;
        } else if (strncmp(p, "```", 3) == 0) {
            in_other = true;
        }
        if (comment != NULL && !in_comment && !in_lua && strncmp(p, "<!-- sample:", 12) != 0 &&
            strstr(p, "-->") == NULL) {
            fprintf(stderr, "%s:%d: a sample comment must stand right before a ```lua block\n",
                    GUIDE, comment_line);
            exit(1);
        }
    }
    if (in_lua || in_comment) {
        fprintf(stderr, "%s:%d: unclosed block or comment\n", GUIDE, in_lua ? fence : comment_line);
        exit(1);
    }
    free(text);
}

/* ---- running one sample ---------------------------------------------------- */

static bool defines(const char *code, const char *name)
{
    char a[64], b[64];
    snprintf(a, sizeof a, "function %s(", name);
    snprintf(b, sizeof b, "%s = function", name);
    return strstr(code, a) != NULL || strstr(code, b) != NULL;
}

static bool is_whole_migration(const sample *s)
{
    return defines(s->code, "check") && defines(s->code, "migrate");
}

static void copy_lib(tu_world *w)
{
    DIR *dir = opendir("migrations/lib");
    assert_non_null(dir);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".lua") != 0)
            continue;
        char *src = tu_path("migrations/lib", e->d_name);
        char *text = tu_read(src, NULL);
        char *rel = tu_path("lib", e->d_name);
        assert_non_null(text);
        tu_script(w, rel, text);
        free(src);
        free(text);
        free(rel);
    }
    closedir(dir);
}

static void seed_home(tu_world *w, const cJSON *home)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, home)
    {
        if (cJSON_IsString(f)) {
            tu_write(w->home, f->string, f->valuestring);
            continue;
        }
        char *json = cJSON_PrintUnformatted(f);
        char *text = append(json, "\n", 1);
        tu_write(w->home, f->string, text);
        free(text);
    }
}

/* The script that runs the sample: as it is, or as a migrate() body. The
 * wrapper's opening stays on line 1, so the block's line n is the script's
 * line n + 1. */
static char *script_of(const sample *s)
{
    if (is_whole_migration(s))
        return strdup(s->code);
    static const char head[] = "local done = false; function check() return done end; "
                               "function migrate() local function sample()\n";
    static const char tail[] = "\nend; sample(); done = true; return true end\n";
    char *out = append(NULL, head, strlen(head));
    out = append(out, s->code, strlen(s->code));
    return append(out, tail, strlen(tail));
}

typedef struct logs {
    char *text;
} logs;

static int collect_log(const migrate_event *ev, void *payload)
{
    logs *l = payload;
    if (ev->kind != MIGRATE_EVENT_LOG)
        return 0;
    l->text = append(l->text, ev->message, strlen(ev->message));
    l->text = append(l->text, "\n", 1);
    return 0;
}

static void check_after(const sample *s, tu_world *w, const cJSON *after)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, after)
    {
        char *got = tu_read(w->home, f->string);
        if (cJSON_IsNull(f)) {
            if (got != NULL)
                fail_msg("%s:%d: ~/%s should not exist after the run", GUIDE, s->line, f->string);
            continue;
        }
        if (got == NULL)
            fail_msg("%s:%d: ~/%s is missing after the run", GUIDE, s->line, f->string);
        bool same;
        char *want;
        if (cJSON_IsString(f)) {
            want = strdup(f->valuestring);
            same = strcmp(got, want) == 0;
        } else {
            cJSON *parsed = cJSON_Parse(got);
            char *have = parsed != NULL ? cJSON_PrintUnformatted(parsed) : strdup("(not JSON)");
            want = cJSON_PrintUnformatted(f);
            same = strcmp(have, want) == 0;
            free(got);
            got = have;
            cJSON_Delete(parsed);
        }
        if (!same)
            fail_msg("%s:%d: ~/%s after the run is\n%s\nnot\n%s", GUIDE, s->line, f->string, got,
                     want);
        free(want);
        free(got);
    }
}

/* The whole error text of a run: its run-level error and the failed
 * migration's message. */
static char *error_of(const migrate_report *r)
{
    const migrate_result *failed = migrate_report_failed(r);
    const char *run_error = migrate_report_error(r);
    char *text = append(NULL, run_error ? run_error : "", strlen(run_error ? run_error : ""));
    if (failed != NULL && failed->error != NULL) {
        text = append(text, "\n", 1);
        text = append(text, failed->error, strlen(failed->error));
    }
    return text;
}

static void check_result(const sample *s, int rc, const migrate_report *r, const char *log_text)
{
    const char *offset = is_whole_migration(s) ? "n" : "n - 1";
    const cJSON *fails = cJSON_GetObjectItem(s->marker, "fails");
    char *error = error_of(r);
    if (cJSON_IsString(fails)) {
        if (rc == MIGRATE_OK)
            fail_msg("%s:%d: this sample is marked to fail (\"%s\") but it ran fine", GUIDE,
                     s->line, fails->valuestring);
        if (strstr(error, fails->valuestring) == NULL)
            fail_msg("%s:%d: failed as it should, but its error lacks \"%s\":\n%s\n(line n of "
                     "001_sample.lua is README.md line %d + %s)",
                     GUIDE, s->line, fails->valuestring, error, s->line, offset);
    } else if (rc != MIGRATE_OK) {
        fail_msg("%s:%d: this sample fails (%s):\n%s\n(line n of 001_sample.lua is README.md "
                 "line %d + %s)",
                 GUIDE, s->line, migrate_strerror(rc), error, s->line, offset);
    } else if (is_whole_migration(s)) {
        const cJSON *want = cJSON_GetObjectItem(s->marker, "outcome");
        const char *expected = cJSON_IsString(want) ? want->valuestring : "applied";
        const char *got = migrate_outcome_name(migrate_report_get(r, 0)->outcome);
        if (strcmp(got, expected) != 0)
            fail_msg("%s:%d: the migration ended %s, not %s", GUIDE, s->line, got, expected);
    }
    const cJSON *log = cJSON_GetObjectItem(s->marker, "log");
    if (cJSON_IsString(log) && strstr(log_text, log->valuestring) == NULL)
        fail_msg("%s:%d: no log line contains \"%s\"; the log was:\n%s", GUIDE, s->line,
                 log->valuestring, log_text);
    free(error);
}

static void test_sample(void **state)
{
    const sample *s = *state;
    tu_world w;
    tu_world_init(&w);
    /* The timeout sample waits out its timeout, so that one is short; every
     * other sample gets a timeout it never meets, even under valgrind on a
     * loaded machine (the memory sample once ran past 1.5 s there and
     * failed as a timeout). The memory limit is small enough that the
     * limit sample is quick. */
    const cJSON *fails = cJSON_GetObjectItem(s->marker, "fails");
    bool waits_for_timeout = cJSON_IsString(fails) && strstr(fails->valuestring, "timed out") != NULL;
    w.opts.timeout_ms = waits_for_timeout ? 1500 : 120000;
    w.opts.memory_limit = 8u << 20;
    logs l = {strdup("")};
    w.opts.on_event = collect_log;
    w.opts.payload = &l;
    copy_lib(&w);
    for (size_t i = 0; i < s->nsaved; i++)
        tu_script(&w, saved[i].rel, saved[i].code);
    seed_home(&w, cJSON_GetObjectItem(s->marker, "home"));
    char *script = script_of(s);
    tu_script(&w, "v1.1.0/001_sample.lua", script);
    free(script);
    migrate_report *r = NULL;
    int rc = tu_run(&w, "1.0.0", "1.1.0", &r);
    check_result(s, rc, r, l.text);
    check_after(s, &w, cJSON_GetObjectItem(s->marker, "after"));
    migrate_report_free(r);
    free(l.text);
    tu_world_free(&w);
}

/* ---- the editor files --------------------------------------------------------- */

/* Runs inside the sandbox: compares what the environment really holds with
 * the names lua/meta/migrate.lua annotates and .luacheckrc allows (both
 * copied into the home). Any difference fails the migration, listed. */
static const char CHECK_EDITOR_FILES[] =
    "local function sandbox_names()\n"
    "  local names = {}\n"
    "  for k, v in pairs(_G) do\n"
    "    if k ~= 'check' and k ~= 'migrate' then names[k] = true end\n"
    "    if (type(v) == 'table' or k == 'migration') and k ~= '_G' then -- migration (a userdata) through its __pairs\n"
    "      for f in pairs(v) do names[k .. '.' .. f] = true end\n"
    "    end\n"
    "  end\n"
    "  return names\n"
    "end\n"
    "local function meta_names()\n"
    "  local text = fs.read('~/meta.lua')\n"
    "  local names = {}\n"
    "  for m, f in text:gmatch('\\nfunction ([%w_]+)%.([%w_]+)%(') do names[m .. '.' .. f] = true end\n"
    "  for m, f in text:gmatch('\\n([%w_]+)%.([%w_]+) = ') do names[m .. '.' .. f] = true end\n"
    "  local class = text:match('@class migrate%.Migration\\n(.-)\\n[^-]')\n"
    "  for f in class:gmatch('@field ([%w_]+)') do names['migration.' .. f] = true end\n"
    "  return names\n"
    "end\n"
    "local function luacheck_names()\n"
    "  local env = { stds = {}, files = {}, ipairs = ipairs, pairs = pairs, type = type }\n"
    "  assert(load(fs.read('~/luacheckrc'), '.luacheckrc', 't', env))()\n"
    "  local names = {}\n"
    "  for k, v in pairs(env.stds.migration_env.read_globals) do\n"
    "    if type(k) == 'number' then names[v] = true\n"
    "    else\n"
    "      names[k] = true\n"
    "      for _, f in ipairs(v.fields) do names[k .. '.' .. f] = true end\n"
    "    end\n"
    "  end\n"
    "  return names\n"
    "end\n"
    "local function differences(a, an, b, bn, only_modules, out)\n"
    "  for k in pairs(a) do\n"
    "    local m = k:match('^([%w_]+)%.')\n"
    "    local relevant = not only_modules or (m and (m == 'fs' or m == 'json' or m == 'log'\n"
    "      or m == 'semver' or m == 'migration' or m == 'dotenv'))\n"
    "    if relevant and not b[k] then out[#out + 1] = k .. ' is in ' .. an .. ' but not in ' .. bn end\n"
    "  end\n"
    "end\n"
    "local done = false\n"
    "function check() return done end\n"
    "function migrate()\n"
    "  local real, meta, rc = sandbox_names(), meta_names(), luacheck_names()\n"
    "  local out = {}\n"
    "  differences(real, 'the sandbox', meta, 'lua/meta/migrate.lua', true, out)\n"
    "  differences(meta, 'lua/meta/migrate.lua', real, 'the sandbox', true, out)\n"
    "  -- Deprecated math functions a Lua built with LUA_COMPAT_MATHLIB (as\n"
    "  -- Debian's is) still has; luacheck rightly flags them.\n"
    "  for _, f in ipairs({ 'atan2', 'cosh', 'frexp', 'ldexp', 'log10', 'pow', 'sinh', 'tanh' }) do\n"
    "    rc['math.' .. f] = real['math.' .. f]\n"
    "  end\n"
    "  differences(real, 'the sandbox', rc, '.luacheckrc', false, out)\n"
    "  differences(rc, '.luacheckrc', real, 'the sandbox', false, out)\n"
    "  table.sort(out)\n"
    "  if #out > 0 then return false, table.concat(out, '; ') end\n"
    "  done = true\n"
    "  return true\n"
    "end\n";

static void test_meta_and_luacheckrc_name_exactly_what_the_sandbox_has(void **state)
{
    (void)state;
    tu_world w;
    tu_world_init(&w);
    char *meta = tu_read("lua/meta/migrate.lua", NULL);
    char *rc = tu_read(".luacheckrc", NULL);
    assert_non_null(meta);
    assert_non_null(rc);
    tu_write(w.home, "meta.lua", meta);
    tu_write(w.home, "luacheckrc", rc);
    tu_script(&w, "v1.1.0/001_names.lua", CHECK_EDITOR_FILES);
    migrate_report *r = NULL;
    /* Both bounds, so that from_version and to_version are set. */
    int code = tu_run(&w, "1.0.0", "1.1.0", &r);
    if (code != MIGRATE_OK) {
        char *error = error_of(r);
        fail_msg("%s", error);
    }
    migrate_report_free(r);
    free(meta);
    free(rc);
    tu_world_free(&w);
}

int main(void)
{
    read_guide();
    struct CMUnitTest *tests = calloc(nsamples + 1, sizeof *tests);
    assert_non_null(tests);
    for (size_t i = 0; i < nsamples; i++) {
        char name[64];
        snprintf(name, sizeof name, "README.md:%d", samples[i].line);
        tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(test_sample, &samples[i]);
        tests[i].name = strdup(name);
    }
    tests[nsamples] = (struct CMUnitTest)cmocka_unit_test(
        test_meta_and_luacheckrc_name_exactly_what_the_sandbox_has);
    int failed = _cmocka_run_group_tests("guide", tests, nsamples + 1, NULL, NULL);
    for (size_t i = 0; i < nsamples; i++) {
        free((char *)tests[i].name);
        free(samples[i].code);
        cJSON_Delete(samples[i].marker);
    }
    free(tests);
    free(samples);
    return failed;
}
