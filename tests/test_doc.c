/* test_doc.c - documents (SPEC §5.1) through json.edit, and fs.edit: every
 * byte an edit did not mean to change stays as it was; a refused or wrong
 * edit leaves the document as it was. */
#include "internal.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

typedef struct fixture {
    char *home;
    const char *roots[2];
    const char *protected_paths[1];
    mig_fsenv env;
    lua_State *L;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    char *dir = tu_tmpdir();
    f->home = realpath(dir, NULL);
    free(dir);
    assert_non_null(f->home);
    f->roots[0] = f->home;
    f->env = (mig_fsenv){f->home, f->roots, f->protected_paths, NULL, NULL, NULL, NULL};
    lua_State *L = f->L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    mig_open_json(L);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "json");
    mig_open_fs(L, &f->env);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "fs");
    const mig_embedded *chunk = mig_embedded_find("lua/fs.lua");
    assert_non_null(chunk);
    assert_int_equal(luaL_loadbuffer(L, chunk->data, chunk->len, "@lua/fs.lua"), LUA_OK);
    lua_insert(L, -2);           /* json, chunk, fs */
    lua_pushvalue(L, -3);        /* json, chunk, fs, json */
    assert_int_equal(lua_pcall(L, 2, 0, 0), LUA_OK);
    lua_pop(L, 1);
    /* the document layer itself, for the tests that give it a backend */
    mig_push_doc(L);
    lua_setglobal(L, "doc");
    lua_pushstring(L, f->home);
    lua_setglobal(L, "HOME");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    lua_close(f->L);
    tu_rmtree(f->home);
    free(f->home);
    free(f);
    return 0;
}

static char last_error[8192];
static char last_result[65536];

/* Runs code as chunk "script.lua"; its first result (as a string) goes to
 * last_result, an error to last_error. */
static int run(lua_State *L, const char *code)
{
    lua_settop(L, 0);
    int rc = luaL_loadbuffer(L, code, strlen(code), "@script.lua");
    if (rc == LUA_OK)
        rc = lua_pcall(L, 0, 1, 0);
    last_error[0] = last_result[0] = '\0';
    const char *s = lua_tostring(L, -1);
    snprintf(rc == LUA_OK ? last_result : last_error, rc == LUA_OK ? sizeof last_result : sizeof last_error,
             "%s", s != NULL ? s : "");
    lua_settop(L, 0);
    return rc;
}

#define assert_lua_ok(f, code)                                                  \
    do {                                                                        \
        if (run((f)->L, (code)) != LUA_OK)                                      \
            fail_msg("script failed:\n%s\n-> %s", (code), last_error);          \
    } while (0)

#define assert_lua_error(f, code, expected)                                     \
    do {                                                                        \
        if (run((f)->L, (code)) == LUA_OK)                                      \
            fail_msg("script did not fail:\n%s", (code));                       \
        if (strstr(last_error, (expected)) == NULL)                             \
            fail_msg("script:\n%s\n-> %s\nexpected: %s", (code), last_error, (expected)); \
    } while (0)

static void set_text(fixture *f, const char *name, const char *text)
{
    lua_pushstring(f->L, text);
    lua_setglobal(f->L, name);
}

/* Runs `edit` (Lua over a document `d` of `before`) and asserts the text
 * it leaves is exactly `after`. */
static void assert_edit(fixture *f, const char *before, const char *edit, const char *after)
{
    char code[4096];
    set_text(f, "BEFORE", before);
    snprintf(code, sizeof code, "local d = json.edit(BEFORE)\n%s\nreturn d:text()", edit);
    assert_lua_ok(f, code);
    if (strcmp(last_result, after) != 0)
        fail_msg("edit:\n%s\ngave:\n%s\nexpected:\n%s", edit, last_result, after);
}

/* ---- a 4-space config: each method changes only its entry's lines ------- */

static const char config4[] =
    "{\n"
    "    \"name\": \"teleclaude\",\n"
    "    \"redis\": {\n"
    "        \"url\": \"redis://localhost\",\n"
    "        \"db\": 0\n"
    "    },\n"
    "    \"computer\": {\n"
    "        \"trusted_dirs\": [\n"
    "            {\"path\": \"/srv\"},\n"
    "            {\"path\": \"/home\"}\n"
    "        ]\n"
    "    },\n"
    "    \"tags\": [\"a\", \"b\"]\n"
    "}";

static void set_replaces_one_value(void **state)
{
    assert_edit(*state, config4, "d:set('redis.url', 'redis://cache')",
                "{\n"
                "    \"name\": \"teleclaude\",\n"
                "    \"redis\": {\n"
                "        \"url\": \"redis://cache\",\n"
                "        \"db\": 0\n"
                "    },\n"
                "    \"computer\": {\n"
                "        \"trusted_dirs\": [\n"
                "            {\"path\": \"/srv\"},\n"
                "            {\"path\": \"/home\"}\n"
                "        ]\n"
                "    },\n"
                "    \"tags\": [\"a\", \"b\"]\n"
                "}");
    /* an array path into a list of maps, and a one-line object */
    assert_edit(*state, config4, "d:set({'computer', 'trusted_dirs', 2, 'path'}, '/data')",
                "{\n"
                "    \"name\": \"teleclaude\",\n"
                "    \"redis\": {\n"
                "        \"url\": \"redis://localhost\",\n"
                "        \"db\": 0\n"
                "    },\n"
                "    \"computer\": {\n"
                "        \"trusted_dirs\": [\n"
                "            {\"path\": \"/srv\"},\n"
                "            {\"path\": \"/data\"}\n"
                "        ]\n"
                "    },\n"
                "    \"tags\": [\"a\", \"b\"]\n"
                "}");
    /* an item before the last (the scan stops at it), a key added to it,
     * and the first item of a one-line array */
    assert_edit(*state, config4,
                "d:set({'computer', 'trusted_dirs', 1, 'desc'}, 'x')\n"
                "d:set({'tags', 1}, 'z')",
                "{\n"
                "    \"name\": \"teleclaude\",\n"
                "    \"redis\": {\n"
                "        \"url\": \"redis://localhost\",\n"
                "        \"db\": 0\n"
                "    },\n"
                "    \"computer\": {\n"
                "        \"trusted_dirs\": [\n"
                "            {\"path\": \"/srv\", \"desc\": \"x\"},\n"
                "            {\"path\": \"/home\"}\n"
                "        ]\n"
                "    },\n"
                "    \"tags\": [\"z\", \"b\"]\n"
                "}");
}

static void set_adds_missing_keys_last_with_parents(void **state)
{
    assert_edit(*state, config4, "d:set('deployment.channel', 'alpha')",
                "{\n"
                "    \"name\": \"teleclaude\",\n"
                "    \"redis\": {\n"
                "        \"url\": \"redis://localhost\",\n"
                "        \"db\": 0\n"
                "    },\n"
                "    \"computer\": {\n"
                "        \"trusted_dirs\": [\n"
                "            {\"path\": \"/srv\"},\n"
                "            {\"path\": \"/home\"}\n"
                "        ]\n"
                "    },\n"
                "    \"tags\": [\"a\", \"b\"],\n"
                "    \"deployment\": {\n"
                "        \"channel\": \"alpha\"\n"
                "    }\n"
                "}");
    assert_edit(*state, config4, "d:set('redis.pool', {size = 4})",
                "{\n"
                "    \"name\": \"teleclaude\",\n"
                "    \"redis\": {\n"
                "        \"url\": \"redis://localhost\",\n"
                "        \"db\": 0,\n"
                "        \"pool\": {\n"
                "            \"size\": 4\n"
                "        }\n"
                "    },\n"
                "    \"computer\": {\n"
                "        \"trusted_dirs\": [\n"
                "            {\"path\": \"/srv\"},\n"
                "            {\"path\": \"/home\"}\n"
                "        ]\n"
                "    },\n"
                "    \"tags\": [\"a\", \"b\"]\n"
                "}");
}

static void insert_after_and_before(void **state)
{
    assert_edit(*state, config4,
                "d:insert('deployment', {channel = 'alpha'}, {after = 'name'})\n"
                "d:insert({'redis', 'host'}, 'h', {before = 'url'})",
                "{\n"
                "    \"name\": \"teleclaude\",\n"
                "    \"deployment\": {\n"
                "        \"channel\": \"alpha\"\n"
                "    },\n"
                "    \"redis\": {\n"
                "        \"host\": \"h\",\n"
                "        \"url\": \"redis://localhost\",\n"
                "        \"db\": 0\n"
                "    },\n"
                "    \"computer\": {\n"
                "        \"trusted_dirs\": [\n"
                "            {\"path\": \"/srv\"},\n"
                "            {\"path\": \"/home\"}\n"
                "        ]\n"
                "    },\n"
                "    \"tags\": [\"a\", \"b\"]\n"
                "}");
}

static void delete_first_middle_last_only(void **state)
{
    fixture *f = *state;
    assert_edit(f, "{\n  \"a\": 1,\n  \"b\": 2,\n  \"c\": 3\n}", "assert(d:delete('a'))",
                "{\n  \"b\": 2,\n  \"c\": 3\n}");
    assert_edit(f, "{\n  \"a\": 1,\n  \"b\": 2,\n  \"c\": 3\n}", "assert(d:delete('b'))",
                "{\n  \"a\": 1,\n  \"c\": 3\n}");
    assert_edit(f, "{\n  \"a\": 1,\n  \"b\": 2,\n  \"c\": 3\n}\n", "assert(d:delete('c'))",
                "{\n  \"a\": 1,\n  \"b\": 2\n}\n");
    assert_edit(f, "{\"x\": {\n  \"a\": 1\n}}", "assert(d:delete('x.a'))", "{\"x\": {}}");
    assert_edit(f, "[1, 2, 3]", "assert(d:delete({2}))", "[1, 3]");
    /* absent: false, nothing changes */
    assert_edit(f, config4, "assert(d:delete('redis.password') == false)\n"
                            "assert(d:delete('nope.deeper') == false)\nassert(not d:changed())",
                config4);
}

static void rename_keeps_the_place(void **state)
{
    assert_edit(*state, "{\n    \"a\": 1,\n    \"b\": {\"c\": 2},\n    \"d\": 3\n}",
                "d:rename('b', 'bee')\nassert(table.concat(d:keys(), ',') == 'a,bee,d')",
                "{\n    \"a\": 1,\n    \"bee\": {\"c\": 2},\n    \"d\": 3\n}");
    /* every item of a list of maps */
    assert_edit(*state, "{\"dirs\": [{\"p\": 1}, {\"p\": 2}]}",
                "for i = 1, #d:get('dirs') do d:rename({'dirs', i, 'p'}, 'path') end",
                "{\"dirs\": [{\"path\": 1}, {\"path\": 2}]}");
}

static void move_reindents_into_the_target(void **state)
{
    assert_edit(*state,
                "{\n"
                "    \"logging\": {\n"
                "        \"level\": \"info\",\n"
                "        \"rotate\": {\n"
                "            \"days\": 7\n"
                "        }\n"
                "    },\n"
                "    \"deployment\": {\n"
                "        \"outputs\": {\n"
                "            \"file\": true\n"
                "        }\n"
                "    }\n"
                "}\n",
                "d:move('logging.rotate', {'deployment', 'outputs', 'rotate'})",
                "{\n"
                "    \"logging\": {\n"
                "        \"level\": \"info\"\n"
                "    },\n"
                "    \"deployment\": {\n"
                "        \"outputs\": {\n"
                "            \"file\": true,\n"
                "            \"rotate\": {\n"
                "                \"days\": 7\n"
                "            }\n"
                "        }\n"
                "    }\n"
                "}\n");
}

static void append_to_sequences(void **state)
{
    fixture *f = *state;
    assert_edit(f, config4, "d:append('tags', 'c')\nd:append('computer.trusted_dirs', {path = '/x'})",
                "{\n"
                "    \"name\": \"teleclaude\",\n"
                "    \"redis\": {\n"
                "        \"url\": \"redis://localhost\",\n"
                "        \"db\": 0\n"
                "    },\n"
                "    \"computer\": {\n"
                "        \"trusted_dirs\": [\n"
                "            {\"path\": \"/srv\"},\n"
                "            {\"path\": \"/home\"},\n"
                "            {\n"
                "                \"path\": \"/x\"\n"
                "            }\n"
                "        ]\n"
                "    },\n"
                "    \"tags\": [\"a\", \"b\", \"c\"]\n"
                "}");
    assert_edit(f, "{\n  \"l\": []\n}", "d:append('l', 1)", "{\n  \"l\": [\n    1\n  ]\n}");
}

/* ---- the file's own style ----------------------------------------------- */

static void style_is_kept(void **state)
{
    fixture *f = *state;
    /* tabs and CRLF */
    assert_edit(f, "{\r\n\t\"a\": {}\r\n}\r\n", "d:set('a.b', 1)\nd:set('c', 'x')",
                "{\r\n\t\"a\": {\r\n\t\t\"b\": 1\r\n\t},\r\n\t\"c\": \"x\"\r\n}\r\n");
    /* compact, no final newline */
    assert_edit(f, "{\"a\":1,\"b\":2}", "d:set('c', {1, 2})\nd:insert('z', true, {before = 'a'})",
                "{\"z\":true,\"a\":1,\"b\":2,\"c\":[1,2]}");
    /* an empty root in a pretty file */
    assert_edit(f, "{\n}\n", "d:set('a', 1)", "{\n  \"a\": 1\n}\n");
}

/* ---- reading ---------------------------------------------------------------- */

static void get_has_keys(void **state)
{
    fixture *f = *state;
    set_text(f, "CONFIG", config4);
    assert_lua_ok(f,
                  "local d = json.edit(CONFIG)\n"
                  "assert(d:get('redis.url') == 'redis://localhost')\n"
                  "assert(d:get({'computer', 'trusted_dirs', 1, 'path'}) == '/srv')\n"
                  "assert(d:get('redis.nope') == nil and d:get('name.deeper') == nil)\n"
                  "assert(d:has('redis.db') and not d:has('redis.x') and not d:has({'tags', 3}))\n"
                  "assert(table.concat(d:keys(), ',') == 'name,redis,computer,tags')\n"
                  "assert(table.concat(d:keys('redis'), ',') == 'url,db')\n"
                  "local copy = d:get('redis'); copy.url = 'changed'\n"
                  "assert(d:get('redis.url') == 'redis://localhost')\n"
                  "assert(tostring(d) == CONFIG and d:text() == CONFIG and not d:changed())\n"
                  "local n = json.edit('{\"n\": null}')\n"
                  "assert(n:has('n') and n:get('n') == json.null)");
    assert_lua_error(f, "json.edit(CONFIG):keys('tags')", "json.edit: keys tags: tags is not a mapping");
    assert_lua_error(f, "json.edit(CONFIG):keys('nope')", "keys nope: nope does not exist");
    assert_lua_error(f, "json.edit('{')", "json.edit: json.decode: invalid JSON");
}

/* ---- refusals leave the text as it was --------------------------------------- */

static void refusals_leave_the_text(void **state)
{
    fixture *f = *state;
    static const char *const cases[][2] = {
        {"d:set('', 1)", "json.edit: set: path is empty"},
        {"d:set({}, 1)", "json.edit: set: path is empty"},
        {"d:set('a..b', 1)", "has an empty key"},
        {"d:set({'a', 0}, 1)", "element 2 must be a string key or an index >= 1"},
        {"d:set({'a', 1.5}, 1)", "element 2 must be a string key or an index >= 1"},
        {"d:set({'a', true}, 1)", "element 2 must be a string key"},
        {"d:set(7, 1)", "must be a string or an array"},
        {"d:set('tags.x', 1)", "set tags.x: tags is not a mapping"},
        {"d:set({'tags', 3}, 'c')", "index 3 of tags is out of range (use append)"},
        {"d:set('name.x', 1)", "name is not a mapping"},
        {"d:set('redis.url', print)", "a value must be"},
        {"d:insert('name', 1)", "insert name: the key exists already"},
        {"d:insert('x', 1, {after = 'nope'})", "after names no key of the document"},
        {"d:insert('x', 1, {after = 'name', before = 'tags'})", "not both"},
        {"d:insert('x', 1, {comment = 'why'})", "JSON has no comments"},
        {"d:rename('name', 'tags')", "rename name: the key \"tags\" exists already"},
        {"d:rename('nope', 'x')", "the key does not exist"},
        {"d:move('nope', 'x')", "move nope to x: nope does not exist"},
        {"d:move('name', 'tags')", "tags exists already"},
        {"d:move('redis', 'redis.inner')", "cannot move an entry into itself"},
        {"d:move('name', 'nope.x')", "nope does not exist"},
        {"d:append('redis', 1)", "append redis: redis is not a sequence"},
        {"d:append('nope', 1)", "nope does not exist"},
        {"d:set('k', {[true] = 1})", "json.encode"},
    };
    set_text(f, "CONFIG", config4);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char code[1024];
        /* the error is raised at the script's line, and the text stays */
        snprintf(code, sizeof code,
                 "local d = json.edit(CONFIG)\n"
                 "local ok, err = pcall(function()\n%s\nend)\n"
                 "assert(not ok)\n"
                 "assert(d:text() == CONFIG, 'text changed')\n"
                 "assert(not d:changed())\n"
                 "error(err, 0)",
                 cases[i][0]);
        assert_lua_error(f, code, cases[i][1]);
        assert_lua_error(f, code, "script.lua:3:");
    }
}

static void equal_set_changes_nothing(void **state)
{
    fixture *f = *state;
    set_text(f, "CONFIG", "{\"a\": {\"y\": 2, \"x\": [1, {\"z\": null}]}, \"f\": 1.5}");
    assert_lua_ok(f,
                  "local d = json.edit(CONFIG)\n"
                  "d:set('a', {x = {1, {z = json.null}}, y = 2})\n"
                  "d:set('f', 1.5)\n"
                  "d:set('a.y', 2)\n"
                  "assert(not d:changed() and d:text() == CONFIG)\n"
                  /* 2.0 is not 2: a float is written as one */
                  "d:set('a.y', 2.0)\n"
                  "assert(d:changed() and d:get('a.y') == 2.0 and math.type(d:get('a.y')) == 'float')");
}

/* ---- the check after each edit --------------------------------------------------- */

static void a_wrong_splice_is_caught(void **state)
{
    fixture *f = *state;
    set_text(f, "CONFIG", "{\"a\": 1, \"b\": 2}");
    /* a backend that also changes something it was not asked to, one that
     * reorders keys, one that breaks the syntax, and one that fails */
    assert_lua_error(f,
                     "local b = {name = 'test', decode = json.decode}\n"
                     "function b.set(text) return (text:gsub('2', '3')) end\n"
                     "local d = doc.new(b, CONFIG)\n"
                     "local ok, err = pcall(d.set, d, 'a', 5)\n"
                     "assert(d:text() == CONFIG and not d:changed())\n"
                     "error(err, 0)",
                     "test.edit: set a: the edited text does not decode to the intended value");
    assert_lua_error(f,
                     "local b = {name = 'test', decode = json.decode}\n"
                     "function b.rename() return '{\"b\": 2, \"c\": 1}' end\n"
                     "local d = doc.new(b, CONFIG)\n"
                     "local ok, err = pcall(d.rename, d, 'a', 'c')\n"
                     "assert(d:text() == CONFIG)\n"
                     "error(err, 0)",
                     "test.edit: rename a: the edited text does not decode to the intended value");
    assert_lua_error(f,
                     "local b = {name = 'test', decode = json.decode}\n"
                     "function b.delete() return '{\"b\": 2,}' end\n"
                     "local d = doc.new(b, CONFIG)\n"
                     "local ok, err = pcall(d.delete, d, 'a')\n"
                     "assert(d:text() == CONFIG)\n"
                     "error(err, 0)",
                     "test.edit: delete a: the edited text does not parse");
    /* a backend that changes nothing while the value should change: the
     * edit is refused, not taken as done */
    assert_lua_error(f,
                     "local b = {name = 'test', decode = json.decode}\n"
                     "function b.set(text) return text end\n"
                     "local d = doc.new(b, CONFIG)\n"
                     "local ok, err = pcall(d.set, d, 'a', 5)\n"
                     "assert(d:text() == CONFIG and not d:changed() and d:get('a') == 1)\n"
                     "error(err, 0)",
                     "test.edit: set a: the edit would change nothing in the text, yet the value differs");
    assert_lua_error(f,
                     "local b = {name = 'test', decode = json.decode}\n"
                     "function b.append() error('inside a flow sequence', 0) end\n"
                     "local d = doc.new({name = 'test', decode = json.decode, append = b.append}, '{\"l\": []}')\n"
                     "d:append('l', 1)",
                     "script.lua:4: test.edit: append l: inside a flow sequence");
}

/* A key an object holds twice: decoding keeps the last, so no edit may
 * touch it (found by fuzz_edit: a set of the first "b" to the value it
 * already had changed no byte and was taken as done). Edits elsewhere in
 * the object still work. */
static void duplicate_keys_are_refused(void **state)
{
    fixture *f = *state;
    set_text(f, "CONFIG", "{\"a\": 1, \"b\": 1, \"b\": 2}");
    static const char *const edits[] = {
        "d:set('b', 1)", "d:set('b', 3)", "d:delete('b')", "d:rename('b', 'c')",
        "d:move('b', 'c')", "d:insert('c', 1, {after = 'b'})",
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char code[1024];
        snprintf(code, sizeof code,
                 "local d = json.edit(CONFIG)\n"
                 "local ok, err = pcall(function() %s end)\n"
                 "assert(not ok and d:text() == CONFIG and not d:changed(), 'not refused')\n"
                 "error(err, 0)",
                 edits[i]);
        assert_lua_error(f, code, "the key \"b\" is in the object more than once");
    }
    assert_edit(f, "{\"a\": 1, \"b\": 1, \"b\": 2}", "d:set('a', 5)", "{\"a\": 5, \"b\": 1, \"b\": 2}");
}

/* ---- a realistic 2-space config -------------------------------------------------- */

static void two_space_config(void **state)
{
    assert_edit(*state,
                "{\n"
                "  \"update\": {\n"
                "    \"channel\": \"stable\",\n"
                "    \"check_hours\": 6\n"
                "  },\n"
                "  \"sessions_dir\": \"~/sessions\",\n"
                "  \"discord\": {\n"
                "    \"guild\": 123456789012345\n"
                "  }\n"
                "}\n",
                "d:move('update.channel', 'discord.channel')\n"
                "d:delete('update.check_hours')\n"
                "d:rename('sessions_dir', 'sessions_path')\n"
                "d:set('discord.guild', 42)",
                "{\n"
                "  \"update\": {},\n"
                "  \"sessions_path\": \"~/sessions\",\n"
                "  \"discord\": {\n"
                "    \"guild\": 42,\n"
                "    \"channel\": \"stable\"\n"
                "  }\n"
                "}\n");
}

/* ---- fs.edit ------------------------------------------------------------------------ */

static void fs_edit_writes_only_changes(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "conf/app.json", "{\n    \"a\": 1\n}");
    char *path = tu_path(f->home, "conf/app.json");
    assert_int_equal(chmod(path, 0640), 0);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    assert_lua_ok(f, "return tostring(fs.edit('~/conf/app.json', function(d) d:set('a', 1) end))");
    assert_string_equal(last_result, "false");
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino); /* not even rewritten */
    assert_lua_ok(f, "return tostring(fs.edit('~/conf/app.json', function(d) d:set('b', true) end))");
    assert_string_equal(last_result, "true");
    char *text = tu_read(f->home, "conf/app.json");
    assert_string_equal(text, "{\n    \"a\": 1,\n    \"b\": true\n}");
    free(text);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_mode & 07777, 0640);
    /* the format given, for a name that says nothing */
    tu_write(f->home, "conf/settings", "{\"l\": [1]}");
    assert_lua_ok(f, "return tostring(fs.edit('~/conf/settings', function(d) d:append('l', 2) end, 'json'))");
    text = tu_read(f->home, "conf/settings");
    assert_string_equal(text, "{\"l\": [1, 2]}");
    free(text);
    free(path);
}

static void fs_edit_errors_name_the_file(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "bad.json", "{");
    tu_write(f->home, "ok.json", "{\"a\": 1}");
    tu_write(f->home, "notes.txt", "x");
    assert_lua_error(f, "fs.edit('~/bad.json', function() end)", "fs.edit: \"~/bad.json\": json.edit:");
    assert_lua_error(f, "fs.edit('~/missing.json', function() end)", "fs.edit:");
    assert_lua_error(f, "fs.edit('~/notes.txt', function() end)",
                     "fs.edit: \"~/notes.txt\": cannot tell the format");
    assert_lua_error(f, "fs.edit('~/notes.txt', function() end, 'toml')", "unknown format \"toml\"");
    assert_lua_error(f, "fs.edit('~/ok.json')", "bad argument #2 to 'edit'");
    /* a failing edit inside fn: the script's line, the file, nothing written */
    assert_lua_error(f, "fs.edit('~/ok.json', function(d)\n d:set('b', 2)\n d:insert('a', 1)\nend)",
                     "script.lua:3: json.edit: insert a: the key exists already (use set) (editing \"~/ok.json\"; "
                     "nothing was written)");
    char *text = tu_read(f->home, "ok.json");
    assert_string_equal(text, "{\"a\": 1}");
    free(text);
    /* yaml and .env documents come from their own modules */
    tu_write(f->home, ".env", "A=1\n");
    tu_write(f->home, "prod.env", "A=1\n");
    assert_lua_error(f, "yaml = nil; fs.edit('~/c.yml', function() end)", "yaml documents are not available");
    assert_lua_error(f, "dotenv = nil; fs.edit('~/.env', function() end)", "dotenv documents are not available");
    assert_lua_error(f, "dotenv = nil; fs.edit('~/prod.env', function() end)", "dotenv documents are not available");
}

static void fs_edit_refused_in_check(void **state)
{
    fixture *f = *state;
    tu_write(f->home, "app.json", "{\"a\": 1}");
    f->env.readonly_reason = "check() must not change anything";
    assert_lua_error(f, "fs.edit('~/app.json', function(d) end)",
                     "fs.edit: not allowed: check() must not change anything");
    assert_lua_error(f, "fs.edit('~/app.json', function(d) d:set('a', 2) end)", "fs.edit: not allowed");
    f->env.readonly_reason = NULL;
    char *text = tu_read(f->home, "app.json");
    assert_string_equal(text, "{\"a\": 1}");
    free(text);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(set_replaces_one_value),
        T(set_adds_missing_keys_last_with_parents),
        T(insert_after_and_before),
        T(delete_first_middle_last_only),
        T(rename_keeps_the_place),
        T(move_reindents_into_the_target),
        T(append_to_sequences),
        T(style_is_kept),
        T(get_has_keys),
        T(refusals_leave_the_text),
        T(equal_set_changes_nothing),
        T(a_wrong_splice_is_caught),
    T(duplicate_keys_are_refused),
        T(two_space_config),
        T(fs_edit_writes_only_changes),
        T(fs_edit_errors_name_the_file),
        T(fs_edit_refused_in_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
