/* test_json.c - the json module: decode -> change -> encode changes only
 * what the script changed; errors say where; nothing leaks. */
#include "testutil.h"

#include "internal.h"

#include <lauxlib.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    mig_open_json(L);
    lua_setglobal(L, "json");
    return L;
}

static int setup(void **state)
{
    *state = new_state();
    return 0;
}

static int teardown(void **state)
{
    lua_close(*state);
    return 0;
}

/* Runs code with `arg` (may be NULL) as `...`; fails the test if it raises.
 * Returns what it returned, as a string (owned by L, valid until the next
 * run). */
static const char *run_ok_arg(lua_State *L, const char *code, const char *arg, size_t arg_len)
{
    lua_settop(L, 0);
    if (luaL_loadstring(L, code) != LUA_OK)
        fail_msg("does not compile: %s", lua_tostring(L, -1));
    if (arg != NULL)
        lua_pushlstring(L, arg, arg_len);
    if (lua_pcall(L, arg != NULL, 1, 0) != LUA_OK)
        fail_msg("%s\nraised: %s", code, lua_tostring(L, -1));
    return lua_tostring(L, -1);
}

static const char *run_ok(lua_State *L, const char *code)
{
    return run_ok_arg(L, code, NULL, 0);
}

/* Runs code that must raise; returns the error message. */
static const char *run_err_arg(lua_State *L, const char *code, const char *arg, size_t arg_len)
{
    lua_settop(L, 0);
    if (luaL_loadstring(L, code) != LUA_OK)
        fail_msg("does not compile: %s", lua_tostring(L, -1));
    if (arg != NULL)
        lua_pushlstring(L, arg, arg_len);
    if (lua_pcall(L, arg != NULL, 1, 0) == LUA_OK)
        fail_msg("%s\ndid not raise; returned %s", code, luaL_tolstring(L, -1, NULL));
    const char *msg = lua_tostring(L, -1);
    assert_non_null(msg);
    /* errors name the script line that called json, as luaL_error does */
    const char *where = strstr(msg, "\"]:");
    size_t digits = where != NULL ? strspn(where + 3, "0123456789") : 0;
    if (strncmp(msg, "[string \"", 9) != 0 || digits == 0 || where[3 + digits] != ':')
        fail_msg("no script position in \"%s\"", msg);
    return where + 3 + digits + 2;
}

static const char *run_err(lua_State *L, const char *code)
{
    return run_err_arg(L, code, NULL, 0);
}

static void assert_contains(const char *text, const char *part)
{
    if (text == NULL || strstr(text, part) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", part, text ? text : "(null)");
}

/* Decodes text, runs `change` on it as v, encodes with the indent; checks
 * the result is `expected`. */
static void assert_rewrite(lua_State *L, const char *text, const char *change, int indent,
                           const char *expected)
{
    char code[1024];
    snprintf(code, sizeof code,
             "local v = json.decode(...)\n%s\nreturn json.encode(v, {indent = %d})", change,
             indent);
    assert_string_equal(run_ok_arg(L, code, text, strlen(text)), expected);
}

static void assert_round_trip(lua_State *L, const char *text, int indent)
{
    assert_rewrite(L, text, "", indent, text);
}

static void assert_decode_error(lua_State *L, const char *text, size_t len, const char *part)
{
    assert_contains(run_err_arg(L, "return json.decode(...)", text, len), part);
}

/* ---- round trips ---------------------------------------------------------- */

static const char compact_doc[] =
    "{\"name\":\"edge-7\",\"port\":8080,\"ratio\":0.25,\"weight\":3.0,\"debug\":false,"
    "\"proxy\":null,\"zeta\":{\"b\":1,\"a\":[1,2,{\"y\":true,\"x\":[]}]},\"empty\":{},"
    "\"list\":[],\"alpha\":\"first\"}";

static const char indented_doc[] =
    "{\n"
    "  \"name\": \"edge-7\",\n"
    "  \"port\": 8080,\n"
    "  \"servers\": [\n"
    "    {\n"
    "      \"host\": \"a.example\",\n"
    "      \"weight\": 1.5\n"
    "    },\n"
    "    {\n"
    "      \"host\": \"b.example\",\n"
    "      \"weight\": 2.0\n"
    "    }\n"
    "  ],\n"
    "  \"empty\": {},\n"
    "  \"none\": [],\n"
    "  \"proxy\": null,\n"
    "  \"abc\": [\n"
    "    1,\n"
    "    \"two\",\n"
    "    false\n"
    "  ]\n"
    "}";

static void test_decode_encode_reproduces_compact_text(void **state)
{
    assert_round_trip(*state, compact_doc, 0);
}

static void test_decode_encode_reproduces_indented_text(void **state)
{
    assert_round_trip(*state, indented_doc, 2);
}

static void test_changing_one_value_changes_only_that_value(void **state)
{
    lua_State *L = *state;
    char expected[1024];
    const char *at = strstr(compact_doc, "8080");
    snprintf(expected, sizeof expected, "%.*s9090%s", (int)(at - compact_doc), compact_doc,
             at + 4);
    assert_rewrite(L, compact_doc, "v.port = 9090", 0, expected);

    char expected2[1024];
    at = strstr(indented_doc, "b.example");
    snprintf(expected2, sizeof expected2, "%.*sc.example%s", (int)(at - indented_doc),
             indented_doc, at + 9);
    assert_rewrite(L, indented_doc, "v.servers[2].host = 'c.example'", 2, expected2);
}

static void test_new_keys_go_last_in_the_order_added(void **state)
{
    assert_rewrite(*state, "{\"b\":1,\"a\":{\"z\":0,\"y\":0}}",
                   "v.x = 1; v.c = 2; v.a.w = json.null", 0,
                   "{\"b\":1,\"a\":{\"z\":0,\"y\":0,\"w\":null},\"x\":1,\"c\":2}");
}

static void test_deleted_then_readded_key_goes_last(void **state)
{
    assert_rewrite(*state, "{\"a\":1,\"b\":2,\"c\":3}", "v.a = nil; v.a = 10", 0,
                   "{\"b\":2,\"c\":3,\"a\":10}");
    assert_rewrite(*state, "{\"a\":1,\"b\":2,\"c\":3}", "v.b = nil", 0, "{\"a\":1,\"c\":3}");
    /* every way the order changes, one after another on one object */
    assert_rewrite(*state, "{\"a\":1,\"b\":2,\"c\":3,\"a\":4}",
                   "rawset(v, 'z', 0); v.a = nil; v.a = 5; json.rename(v, 'b', 'bb'); "
                   "v.c = nil; v.d = 6; v.c = 7",
                   0, "{\"bb\":2,\"a\":5,\"d\":6,\"c\":7,\"z\":0}");
}

static void test_rename_keeps_the_key_in_place(void **state)
{
    assert_rewrite(*state, "{\"a\":1,\"old\":{\"x\":2},\"c\":3}",
                   "json.rename(v, 'old', 'new')", 0, "{\"a\":1,\"new\":{\"x\":2},\"c\":3}");
    /* a key deleted earlier may be the new name; later keys still go last */
    assert_rewrite(*state, "{\"a\":1,\"b\":2,\"c\":3}",
                   "v.c = nil; json.rename(v, 'a', 'c'); v.d = 4", 0,
                   "{\"c\":1,\"b\":2,\"d\":4}");
    /* unmarked tables have no order to keep: the key is simply renamed */
    assert_string_equal(run_ok(*state, "local t = {x = 1} json.rename(t, 'x', 'y') "
                                       "return json.encode(t)"),
                        "{\"y\":1}");
    assert_contains(run_err(*state, "json.rename(json.decode('{\"a\":1,\"b\":2}'), 'a', 'b')"),
                    "json.rename: key \"b\" exists already");
    assert_contains(run_err(*state, "json.rename(json.decode('{}'), 'a', 'b')"),
                    "json.rename: no key \"a\"");
}

static void test_duplicate_key_keeps_first_place_and_last_value(void **state)
{
    assert_rewrite(*state, "{\"a\":1,\"b\":2,\"a\":3}", "", 0, "{\"a\":3,\"b\":2}");
}

static void test_rawset_keys_follow_the_ordered_ones_sorted(void **state)
{
    assert_rewrite(*state, "{\"m\":1}", "rawset(v, 'z', 1); rawset(v, 'b', 2)", 0,
                   "{\"m\":1,\"b\":2,\"z\":1}");
}

/* ---- values ----------------------------------------------------------------- */

static void test_unicode_escapes_become_utf8(void **state)
{
    lua_State *L = *state;
    assert_string_equal(run_ok(L, "return json.decode('\"caf\\\\u00e9\"')"), "caf\xc3\xa9");
    assert_string_equal(run_ok(L, "return json.decode('\"\\\\ud83d\\\\ude00\"')"),
                        "\xf0\x9f\x98\x80");
    assert_string_equal(run_ok(L, "return json.decode('\"\\\\u20AC\"')"), "\xe2\x82\xac");
    /* raw UTF-8 passes through both ways, unescaped */
    assert_round_trip(L, "[\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac\"]", 0);
    assert_string_equal(run_ok(L, "return json.encode(json.decode('\"\\\\ud83d\\\\ude00\"'))"),
                        "\"\xf0\x9f\x98\x80\"");
}

static void test_escapes_decode_and_encode(void **state)
{
    lua_State *L = *state;
    const char *text = "\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u0001\\u001F\"";
    assert_string_equal(run_ok_arg(L, "return json.decode(...)", text, strlen(text)),
                        "q\" b\\ s/ \b\f\n\r\t \x01\x1f");
    /* '/' and DEL need no escape; control bytes get the short form or \u00XX */
    assert_string_equal(run_ok_arg(L, "return json.encode(json.decode(...))", text, strlen(text)),
                        "\"q\\\" b\\\\ s/ \\b\\f\\n\\r\\t \\u0001\\u001f\"");
    assert_string_equal(run_ok(L, "return json.encode('a\\127b')"), "\"a\x7f" "b\"");
}

static void test_null_is_a_sentinel_in_objects_and_arrays(void **state)
{
    lua_State *L = *state;
    assert_string_equal(run_ok(L, "local v = json.decode('[null,1,null]')\n"
                                  "assert(#v == 3 and v[1] == json.null and v[3] == json.null)\n"
                                  "local o = json.decode('{\"a\":null}')\n"
                                  "assert(o.a == json.null and type(json.null) == 'userdata')\n"
                                  "return json.encode({v, o})"),
                        "[[null,1,null],{\"a\":null}]");
    assert_string_equal(run_ok(L, "return tostring(json.decode('null') == json.null)"), "true");
}

static void test_empty_array_and_empty_object_keep_their_kind(void **state)
{
    lua_State *L = *state;
    assert_round_trip(L, "{\"a\":[],\"b\":{},\"c\":[[],{}]}", 0);
    assert_round_trip(L, "{\n  \"a\": [],\n  \"b\": {}\n}", 2);
    assert_string_equal(run_ok(L, "return json.encode({json.array(), json.object(), {}})"),
                        "[[],{},{}]");
    /* emptied by the script: still what it was */
    assert_rewrite(L, "{\"a\":[1],\"o\":{\"k\":1}}", "v.a[1] = nil; v.o.k = nil", 0,
                   "{\"a\":[],\"o\":{}}");
}

static void test_integers_and_floats_keep_their_kind(void **state)
{
    lua_State *L = *state;
    assert_string_equal(run_ok(L, "local v = json.decode('[3,3.0,1e2,-0,0.1,-2.5,1E-2,12.50]')\n"
                                  "local kinds = {}\n"
                                  "for i, x in ipairs(v) do kinds[i] = math.type(x) end\n"
                                  "return table.concat(kinds, ' ')"),
                        "integer float float integer float float float float");
    assert_string_equal(run_ok(L, "return json.encode(json.decode("
                                  "'[3,3.0,1e2,-0,0.1,-2.5,1E-2]'))"),
                        "[3,3.0,100.0,0,0.1,-2.5,0.01]");
}

static void test_floats_are_written_shortest_and_exact(void **state)
{
    lua_State *L = *state;
    assert_string_equal(run_ok(L, "return json.encode({0.1, 1/3, 100.0, -0.0, 1e21, 1e-7,"
                                  " 1.7976931348623157e308, 2^53, 123456.789})"),
                        "[0.1,0.3333333333333333,100.0,-0.0,1e+21,1e-7,"
                        "1.7976931348623157e+308,9007199254740992.0,123456.789]");
    /* and read back to the same numbers */
    assert_string_equal(run_ok(L, "local v = {0.1, 1/3, 5e-324, 1.7976931348623157e308, -0.0}\n"
                                  "local w = json.decode(json.encode(v))\n"
                                  "for i = 1, #v do assert(v[i] == w[i] and math.type(w[i]) =="
                                  " 'float', i) end\n"
                                  "return 'ok'"),
                        "ok");
}

static void test_integers_beyond_2_53_are_refused_on_decode(void **state)
{
    lua_State *L = *state;
    assert_string_equal(run_ok(L, "return json.encode(json.decode("
                                  "'[9007199254740991,-9007199254740991]'))"),
                        "[9007199254740991,-9007199254740991]");
    assert_decode_error(L, "[9007199254740992]", 18,
                        "json.decode: integer 9007199254740992 at line 1, column 2 is outside "
                        "\xc2\xb1" "2^53 and cannot be represented exactly");
    assert_decode_error(L, "{\n \"a\": -9007199254740993}", 26,
                        "json.decode: integer -9007199254740993 at line 2, column 7 is outside");
    assert_decode_error(L, "12345678901234567890", 20, "integer 12345678901234567890 at line 1");
    /* as a float it is fine: the text says it may be rounded */
    assert_string_equal(run_ok(L, "return math.type(json.decode('9007199254740993.0'))"), "float");
}

static void test_integers_beyond_2_53_are_refused_on_encode(void **state)
{
    lua_State *L = *state;
    assert_string_equal(run_ok(L, "return json.encode({9007199254740991, -9007199254740991})"),
                        "[9007199254740991,-9007199254740991]");
    assert_string_equal(run_err(L, "return json.encode(9007199254740992)"),
                        "json.encode: integer 9007199254740992 at $ is outside \xc2\xb1"
                        "2^53 and cannot be represented exactly");
    assert_contains(run_err(L, "return json.encode({x = {-9007199254740993}})"),
                    "integer -9007199254740993 at $.x[1] is outside");
    assert_contains(run_err(L, "return json.encode(math.mininteger)"), "at $ is outside");
}

static void test_nan_and_infinity_are_refused(void **state)
{
    lua_State *L = *state;
    assert_contains(run_err(L, "return json.encode({a = 0/0})"),
                    "json.encode: NaN at $.a cannot be encoded");
    assert_contains(run_err(L, "return json.encode({1, -math.huge})"), "-inf at $[2]");
    assert_contains(run_err(L, "return json.decode('[1e400]')"),
                    "json.decode: number 1e400 at line 1, column 2 is too large for a double");
}

static void test_top_level_scalars_decode(void **state)
{
    lua_State *L = *state;
    assert_string_equal(run_ok(L, "return json.decode(' 42 ') + 1"), "43");
    assert_string_equal(run_ok(L, "return json.decode('\"s\"')"), "s");
    assert_string_equal(run_ok(L, "return tostring(json.decode('\\n true\\r\\n'))"), "true");
}

/* The encoder writes most floats without printf (format_decimal); its text
 * must be the one printf's shortest round trip gives, for every kind of
 * value: short decimals, full-precision fractions, tiny and huge ones. */
static void test_float_fast_path_matches_printf(void **state)
{
    assert_string_equal(
        run_ok(*state,
               "local function ref(x)\n"
               "  local s\n"
               "  for p = 15, 17 do\n"
               "    s = string.format('%.' .. p .. 'g', x)\n"
               "    if tonumber(s) == x then break end\n"
               "  end\n"
               "  s = s:gsub('e([+-])0*(%d)', 'e%1%2')\n"
               "  if not s:find('[.e]') then s = s .. '.0' end\n"
               "  return s\n"
               "end\n"
               "local r = 12345\n"
               "local function rnd() r = (r * 1103515245 + 12345) % 2147483648 return r end\n"
               "for i = 1, 40000 do\n"
               "  local kind, x = i % 5\n"
               "  if kind == 0 then x = rnd() / 10.0 ^ (rnd() % 12)\n"
               "  elseif kind == 1 then x = (rnd() * 2147483648.0 + rnd()) / 2.0 ^ (rnd() % 64)\n"
               "  elseif kind == 2 then x = -(rnd() % 100000) / 10.0 ^ (rnd() % 22)\n"
               "  elseif kind == 3 then x = (rnd() % 1000) / 7.0 * 10.0 ^ (rnd() % 40 - 20)\n"
               "  else x = (rnd() % 2000000 - 1000000) / 10.0 ^ (rnd() % 8) + 1e15 * (i % 2) end\n"
               "  if x ~= 0 then\n"
               "    local got = json.encode(x)\n"
               "    if got ~= ref(x) then\n"
               "      return string.format('%.17g: %s, printf %s', x, got, ref(x))\n"
               "    end\n"
               "  end\n"
               "end\n"
               "return 'ok'"),
        "ok");
}

static void test_digits_inside_strings_do_not_shift_numbers(void **state)
{
    assert_rewrite(*state, "{\"1\":\"2 3.0\",\"a\\\"4\":[5,\"6\\\\\\\"7.5\",8.0,-9]}",
                   "assert(math.type(v['a\"4'][1]) == 'integer')\n"
                   "assert(math.type(v['a\"4'][3]) == 'float')\n"
                   "assert(v['a\"4'][4] == -9 and math.type(v['a\"4'][4]) == 'integer')",
                   0, "{\"1\":\"2 3.0\",\"a\\\"4\":[5,\"6\\\\\\\"7.5\",8.0,-9]}");
}

static void test_byte_order_mark_is_skipped(void **state)
{
    const char text[] = "\xef\xbb\xbf{\"a\":1}";
    assert_string_equal(run_ok_arg(*state, "return json.encode(json.decode(...))", text,
                                   sizeof text - 1),
                        "{\"a\":1}");
}

/* ---- nesting ----------------------------------------------------------------- */

static char *nested_text(int depth, char open, char close)
{
    char *s = malloc((size_t)depth * 2 + 1);
    assert_non_null(s);
    memset(s, open, (size_t)depth);
    memset(s + depth, close, (size_t)depth);
    s[depth * 2] = '\0';
    return s;
}

static void test_decode_nesting_is_bounded_at_256(void **state)
{
    lua_State *L = *state;
    char *ok = nested_text(256, '[', ']');
    char *deep = nested_text(257, '[', ']');
    char *very_deep = nested_text(5000, '[', ']');
    assert_string_equal(run_ok_arg(L, "return json.encode(json.decode(...))", ok, strlen(ok)), ok);
    assert_decode_error(L, deep, strlen(deep),
                        "json.decode: nesting deeper than 256 at line 1, column 257 (byte 256)");
    assert_decode_error(L, very_deep, strlen(very_deep), "nesting deeper than 256 at line 1");
    free(ok);
    free(deep);
    free(very_deep);

    /* objects count as well, on whatever line they are */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "\n\n");
    for (int i = 0; i < 257; i++)
        luaL_addstring(&b, "{\"k\":");
    luaL_pushresult(&b);
    size_t len;
    const char *objects = lua_tolstring(L, -1, &len);
    char *copy = strdup(objects);
    assert_decode_error(L, copy, len, "nesting deeper than 256 at line 3, column 1281");
    free(copy);
}

static void test_encode_nesting_is_bounded_at_256(void **state)
{
    lua_State *L = *state;
    const char *code = "local depth = ...\n"
                       "local root = {}\n"
                       "local t = root\n"
                       "for i = 2, tonumber(depth) do t[1] = {}; t = t[1] end\n"
                       "return json.encode(root)";
    char *ok = nested_text(256, '[', ']');
    ok[255] = '{'; /* the innermost empty table is an object */
    ok[256] = '}';
    assert_string_equal(run_ok_arg(L, code, "256", 3), ok);
    free(ok);
    const char *msg = run_err_arg(L, code, "257", 3);
    assert_contains(msg, "json.encode: nesting deeper than 256 at $[1][1][1]");
    assert_contains(msg, "[1]");
}

/* ---- invalid input --------------------------------------------------------- */

static void test_invalid_json_is_reported_with_line_and_column(void **state)
{
    static const struct {
        const char *text, *message;
    } cases[] = {
        { "{", "invalid JSON at line 1, column 2 (byte 1): unexpected end of input" },
        { "[1,]", "invalid JSON at line 1, column 4 (byte 3): unexpected ']'" },
        { "{\"a\" 1}", "invalid JSON at line 1, column 6 (byte 5): unexpected '1'" },
        { "tru", "invalid JSON at line 1, column 1 (byte 0): invalid literal 'tru'" },
        { "\"\\x\"",
          "invalid JSON at line 1, column 2 (byte 1): invalid escape \\ followed by 'x'" },
        { "", "invalid JSON at line 1, column 1 (byte 0): unexpected end of input" },
        { "  \n ", "invalid JSON at line 2, column 2 (byte 4): unexpected end of input" },
        { "1 2", "invalid JSON at line 1, column 3 (byte 2): unexpected '2'" },
        { "{\"a\":1}}", "invalid JSON at line 1, column 8 (byte 7): unexpected '}'" },
        { "{\n  \"a\": 1,\n  \"b\": ?\n}", "at line 3, column 8 (byte 19): unexpected '?'" },
        { "[\n1,\n2,\n]", "at line 4, column 1 (byte 8): unexpected ']'" },
        { "{\n  \"a\": [1, 2\n  \"b\": 3\n}", "at line 3, column 3 (byte 17): unexpected '\"'" },
        { "{\"\xc3\xa9\xc3\xa9\": x}", "at line 1, column 8 (byte 9): invalid literal 'x'" },
        { "[01]", "at line 1, column 2 (byte 1): invalid number '01'" },
        { "[1.]", "invalid number '1.'" },
        { "[-]", "invalid number '-'" },
        { "[.5]", "unexpected '.'" },
        { "[1e]", "invalid number '1e'" },
        { "[0x10]", "at line 1, column 3 (byte 2): unexpected 'x' (expected ',' or ']')" },
        { "{'a':1}", "unexpected '''" },
        { "[1 2]", "at line 1, column 4 (byte 3): unexpected '2'" },
        { "[\"a\nb\"]", "at line 1, column 4 (byte 3): control character U+000A in a string" },
        { "[\"\xff\"]", "at line 1, column 3 (byte 2): invalid UTF-8 in a string" },
        { "[\"\xc0\xaf\"]", "invalid UTF-8 in a string" },
        { "[\"\\ud800\"]", "unpaired surrogate \\uD800" },
        { "[\"\\udc00\\ud800\"]", "unpaired surrogate \\uDC00" },
        { "[\"\\u12G4\"]", "invalid \\u escape" },
        { "[\"abc", "at line 1, column 2 (byte 1): unterminated string" },
        { "nul", "invalid literal 'nul'" },
        { "nullx", "invalid literal 'nullx'" },
        { "[1,\x01 2]", "unexpected byte 0x01" },
        { "/* c */ 1", "unexpected '/'" },
        { "{\"a\":1,}", "unexpected '}'" },
        { "[}", "unexpected '}'" },
        { "{1:2}", "unexpected '1' (expected a string key)" },
    };
    lua_State *L = *state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *msg = run_err_arg(L, "return json.decode(...)", cases[i].text,
                                      strlen(cases[i].text));
        if (strncmp(msg, "json.decode: invalid JSON at line ", 34) != 0 ||
            strstr(msg, cases[i].message) == NULL)
            fail_msg("decoding \"%s\": expected \"%s\" in \"%s\"", cases[i].text,
                     cases[i].message, msg);
    }
}

static void test_decode_wants_a_string(void **state)
{
    assert_contains(run_err(*state, "return json.decode()"), "bad argument #1 to 'decode'");
    assert_contains(run_err(*state, "return json.decode({})"), "bad argument #1 to 'decode'");
}

static void test_nul_bytes_in_the_text_are_refused(void **state)
{
    assert_decode_error(*state, "[1]\0", 4, "at line 1, column 4 (byte 3): unexpected byte 0x00");
    assert_decode_error(*state, "[\"a\0b\"]", 7, "control character U+0000 in a string");
}

/* ---- encode: refusals -------------------------------------------------------- */

static void test_tables_that_are_not_json_are_refused_with_their_path(void **state)
{
    static const struct {
        const char *code, *message;
    } cases[] = {
        { "return json.encode({servers = {{name = 'a'}, {1, nil, 3}}})",
          "json.encode: table at $.servers[2] has a hole at index 2 (arrays must be 1..n)" },
        { "return json.encode({[1] = 1, [3] = 3})",
          "json.encode: table at $ has a hole at index 2 (arrays must be 1..n)" },
        { "return json.encode({a = {1, x = 2}})",
          "json.encode: table at $.a mixes integer and string keys" },
        { "return json.encode({['odd key'] = {[1.5] = true}})",
          "json.encode: table at $[\"odd key\"] has a float key (JSON keys must be strings)" },
        { "return json.encode({x = {[true] = 1}})", "table at $.x has a boolean key" },
        { "return json.encode({x = {[{}] = 1}})", "table at $.x has a table key" },
        { "return json.encode({[0] = 'a', 'b'})",
          "table at $ has the index 0 (arrays must be 1..n)" },
        { "local o = json.decode('{\"a\":{}}'); o.a[1] = 2; return json.encode(o)",
          "table at $.a is a JSON object but has a key that is not a string" },
        { "local a = json.decode('[1]'); a.n = 1; return json.encode({list = a})",
          "table at $.list is a JSON array but has keys other than 1..n" },
        { "local a = json.decode('[1,2,3]'); a[2] = nil; return json.encode(a)",
          "table at $ has a hole at index 2" },
        { "return json.encode({['a\"b\\n'] = {1, nil, 2}})",
          "table at $[\"a\\\"b\\u000a\"] has a hole" },
        { "return json.encode({a_1 = {b = {[2] = 0}}})", "table at $.a_1.b has a hole at index 1" },
    };
    lua_State *L = *state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_contains(run_err(L, cases[i].code), cases[i].message);
}

static void test_cycles_are_refused(void **state)
{
    lua_State *L = *state;
    assert_string_equal(run_err(L, "local t = {a = {b = {}}}; t.a.b = t; return json.encode(t)"),
                        "json.encode: cycle at $.a.b");
    assert_string_equal(run_err(L, "local t = {}; t[1] = t; return json.encode(t)"),
                        "json.encode: cycle at $[1]");
    /* the same table twice, not inside itself, is fine */
    assert_string_equal(run_ok(L, "local s = {1}; return json.encode({a = s, b = {s}})"),
                        "{\"a\":[1],\"b\":[[1]]}");
}

static void test_values_json_cannot_hold_are_refused(void **state)
{
    lua_State *L = *state;
    assert_string_equal(run_err(L, "return json.encode({f = print})"),
                        "json.encode: cannot encode a function at $.f");
    assert_contains(run_err(L, "return json.encode({coroutine.create(print)})"),
                    "cannot encode a thread at $[1]");
    assert_contains(run_err(L, "return json.encode({io.stdout})"),
                    "cannot encode a userdata at $[1]");
    assert_contains(run_err(L, "return json.encode(nil)"), "cannot encode nil at $");
    assert_contains(run_err(L, "return json.encode()"), "bad argument #1 to 'encode'");
}

static void test_invalid_utf8_is_refused_on_encode(void **state)
{
    lua_State *L = *state;
    assert_string_equal(run_err(L, "return json.encode({name = 'a\\xffb'})"),
                        "json.encode: string at $.name is not valid UTF-8");
    assert_contains(run_err(L, "return json.encode({'\\xc0\\x80'})"),
                    "string at $[1] is not valid");
    assert_contains(run_err(L, "return json.encode('\\xed\\xa0\\x80')"), "not valid UTF-8");
    assert_contains(run_err(L, "return json.encode('\\xf4\\x90\\x80\\x80')"), "not valid UTF-8");
    assert_contains(run_err(L, "return json.encode('\\xe2\\x82')"), "not valid UTF-8");
    assert_contains(run_err(L, "return json.encode({x = {['\\xc3'] = 1}})"),
                    "json.encode: a key of the object at $.x is not valid UTF-8");
}

/* ---- encode: layout and options ------------------------------------------------ */

static void test_layout_is_that_of_json_stringify(void **state)
{
    lua_State *L = *state;
    const char *code = "local v = json.decode("
                       "'{\"a\":1,\"b\":[1,{\"c\":[]},{}],\"d\":{\"e\":null}}')\n"
                       "return json.encode(v, {indent = tonumber((...))})";
    assert_string_equal(run_ok_arg(L, code, "0", 1),
                        "{\"a\":1,\"b\":[1,{\"c\":[]},{}],\"d\":{\"e\":null}}");
    assert_string_equal(run_ok_arg(L, code, "4", 1),
                        "{\n"
                        "    \"a\": 1,\n"
                        "    \"b\": [\n"
                        "        1,\n"
                        "        {\n"
                        "            \"c\": []\n"
                        "        },\n"
                        "        {}\n"
                        "    ],\n"
                        "    \"d\": {\n"
                        "        \"e\": null\n"
                        "    }\n"
                        "}");
    assert_string_equal(run_ok(L, "return json.encode({1, 2})"), "[1,2]");
    assert_string_equal(run_ok(L, "return json.encode({1}, {indent = 1})"), "[\n 1\n]");
    assert_string_equal(run_ok(L, "return json.encode('x', {indent = 2})"), "\"x\"");
}

static void test_indent_option_is_checked(void **state)
{
    static const char *const bad[] = {
        "{indent = -1}", "{indent = 17}", "{indent = 1.5}", "{indent = '2'}",
        "{indnet = 2}", "{indent = true}", "'2'", "2",
    };
    lua_State *L = *state;
    char code[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(code, sizeof code, "return json.encode({}, %s)", bad[i]);
        assert_contains(run_err(L, code), "bad argument #2 to 'encode'");
    }
    assert_string_equal(run_ok(L, "return json.encode({1}, {indent = 16.0})"),
                        "[\n                1\n]");
    assert_string_equal(run_ok(L, "return json.encode({1}, {})"), "[1]");
    assert_string_equal(run_ok(L, "return json.encode({1}, nil)"), "[1]");
}

static void test_plain_tables_get_sorted_keys(void **state)
{
    assert_string_equal(run_ok(*state, "return json.encode("
                                       "{b = 1, a = 2, B = 3, aa = {z = 1, y = 2}})"),
                        "{\"B\":3,\"a\":2,\"aa\":{\"y\":2,\"z\":1},\"b\":1}");
}

/* ---- null, array, object ------------------------------------------------------- */

static void test_array_and_object_mark_tables(void **state)
{
    lua_State *L = *state;
    assert_string_equal(run_ok(L, "local t = {}\n"
                                  "assert(json.array(t) == t)\n"
                                  "return json.encode({a = t, o = json.object()})"),
                        "{\"a\":[],\"o\":{}}");
    /* an object keeps its present keys sorted, then the added ones in order */
    assert_string_equal(run_ok(L, "local o = json.object({b = 1, a = 2})\n"
                                  "o.z = 3; o.c = 4\n"
                                  "return json.encode(o)"),
                        "{\"a\":2,\"b\":1,\"z\":3,\"c\":4}");
    /* marking again is harmless; another kind or metatable is refused */
    assert_string_equal(run_ok(L, "local o = json.decode('{\"b\":1,\"a\":2}')\n"
                                  "assert(json.object(o) == o)\n"
                                  "return json.encode(o)"),
                        "{\"b\":1,\"a\":2}");
    assert_contains(run_err(L, "return json.array(json.decode('{}'))"),
                    "bad argument #1 to 'array' (table already has another metatable)");
    assert_contains(run_err(L, "return json.object(setmetatable({}, {}))"),
                    "bad argument #1 to 'object'");
    assert_contains(run_err(L, "return json.array(3)"), "bad argument #1 to 'array'");
}

static void test_marker_metatables_are_out_of_scripts_reach(void **state)
{
    lua_State *L = *state;
    assert_string_equal(run_ok(L, "return getmetatable(json.decode('{}'))"), "json object");
    assert_string_equal(run_ok(L, "return getmetatable(json.array())"), "json array");
    assert_contains(run_err(L, "return setmetatable(json.decode('[]'), nil)"),
                    "cannot change a protected metatable");
}

/* ---- memory ----------------------------------------------------------------------- */

typedef struct budget {
    bool limited;
    size_t allocations_left;
} budget;

/* Grants `allocations_left` more allocations once limited, then fails. */
static void *budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    budget *b = ud;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (b->limited && (ptr == NULL || nsize > osize)) {
        if (b->allocations_left == 0)
            return NULL;
        b->allocations_left--;
    }
    return realloc(ptr, nsize);
}

static lua_State *new_budget_state(budget *b, const char *code, const char *arg)
{
    lua_State *L = lua_newstate(budget_alloc, b);
    assert_non_null(L);
    luaL_openlibs(L);
    mig_open_json(L);
    lua_setglobal(L, "json");
    assert_int_equal(luaL_loadstring(L, code), LUA_OK);
    lua_pushstring(L, arg);
    return L;
}

/* Runs code with arg under a budget of n allocations, for n = 0, 1, ...
 * until it gets as far as it does with no budget: every attempt before
 * fails cleanly with "not enough memory", the last one gives the same
 * result (value or error message) as the unlimited run. Leaks show up
 * under ASan and valgrind. */
static void sweep_allocation_failures(const char *code, const char *arg)
{
    budget b = { false, 0 };
    lua_State *L = new_budget_state(&b, code, arg);
    int expected_status = lua_pcall(L, 1, 1, 0);
    char *expected = strdup(lua_tostring(L, -1));
    lua_close(L);
    assert_non_null(expected);
    assert_null(strstr(expected, "not enough memory"));
    for (size_t n = 0;; n++) {
        L = new_budget_state(&b, code, arg);
        b.limited = true;
        b.allocations_left = n;
        int status = lua_pcall(L, 1, 1, 0);
        b.limited = false;
        const char *result = lua_tostring(L, -1);
        assert_non_null(result);
        if (strstr(result, "not enough memory") == NULL) {
            assert_int_equal(status, expected_status);
            assert_string_equal(result, expected);
            lua_close(L);
            break;
        }
        lua_close(L);
        assert_true(n < 100000);
    }
    free(expected);
}

static void test_allocation_failures_leak_nothing(void **state)
{
    (void)state;
    const char *doc = "{\"name\":\"edge\",\"list\":[1,2.5,null,true,\"x\",{\"k\":[]}],"
                      "\"nested\":{\"b\":{},\"a\":[[1],[2]],\"b\":\"dup\"},\"long\":"
                      "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}";
    sweep_allocation_failures("local v = json.decode(...)\n"
                              "v.added = json.object({z = 1, y = {json.null}})\n"
                              "return json.encode(v, {indent = 2}) .. json.encode(v)",
                              doc);
    sweep_allocation_failures("return json.decode(...)", "{\"a\":\n[1, 2,]}");
    sweep_allocation_failures("return json.decode(...)", "[12345678901234567890]");
    sweep_allocation_failures("return json.decode(...)", "[1e999]");
    sweep_allocation_failures("return json.encode({['a b'] = {1, nil, 3}})", "");
    sweep_allocation_failures("return json.encode({1, {x = {print}}}, {indent = 1})", "");
}

typedef struct byte_budget {
    size_t used, limit;
} byte_budget;

/* Counts bytes in use and refuses to go past the limit, as the sandbox's
 * allocator does for a script's memory limit. */
static void *byte_budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    byte_budget *b = ud;
    size_t old = ptr != NULL ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        b->used -= old;
        return NULL;
    }
    if (nsize > old && nsize - old > b->limit - b->used)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p != NULL)
        b->used = b->used - old + nsize;
    return p;
}

static void test_decode_charges_the_cjson_tree_to_the_memory_limit(void **state)
{
    (void)state;
    byte_budget b = { 0, SIZE_MAX };
    lua_State *L = lua_newstate(byte_budget_alloc, &b);
    assert_non_null(L);
    luaL_openlibs(L);
    mig_open_json(L);
    lua_setglobal(L, "json");
    /* 200,000 zeros: about 3 MB as a Lua table, about 20 MB as cJSON items */
    assert_int_equal(luaL_loadstring(L, "local text = '[' .. string.rep('0,', 199999) .. '0]'\n"
                                        "collectgarbage()\n"
                                        "return pcall(json.decode, text)"),
                     LUA_OK);
    b.limit = b.used + 8 * 1024 * 1024;
    assert_int_equal(lua_pcall(L, 0, 2, 0), LUA_OK);
    assert_false(lua_toboolean(L, -2));
    assert_contains(lua_tostring(L, -1), "not enough memory");
    /* the same text decodes with room for the tree */
    b.limit = SIZE_MAX;
    assert_string_equal(run_ok(L, "return #json.decode('[' .. string.rep('0,', 199999) .. '0]')"),
                        "200000");
    lua_close(L);
}

/* ---- size ------------------------------------------------------------------------- */

static void test_ten_megabyte_document_round_trips(void **state)
{
    lua_State *L = *state;
    luaL_Buffer b;
    char item[256];
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '[');
    for (int i = 0; luaL_bufflen(&b) < 10u * 1024 * 1024; i++) {
        snprintf(item, sizeof item,
                 "%s{\"id\":%d,\"name\":\"item \\\"%d\\\" \xc3\xa9\",\"ratio\":%d.5,"
                 "\"tags\":[\"a\","
                 "\"b\",null],\"on\":%s,\"nested\":{\"z\":-%d,\"a\":{}}}",
                 i > 0 ? "," : "", i, i, i, i % 2 ? "true" : "false", i + 1);
        luaL_addstring(&b, item);
    }
    luaL_addchar(&b, ']');
    luaL_pushresult(&b);
    lua_setglobal(L, "doc");
    assert_string_equal(run_ok(L, "local out = json.encode(json.decode(doc))\n"
                                  "assert(#doc > 10 * 1024 * 1024)\n"
                                  "return tostring(out == doc)"),
                        "true");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_decode_encode_reproduces_compact_text),
        T(test_decode_encode_reproduces_indented_text),
        T(test_changing_one_value_changes_only_that_value),
        T(test_new_keys_go_last_in_the_order_added),
        T(test_rename_keeps_the_key_in_place),
        T(test_deleted_then_readded_key_goes_last),
        T(test_duplicate_key_keeps_first_place_and_last_value),
        T(test_rawset_keys_follow_the_ordered_ones_sorted),
        T(test_unicode_escapes_become_utf8),
        T(test_escapes_decode_and_encode),
        T(test_null_is_a_sentinel_in_objects_and_arrays),
        T(test_empty_array_and_empty_object_keep_their_kind),
        T(test_integers_and_floats_keep_their_kind),
        T(test_floats_are_written_shortest_and_exact),
        T(test_float_fast_path_matches_printf),
        T(test_integers_beyond_2_53_are_refused_on_decode),
        T(test_integers_beyond_2_53_are_refused_on_encode),
        T(test_nan_and_infinity_are_refused),
        T(test_top_level_scalars_decode),
        T(test_digits_inside_strings_do_not_shift_numbers),
        T(test_byte_order_mark_is_skipped),
        T(test_decode_nesting_is_bounded_at_256),
        T(test_encode_nesting_is_bounded_at_256),
        T(test_invalid_json_is_reported_with_line_and_column),
        T(test_decode_wants_a_string),
        T(test_nul_bytes_in_the_text_are_refused),
        T(test_tables_that_are_not_json_are_refused_with_their_path),
        T(test_cycles_are_refused),
        T(test_values_json_cannot_hold_are_refused),
        T(test_invalid_utf8_is_refused_on_encode),
        T(test_layout_is_that_of_json_stringify),
        T(test_indent_option_is_checked),
        T(test_plain_tables_get_sorted_keys),
        T(test_array_and_object_mark_tables),
        T(test_marker_metatables_are_out_of_scripts_reach),
        T(test_allocation_failures_leak_nothing),
        T(test_decode_charges_the_cjson_tree_to_the_memory_limit),
        T(test_ten_megabyte_document_round_trips),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
