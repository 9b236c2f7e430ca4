/* test_yaml.c - the yaml module: decode reads what PyYAML's safe_load reads
 * (the corpus in tests/yaml/ compares it wholesale; these pin the rules one
 * by one), encode writes what reads back as the same value, errors say
 * where, and the sandbox offers it lazily with fs.read_yaml/write_yaml. */
#include "testutil.h"

#include "lua_formats.h"

#include <lauxlib.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

static int setup(void **state)
{
    lua_State *L = tl_formats_state(TL_WITH_YAML);
    assert_non_null(L);
    *state = L;
    return 0;
}

static int teardown(void **state)
{
    lua_close(*state);
    return 0;
}

/* Runs code; fails the test if it raises. */
static void ok(lua_State *L, const char *code)
{
    lua_settop(L, 0);
    if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK)
        fail_msg("%s\nraised: %s", code, lua_tostring(L, -1));
}

/* Runs code that must raise an error containing `want`. */
static void raises(lua_State *L, const char *code, const char *want)
{
    lua_settop(L, 0);
    if (luaL_loadstring(L, code) != LUA_OK)
        fail_msg("does not compile: %s", lua_tostring(L, -1));
    if (lua_pcall(L, 0, 0, 0) == LUA_OK)
        fail_msg("%s\ndid not raise", code);
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL || strstr(msg, want) == NULL)
        fail_msg("%s\nraised: %s\nwanted: %s", code, msg ? msg : "(not a string)", want);
}

/* ---- decode: YAML 1.1 resolution as PyYAML does it -------------------------- */

static void test_decode_resolves_plain_scalars_as_yaml_1_1(void **state)
{
    lua_State *L = *state;
    ok(L, "local v = yaml.decode('[yes, No, ON, off, y, n, True, yEs]')\n"
          "assert(v[1] == true and v[2] == false and v[3] == true and v[4] == false)\n"
          "assert(v[5] == 'y' and v[6] == 'n' and v[7] == true and v[8] == 'yEs')");
    ok(L, "local v = yaml.decode('[0777, 0x1F, 0b101, 1_000, 1:20, 190:20:30, 08, 0o17, -0]')\n"
          "assert(v[1] == 511 and math.type(v[1]) == 'integer')\n"
          "assert(v[2] == 31 and v[3] == 5 and v[4] == 1000 and v[5] == 80)\n"
          "assert(v[6] == 685230 and v[7] == '08' and v[8] == '0o17' and v[9] == 0)");
    ok(L, "local v = yaml.decode('[1.5, 1e3, 1.0e+3, .5, 1:30.5, .inf, -.Inf, .nan, 1.0e3]')\n"
          "assert(v[1] == 1.5 and v[2] == '1e3' and v[3] == 1000.0 and math.type(v[3]) == 'float')\n"
          "assert(v[4] == 0.5 and v[5] == 90.5 and v[6] == math.huge and v[7] == -math.huge)\n"
          "assert(v[8] ~= v[8] and v[9] == '1.0e3')");
    ok(L, "local v = yaml.decode('a: ~\\nb: null\\nc:\\nd: NULL\\ne: nUll\\n')\n"
          "assert(v.a == yaml.null and v.b == yaml.null and v.c == yaml.null)\n"
          "assert(v.d == yaml.null and v.e == 'nUll' and yaml.null == json.null)");
    ok(L, "local v = yaml.decode('- 2001-12-14\\n- \"yes\"\\n- \\'1:20\\'\\n- ${HOME}/x\\n- a #c\\n')\n"
          "assert(v[1] == '2001-12-14' and v[2] == 'yes' and v[3] == '1:20')\n"
          "assert(v[4] == '${HOME}/x' and v[5] == 'a')");
}

static void test_decode_keeps_64_bit_integers_exact_and_refuses_larger(void **state)
{
    lua_State *L = *state;
    ok(L, "local v = yaml.decode('[9223372036854775807, -9223372036854775808, 1234567890123456789]')\n"
          "assert(v[1] == math.maxinteger and v[2] == math.mininteger)\n"
          "assert(v[3] == 1234567890123456789)");
    raises(L, "yaml.decode('id: 9223372036854775808')",
           "yaml.decode: integer 9223372036854775808 does not fit in 64 bits at line 1, column 5");
    raises(L, "yaml.decode('- 0b_')", "invalid integer 0b_ at line 1, column 3");
}

static void test_decode_explicit_tags(void **state)
{
    lua_State *L = *state;
    ok(L, "local v = yaml.decode('[!!str 12, !!int \"7\", !!float 1, !!bool \"On\", !!null x, ! 12]')\n"
          "assert(v[1] == '12' and v[2] == 7 and v[3] == 1.0 and math.type(v[3]) == 'float')\n"
          "assert(v[4] == true and v[5] == yaml.null and v[6] == 12)");  /* `!` resolves as plain, as in PyYAML */
    raises(L, "yaml.decode('a: !!python/tuple [1]')",
           "could not determine a constructor for the tag 'tag:yaml.org,2002:python/tuple'");
    raises(L, "yaml.decode('a: !!binary aGk=')", "the tag !!binary is not supported at line 1");
    raises(L, "yaml.decode('a: !!str [1]')", "the tag !!str cannot be given to a sequence");
    raises(L, "yaml.decode('a: !!int abc')", "invalid integer abc");
}

static void test_decode_mappings_keep_file_order_for_json_encode(void **state)
{
    lua_State *L = *state;
    ok(L, "local v = yaml.decode('z: 1\\ny: {b: 2, a: 3}\\nx: []\\nw: {}\\nz: 9\\n')\n"
          "assert(json.encode(v) == '{\"z\":9,\"y\":{\"b\":2,\"a\":3},\"x\":[],\"w\":{}}', json.encode(v))\n"
          "v.new = 1\n"
          "assert(json.encode(v):sub(-8) == '\"new\":1}')");
    ok(L, "local v = yaml.decode('1: one\\ntrue: t\\n~: n\\n')\n"
          "assert(v[1] == 'one' and v[true] == 't' and v[yaml.null] == 'n')");
}

static void test_decode_merge_keys_follow_pyyaml_precedence(void **state)
{
    lua_State *L = *state;
    ok(L, "local v = yaml.decode('a: &a {x: 1, y: 1}\\nb: &b {y: 2, z: 2}\\n"
          "c:\\n  w: 0\\n  <<: [*a, *b]\\n  x: 5\\n')\n"
          "assert(json.encode(v.c) == '{\"y\":1,\"z\":2,\"x\":5,\"w\":0}', json.encode(v.c))");
    ok(L, "local v = yaml.decode('c:\\n  \"<<\": {x: 1}\\n')\n"
          "assert(v.c['<<'].x == 1)");
    raises(L, "yaml.decode('c:\\n  <<: [1]\\n')", "expected a mapping for merging");
    raises(L, "yaml.decode('c:\\n  <<: 1\\n')",
           "expected a mapping or list of mappings for merging at line 2, column 3");
    raises(L, "yaml.decode('a: <<')", "tag:yaml.org,2002:merge");
}

static void test_decode_aliases_share_and_are_bounded(void **state)
{
    lua_State *L = *state;
    ok(L, "local v = yaml.decode('a: &x [1, 2]\\nb: *x\\n')\n"
          "assert(v.a == v.b and v.b[2] == 2)");
    raises(L, "yaml.decode('a: *nope')", "found undefined alias 'nope' at line 1, column 4");
    raises(L, "yaml.decode('a: &x 1\\nb: &x 2\\n')", "found duplicate anchor 'x'");
    raises(L, "yaml.decode('a: &x [*x]')", "refers to a node that contains it");
    ok(L, "local lines = {'a: &a [x, x, x, x, x, x, x, x, x, x]'}\n"
          "for i = 1, 8 do\n"
          "  local p, c = string.char(96 + i), string.char(97 + i)\n"
          "  lines[#lines + 1] = c .. ': &' .. c .. ' [' .. ('*' .. p .. ', '):rep(9) .. '*' .. p .. ']'\n"
          "end\n"
          "local ok, err = pcall(yaml.decode, table.concat(lines, '\\n'))\n"
          "assert(not ok and err:find('aliases expand to more than 1000000 nodes'), err)");
}

static void test_decode_documents_and_errors_say_where(void **state)
{
    lua_State *L = *state;
    ok(L, "assert(yaml.decode('') == nil and yaml.decode('# c\\n') == nil)\n"
          "assert(yaml.decode('---\\n') == yaml.null and yaml.decode('a: 1\\n...\\n').a == 1)");
    raises(L, "yaml.decode('a: 1\\n---\\nb: 2\\n')",
           "expected a single document in the stream, but found another document at line 2");
    raises(L, "yaml.decode('a: 1\\n b: 2\\n')",
           "yaml.decode: mapping values are not allowed in this context at line 2, column 3");
    raises(L, "yaml.decode('k: [1, 2\\n')", "at line 2, column 1");
    raises(L, "yaml.decode('\\xc3\\xa9: [\\n')", "line 2, column 1");
    raises(L, "yaml.decode('\\xc3\\xa9\\xc3\\xa9: @x')", "line 1, column 5"); /* characters */
    raises(L, "yaml.decode('a: \\xff')", "invalid leading UTF-8 octet at byte 4");
    raises(L, "yaml.decode('? [a]\\n: 1\\n')", "found unhashable key (a sequence) at line 1, column 3");
    raises(L, "yaml.decode(('[' ):rep(600))", "nesting deeper than 512");
    raises(L, "yaml.decode(42 == 42 and {} or '')", "bad argument #1 to 'decode'");
    ok(L, "local ok, err = pcall(function() return yaml.decode('a: [') end)\n"
          "assert(err:find('^%[string \"local ok.*\"%]:1: yaml.decode: '), err)"); /* the caller's line */
}

static void test_decode_bom_crlf_and_block_scalars(void **state)
{
    lua_State *L = *state;
    ok(L, "local v = yaml.decode('\\xef\\xbb\\xbfa: |\\r\\n  x\\r\\n  y\\r\\nb: >-\\r\\n  f\\r\\n  g\\r\\n')\n"
          "assert(v.a == 'x\\ny\\n' and v.b == 'f g')");
}

/* ---- encode ------------------------------------------------------------------ */

static void test_encode_quotes_what_would_read_as_something_else(void **state)
{
    lua_State *L = *state;
    ok(L, "for _, s in ipairs({'off', 'yes', 'Y', '1:20', '1e3', '~', '', ' a', 'a ', 'a: b',\n"
          "    'a #b', '- x', '0777', 'null', '.inf', '<<', '#', '@x', '2001-12-14', '1.5',\n"
          "    '{a}', '[a]', ',a', '}', ']'}) do\n"
          "  local text = yaml.encode({k = s})\n"
          "  assert(text ~= 'k: ' .. s .. '\\n', text)\n"
          "  assert(yaml.decode(text).k == s, text)\n"
          "end\n"
          "assert(yaml.encode({k = 'plain words'}) == 'k: plain words\\n')\n"
          "assert(yaml.encode('off') == '\"off\"\\n')");
}

/* Flow indicators end a plain scalar only inside a flow collection, and
 * encode writes block style: "${VAR}" (the daemon's config.yml style) and
 * "a, b" stay plain, as a key too (at the start they would open one: the
 * test above). PyYAML's reading is tests/yaml's encode suite. */
static void test_encode_writes_flow_indicators_plain_inside_a_block_scalar(void **state)
{
    lua_State *L = *state;
    ok(L, "for _, s in ipairs({'${TELEGRAM_BOT_TOKEN}', 'a, b', 'x[1]', 'f{a}g', '$', 'a]'}) do\n"
          "  local text = yaml.encode({k = s})\n"
          "  assert(text == 'k: ' .. s .. '\\n', text)\n"
          "  assert(yaml.decode(text).k == s, text)\n"
          "  text = yaml.encode({[s] = 1})\n"
          "  assert(text == s .. ': 1\\n', text)\n"
          "  assert(yaml.decode(text)[s] == 1, text)\n"
          "end\n"
          "assert(yaml.encode({'${A}', {t = '${B}'}}) == '- ${A}\\n- t: ${B}\\n')");
}

static void test_encode_writes_block_style_in_key_order(void **state)
{
    lua_State *L = *state;
    ok(L, "local v = yaml.decode('z: 1\\nv:\\n  - a\\n  - {q: 1, p: 2}\\nx: {}\\nw: []\\n')\n"
          "local want = 'z: 1\\nv:\\n  - a\\n  - q: 1\\n    p: 2\\nx: {}\\nw: []\\n'\n"
          "assert(yaml.encode(v) == want, yaml.encode(v))\n"
          "assert(yaml.encode({b = 1, a = {c = true}}) == 'a:\\n  c: true\\nb: 1\\n')\n"
          "assert(yaml.encode({1, 'x'}, {indent = 4}) == '-   1\\n-   x\\n')\n"
          "assert(yaml.encode({a = {b = 1}}, {indent = 4}) == 'a:\\n    b: 1\\n')");
}

static void test_encode_numbers_round_trip_exactly(void **state)
{
    lua_State *L = *state;
    ok(L, "assert(yaml.encode(3.0) == '3.0\\n' and yaml.encode(1e20) == '1.0e+20\\n')\n"
          "assert(yaml.encode(1/0) == '.inf\\n' and yaml.encode(-1/0) == '-.inf\\n')\n"
          "assert(yaml.encode(0/0) == '.nan\\n' and yaml.encode(math.mininteger) == '-9223372036854775808\\n')\n"
          "for _, x in ipairs({0.1, 1/3, 5e-324, 1.7976931348623157e308, 123456789.125}) do\n"
          "  assert(yaml.decode(yaml.encode(x)) == x, x)\n"
          "end");
}

static void test_encode_multi_line_strings_as_literal_blocks(void **state)
{
    lua_State *L = *state;
    ok(L, "assert(yaml.encode({m = 'a\\nb\\n'}) == 'm: |\\n  a\\n  b\\n')\n"
          "assert(yaml.encode({m = 'a\\nb'}) == 'm: |-\\n  a\\n  b\\n')\n"
          "assert(yaml.encode({m = 'a\\n\\n'}) == 'm: |+\\n  a\\n\\n')\n"
          "assert(yaml.encode({m = ' a\\nb'}) == 'm: \" a\\\\nb\"\\n')\n"
          "assert(yaml.encode({m = 'a\\r\\nb'}) == 'm: \"a\\\\r\\\\nb\"\\n')");
}

static void test_encode_refuses_what_yaml_cannot_hold(void **state)
{
    lua_State *L = *state;
    raises(L, "yaml.encode({a = {b = print}})", "yaml.encode: cannot encode a value (a function) at a.b");
    raises(L, "yaml.encode({'\\xff'})", "yaml.encode: string at [1] is not valid UTF-8");
    raises(L, "local t = {} t.self = t yaml.encode(t)", "yaml.encode: cycle at self");
    raises(L, "yaml.encode({[{}] = 1})", "a table key cannot be a table");
    raises(L, "yaml.encode(1, {indent = 0})", "indent must be 1..16");
    raises(L, "yaml.encode(json.array({a = 1}))", "is a json array but its keys are not 1..n");
}

/* ---- the sandbox: a lazy global, fs.read_yaml, fs.write_yaml ------------------- */

static const char SANDBOX_SCRIPT[] =
    "function check() return fs.exists('~/out.yml') end\n"
    "function migrate()\n"
    "  assert(yaml.null == json.null)\n"
    "  local conf = fs.read_yaml('~/config.yml')\n"
    "  assert(conf.redis.url == 'redis://x' and conf.debug == false, 'read_yaml')\n"
    "  conf.deployment = { channel = 'alpha' }\n"
    "  fs.write_yaml('~/out.yml', conf)\n"
    "  assert(fs.read('~/out.yml') == 'redis:\\n  url: redis://x\\ndebug: false\\n"
    "deployment:\\n  channel: alpha\\n', fs.read('~/out.yml'))\n"
    "  local ok, err = pcall(fs.read_yaml, '~/bad.yml')\n"
    "  assert(not ok and err:find('fs.read_yaml: \"~/bad.yml\": yaml.decode: ', 1, true), err)\n"
    "  ok, err = pcall(fs.write_yaml, '~/x.yml', { f = print })\n"
    "  assert(not ok and err:find('fs.write_yaml: \"~/x.yml\": yaml.encode: cannot', 1, true), err)\n"
    "  return true\n"
    "end\n";

static void test_sandbox_offers_yaml_and_fs_helpers(void **state)
{
    tu_world *w = *state;
    tu_write(w->home, "config.yml", "# comment\nredis:\n  url: redis://x\ndebug: off\n");
    tu_write(w->home, "bad.yml", "a: [\n");
    tu_script(w, "v1.1.0/001_yaml.lua", SANDBOX_SCRIPT);
    migrate_report *r = NULL;
    int code = tu_run(w, "1.0.0", "1.1.0", &r);
    const migrate_result *failed = migrate_report_failed(r);
    if (code != MIGRATE_OK)
        fail_msg("%s", failed != NULL && failed->error != NULL ? failed->error : "run failed");
    migrate_report_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_decode_resolves_plain_scalars_as_yaml_1_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_keeps_64_bit_integers_exact_and_refuses_larger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_explicit_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_mappings_keep_file_order_for_json_encode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_merge_keys_follow_pyyaml_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_aliases_share_and_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_documents_and_errors_say_where, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_bom_crlf_and_block_scalars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_quotes_what_would_read_as_something_else, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_writes_flow_indicators_plain_inside_a_block_scalar, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_encode_writes_block_style_in_key_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_numbers_round_trip_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_multi_line_strings_as_literal_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_refuses_what_yaml_cannot_hold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandbox_offers_yaml_and_fs_helpers, tu_world_setup,
                                        tu_world_teardown),
    };
    return cmocka_run_group_tests_name("yaml", tests, NULL, NULL);
}
