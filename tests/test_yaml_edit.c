/* test_yaml_edit.c - the YAML editor's position parser and splicers: byte
 * offsets right after UTF-8, a byte order mark and CR LF; refusals say why
 * and change nothing; new entries take the file's style. The differential
 * suite (tests/yaml_edit/oracle.py) checks the same splicers against PyYAML
 * on whole config files. */
#include "testutil.h"

#include "lua_formats.h"

#include <lauxlib.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

/* A state with scan, json and `backend` (lua/yaml_edit.lua's splicers, with
 * yaml.encode as the encoder) as globals. */
static lua_State *new_state(void)
{
    lua_State *L = tl_formats_state(TL_WITH_YAML);
    assert_non_null(L);
    mig_push_yaml_scan(L);
    lua_setglobal(L, "scan");
    const mig_embedded *src = mig_embedded_find("lua/yaml_edit.lua");
    assert_non_null(src);
    assert_int_equal(luaL_loadbufferx(L, src->data, src->len, "@lua/yaml_edit.lua", "t"), LUA_OK);
    lua_getglobal(L, "scan");
    lua_getglobal(L, "yaml");
    lua_getfield(L, -1, "encode");
    lua_remove(L, -2);
    lua_call(L, 2, 1);
    lua_setglobal(L, "backend");
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

/* Runs code; fails the test if it raises or returns anything but true
 * (a string it returns is the failure's description). */
static void check(lua_State *L, const char *code)
{
    lua_settop(L, 0);
    if (luaL_loadstring(L, code) != LUA_OK)
        fail_msg("does not compile: %s", lua_tostring(L, -1));
    if (lua_pcall(L, 0, 1, 0) != LUA_OK)
        fail_msg("%s\nraised: %s", code, lua_tostring(L, -1));
    if (!lua_toboolean(L, -1) || lua_type(L, -1) == LUA_TSTRING)
        fail_msg("%s\nfailed: %s", code, lua_tostring(L, -1) ? lua_tostring(L, -1) : "false");
}

/* ---- positions ----------------------------------------------------------- */

/* The text a node's byte range covers, after everything that makes
 * characters and bytes differ. */
static void test_scan_bytes_after_utf8_bom_and_crlf(void **state)
{
    check(*state,
          "local t = '\\xEF\\xBB\\xBFcaf\\xC3\\xA9: \"cr\\xC3\\xA8me\"\\r\\n'\n"
          "  .. '\\xE5\\x90\\x8D: \\xF0\\x9F\\x92\\xBB # emoji\\r\\n'\n"
          "  .. 'server:\\r\\n  port: 80\\r\\n  hosts:\\r\\n    - a\\r\\n    - b\\r\\n'\n"
          "local info = scan(t, {'server', 'hosts'})\n"
          "assert(info.bom and info.documents == 1)\n"
          "local root = info.nodes[0]\n"
          "local k, v = root.entries[1].key, root.entries[1].value\n"
          "assert(t:sub(k.s, k.e) == 'caf\\xC3\\xA9', t:sub(k.s, k.e))\n"
          "assert(t:sub(v.s, v.e) == '\"cr\\xC3\\xA8me\"' and v.style == 'double')\n"
          "local e = root.entries[2]\n"
          "assert(t:sub(e.value.s, e.value.e) == '\\xF0\\x9F\\x92\\xBB')\n"
          "local port = info.nodes[1].entries[1]\n"
          "assert(t:sub(port.key.s, port.value.e) == 'port: 80')\n"
          "local hosts = info.nodes[2]\n"
          "assert(hosts.kind == 'seq' and not hosts.flow and #hosts.items == 2)\n"
          "assert(t:sub(hosts.items[2].s, hosts.items[2].e) == 'b')\n"
          "return t:sub(hosts.s, hosts.s + 2) == '- a'");
}

static void test_scan_reports_styles_anchors_and_flow(void **state)
{
    check(*state,
          "local t = \"a: &x {k: 'v'}\\nb: *x\\nc: |\\n  text\\nd: [1, 2]\\n\"\n"
          "local root = scan(t, {}).nodes[0]\n"
          "local a, b, c, d = root.entries[1].value, root.entries[2].value,\n"
          "  root.entries[3].value, root.entries[4].value\n"
          "assert(a.kind == 'map' and a.flow and a.anchor == 'x')\n"
          "assert(t:sub(a.s, a.e) == \"&x {k: 'v'}\", t:sub(a.s, a.e))\n"
          "assert(b.kind == 'alias' and b.anchor == 'x')\n"
          "assert(c.style == 'literal' and c.value == 'text\\n')\n"
          "return d.kind == 'seq' and d.flow and t:sub(d.s, d.e) == '[1, 2]'");
}

/* Only the path's containers list their children: the cost of a scan
 * stays that of one parse. */
static void test_scan_reports_only_the_path(void **state)
{
    check(*state,
          "local t = 'a:\\n  x: 1\\nb:\\n  y: [1]\\n'\n"
          "local info = scan(t, {'b', 'y', 1})\n"
          "local root = info.nodes[0]\n"
          "assert(root.entries[1].value.entries == nil)\n"
          "assert(info.nodes[1] == root.entries[2].value and info.nodes[2].items ~= nil)\n"
          "assert(t:sub(info.nodes[3].s, info.nodes[3].e) == '1')\n"
          "return scan(t, {'zz'}).nodes[1] == nil");
}

static void test_scan_raises_on_invalid_yaml_with_its_line(void **state)
{
    check(*state,
          "local ok, err = pcall(scan, 'a: 1\\nb: [1, 2\\n', {})\n"
          "assert(not ok and err:find('line 3'), err)\n"
          "return scan('a: 1\\n---\\nb: 2\\n', {}).documents == 2");
}

/* ---- refusals ---------------------------------------------------------- */

/* Each unsafe edit raises a reason, and the text it was given is what the
 * caller still has (splicers return a new text only on success). */
static void test_refusals_name_the_reason(void **state)
{
    check(*state,
          "local cases = {\n"
          "  {'a: [1, 2]\\n', 'append', {'a'}, 3, 'inside a flow sequence'},\n"
          "  {'a: {b: 1}\\n', 'set', {'a', 'c'}, 3, 'inside a flow mapping'},\n"
          "  {'a: {b: 1}\\n', 'delete', {'a', 'b'}, nil, 'inside a flow mapping'},\n"
          "  {'a: &x\\n  b: 1\\n', 'set', {'a', 'b'}, 2, 'anchor'},\n"
          "  {'a: &x 1\\nb: *x\\n', 'set', {'b'}, 2, 'alias'},\n"
          "  {'a: &x 1\\nb: *x\\n', 'set', {'a'}, 2, 'anchor'},\n"
          "  {'d: &d {p: 1}\\na:\\n  <<: *d\\n  q: 2\\n', 'set', {'a', 'q'}, 3, 'merge key'},\n"
          "  {'a:\\n  b: 1\\n  b: 2\\n', 'set', {'a', 'c'}, 3, 'duplicate key'},\n"
          "  {'a:\\n  on: 1\\n  b: 2\\n', 'set', {'a', 'b'}, 3, 'not a string'},\n"
          "  {'a:\\n  1: x\\n', 'set', {'a', 'c'}, 3, 'not a string'},\n"
          "  {'a:\\n  0x1F: x\\n', 'set', {'a', 'c'}, 3, 'not a string'},\n"
          "  {'a:\\n\\tb: 1\\n', 'set', {'a', 'b'}, 2, 'tab indentation'},\n"
          "  {'a: 1\\n---\\nb: 2\\n', 'set', {'a'}, 2, 'several YAML documents'},\n"
          "  {'a: 1\\n', 'delete', {'a'}, nil, 'only entry of the document'},\n"
          "  {'l:\\n- a: 1\\n  b: 2\\n', 'delete', {'l', 1, 'a'}, nil, 'compact sequence item'},\n"
          "  {'a: 1\\n', 'insert', {'b'}, 2, 'no key x', {after = 'x'}},\n"
          "}\n"
          "for i, c in ipairs(cases) do\n"
          "  local args = {c[3]}\n"
          "  if c[2] == 'set' or c[2] == 'append' or c[2] == 'insert' then args[2] = c[4] end\n"
          "  if c[6] then args[3] = c[6] end\n"
          "  local ok, err = pcall(backend[c[2]], c[1], table.unpack(args, 1, 3))\n"
          "  if ok then return 'case ' .. i .. ' was not refused: ' .. err end\n"
          "  if not err:find(c[5], 1, true) then return 'case ' .. i .. ': ' .. err end\n"
          "end\n"
          "return true");
}

/* What resolves as a string is not refused: versions, dotted names,
 * quoted look-alikes. */
static void test_string_keys_that_look_like_numbers_are_accepted(void **state)
{
    check(*state,
          "local t = 'v:\\n  1.2.0: a\\n  \"on\": b\\n  x1: c\\n  \\'1\\': d\\n'\n"
          "local out = backend.set(t, {'v', 'x1'}, 2)\n"
          "return out == 'v:\\n  1.2.0: a\\n  \"on\": b\\n  x1: 2\\n  \\'1\\': d\\n' or out");
}

/* ---- splicing ------------------------------------------------------------ */

static void test_set_keeps_the_comment_after_the_value(void **state)
{
    check(*state,
          "local t = 'a:\\n  port: 80   # the port\\n  host: h\\n'\n"
          "local out = backend.set(t, {'a', 'port'}, 8080)\n"
          "return out == 'a:\\n  port: 8080   # the port\\n  host: h\\n' or out");
}

/* The daemon's own style survives a set: "${VAR}" stays plain in block
 * context; inside a flow collection, where braces and commas would end a
 * plain scalar, the new value is quoted. */
static void test_set_keeps_var_references_plain_in_block_context(void **state)
{
    check(*state,
          "local out = backend.set('t:\\n  token: ${OLD}   # c\\n', {'t', 'token'}, '${NEW_TOKEN}')\n"
          "assert(out == 't:\\n  token: ${NEW_TOKEN}   # c\\n', out)\n"
          "out = backend.set('l: {a: 1, b: 2}\\n', {'l', 'a'}, '${X}')\n"
          "assert(out == 'l: {a: \"${X}\", b: 2}\\n', out)\n"
          "out = backend.set('l: [1, 2]\\n', {'l', 1}, 'a, b')\n"
          "assert(out == 'l: [\"a, b\", 2]\\n', out)\n"
          "out = backend.rename('l: {a: 1}\\n', {'l', 'a'}, 'k{1}')\n"
          "return out == 'l: {\"k{1}\": 1}\\n' or out");
}

/* A new block sequence takes the file's sequence indentation: the first
 * "key:" line directly followed by an item line decides, whatever lines
 * of items after a comment come before it. */
static void test_new_sequences_follow_the_first_keyed_sequence(void **state)
{
    check(*state,
          "local out = backend.set('a:\\n  # c\\n  - x\\nb:\\n- y\\nc: 1\\n', {'c'}, {1, 2})\n"
          "assert(out == 'a:\\n  # c\\n  - x\\nb:\\n- y\\nc:\\n- 1\\n- 2\\n', out)\n"
          "out = backend.set('a:\\r\\n- x\\r\\nc: 1\\r\\n', {'c'}, {1})\n"
          "assert(out == 'a:\\r\\n- x\\r\\nc:\\r\\n- 1\\r\\n', out)\n"
          "out = backend.set('l:\\n  - x\\nc: 1\\n', {'c'}, {1, 2})\n"
          "assert(out == 'l:\\n  - x\\nc:\\n  - 1\\n  - 2\\n', out)\n"
          "out = backend.set('a:   \\n  # c\\n  - x\\nc: 1\\n', {'c'}, {1, 2})\n"
          "return out == 'a:   \\n  # c\\n  - x\\nc:\\n  - 1\\n  - 2\\n' or out");
}

static void test_set_an_empty_value(void **state)
{
    check(*state,
          "local out = backend.set('a:\\nb: 2\\n', {'a'}, 1)\n"
          "assert(out == 'a: 1\\nb: 2\\n', out)\n"
          "out = backend.append('l:\\n  -\\n  - x\\n', {'l'}, 3)\n"
          "assert(out == 'l:\\n  -\\n  - x\\n  - 3\\n', out)\n"
          "out = backend.set('l:\\n  -\\n  - x\\n', {'l', 1}, 5)\n"
          "return out == 'l:\\n  - 5\\n  - x\\n' or out");
}

/* A new key goes after the mapping's last entry, at its siblings' column,
 * with the file's line ending; a text without a final newline keeps none. */
static void test_new_key_follows_indentation_and_line_endings(void **state)
{
    check(*state,
          "local t = 'a:\\r\\n    b: 1\\r\\n    c:\\r\\n        d: 2\\r\\ne: 3'\n"
          "local out = backend.set(t, {'a', 'x'}, 4)\n"
          "assert(out == 'a:\\r\\n    b: 1\\r\\n    c:\\r\\n        d: 2\\r\\n    x: 4\\r\\ne: 3', out)\n"
          "out = backend.set(t, {'e2'}, 5)\n"
          "return out == t .. '\\r\\ne2: 5' or out");
}

static void test_missing_parents_use_the_indent_step(void **state)
{
    check(*state,
          "local out = backend.set('a:\\n    b: 1\\n', {'n', 'm'}, 1)\n"
          "return out == 'a:\\n    b: 1\\n\"n\":\\n    m: 1\\n' or out");
}

static void test_delete_takes_the_comment_lines_directly_above(void **state)
{
    check(*state,
          "local t = '# header\\n\\n# about a\\n# more\\na: 1\\nb: 2\\n'\n"
          "local out = backend.delete(t, {'a'})\n"
          "return out == '# header\\n\\nb: 2\\n' or out");
}

static void test_delete_takes_its_deeper_comment_lines_below(void **state)
{
    check(*state,
          "local t = 'a:\\n  b: 1\\n  # c: 2\\n# about d\\nd: 3\\n'\n"
          "local out = backend.delete(t, {'a'})\n"
          "return out == '# about d\\nd: 3\\n' or out");
}

static void test_delete_the_last_entry_of_a_text_without_final_newline(void **state)
{
    check(*state,
          "local out = backend.delete('a: 1\\r\\nb: 2', {'b'})\n"
          "return out == 'a: 1' or out");
}

static void test_delete_the_only_child_leaves_an_empty_collection(void **state)
{
    check(*state,
          "local out = backend.delete('a:\\n  # c\\n  b: 1\\nz: 0\\n', {'a', 'b'})\n"
          "assert(out == 'a: {}\\nz: 0\\n', out)\n"
          "out = backend.delete('l:\\n  - 1\\nz: 0\\n', {'l', 1})\n"
          "return out == 'l: []\\nz: 0\\n' or out");
}

static void test_rename_keeps_the_quoting_style(void **state)
{
    check(*state,
          "local out = backend.rename(\"'a b': 1\\n\\\"c\\\": 2\\nd: 3\\n\", {'a b'}, \"it's\")\n"
          "assert(out == \"'it''s': 1\\n\\\"c\\\": 2\\nd: 3\\n\", out)\n"
          "out = backend.rename(out, {'c'}, 'e')\n"
          "return out == \"'it''s': 1\\n\\\"e\\\": 2\\nd: 3\\n\" or out");
}

static void test_move_reindents_to_the_target(void **state)
{
    check(*state,
          "local t = 'a:\\n  # why\\n  b:\\n    c: |\\n      text\\n  k: 1\\nt:\\n      x: 1\\n'\n"
          "local out = backend.move(t, {'a', 'b'}, {'t', 'b'})\n"
          "return out == 'a:\\n  k: 1\\nt:\\n      x: 1\\n      # why\\n      b:\\n        c: |\\n          text\\n' or out");
}

static void test_append_follows_the_dash_column(void **state)
{
    check(*state,
          "local out = backend.append('l:\\n- 1\\nm: 2\\n', {'l'}, 2)\n"
          "assert(out == 'l:\\n- 1\\n- 2\\nm: 2\\n', out)\n"
          "out = backend.append('l:\\n    -   a: 1\\n        b: 2\\n', {'l'}, 3)\n"
          "return out == 'l:\\n    -   a: 1\\n        b: 2\\n    -   3\\n' or out");
}

static void test_insert_into_an_empty_document(void **state)
{
    check(*state,
          "local out = backend.insert('# only a comment\\n', {'a'}, 1, {comment = 'new'})\n"
          "return out == '# only a comment\\n# new\\na: 1\\n' or out");
}

/* ---- documents: yaml.edit ----------------------------------------------- */

static const char CONFIG[] =
    "# TeleClaude\n"
    "computer:\n"
    "  name: laptop   # shown in the menu\n"
    "  api_url: https://api.example\n"
    "\n"
    "update:\n"
    "  # the channel we follow\n"
    "  channel: stable\n"
    "  check_interval: 3600\n"
    "\n"
    "bots:\n"
    "  - name: main\n"
    "    token: ${TOKEN}\n"
    "  - name: backup\n"
    "    token: ${BACKUP}\n";

/* Runs code with CONFIG as `...`. */
static void check_config(lua_State *L, const char *code)
{
    lua_pushstring(L, CONFIG);
    lua_setglobal(L, "CONFIG");
    check(L, code);
}

/* The "done when" list, through the document API, each edit
 * changing only its own lines. */
static void test_document_edits_of_the_done_when_list(void **state)
{
    check_config(*state,
                 "local doc = yaml.edit(CONFIG)\n"
                 "doc:rename('computer.api_url', 'api_endpoint')\n"
                 "for i = 1, #doc:get('bots') do doc:rename({'bots', i, 'name'}, 'id') end\n"
                 "doc:set('computer.name', 'workstation')\n"
                 "doc:delete('update.check_interval')\n"
                 "doc:insert('deployment', json.object(), {after = 'update', comment = 'Update channels'})\n"
                 "doc:move('update.channel', 'deployment.channel')\n"
                 "assert(doc:changed())\n"
                 "local want = '# TeleClaude\\ncomputer:\\n  name: workstation   # shown in the menu\\n'\n"
                 "  .. '  api_endpoint: https://api.example\\n\\nupdate: {}\\n\\n# Update channels\\n'\n"
                 "  .. 'deployment:\\n  # the channel we follow\\n  channel: stable\\n\\nbots:\\n'\n"
                 "  .. '  - id: main\\n    token: ${TOKEN}\\n  - id: backup\\n    token: ${BACKUP}\\n'\n"
                 "return doc:text() == want or doc:text()");
}

/* A move of a whole section into another one, re-indented. */
static void test_document_moves_a_section(void **state)
{
    check_config(*state,
                 "local doc = yaml.edit(CONFIG)\n"
                 "doc:move('update', 'computer.update')\n"
                 "local want = '# TeleClaude\\ncomputer:\\n  name: laptop   # shown in the menu\\n'\n"
                 "  .. '  api_url: https://api.example\\n  update:\\n    # the channel we follow\\n'\n"
                 "  .. '    channel: stable\\n    check_interval: 3600\\n\\nbots:\\n'\n"
                 "  .. '  - name: main\\n    token: ${TOKEN}\\n  - name: backup\\n    token: ${BACKUP}\\n'\n"
                 "return doc:text() == want or doc:text()");
}

/* A refused edit raises naming the method, the path and the reason, and
 * the document keeps its text; an equal value changes nothing. */
static void test_document_refusals_leave_the_text(void **state)
{
    check(*state,
          "local t = 'base: &b\\n  x: 1\\nuse: *b\\nlist: [1, 2]\\nk: v\\n'\n"
          "local doc = yaml.edit(t)\n"
          "local ok, err = pcall(doc.append, doc, 'list', 3)\n"
          "assert(not ok and err:find('yaml.edit: append list: inside a flow sequence', 1, true), err)\n"
          "ok, err = pcall(doc.set, doc, 'base.x', 2)\n"
          "assert(not ok and err:find('yaml.edit: set base.x: the path has an anchor', 1, true), err)\n"
          "assert(doc:text() == t and not doc:changed())\n"
          "doc:set('k', 'v')\n"
          "return doc:text() == t and not doc:changed()");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scan_bytes_after_utf8_bom_and_crlf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_reports_styles_anchors_and_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_reports_only_the_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_raises_on_invalid_yaml_with_its_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refusals_name_the_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_keys_that_look_like_numbers_are_accepted,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_keeps_the_comment_after_the_value, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_set_keeps_var_references_plain_in_block_context, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_sequences_follow_the_first_keyed_sequence, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_set_an_empty_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_key_follows_indentation_and_line_endings, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_parents_use_the_indent_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_takes_the_comment_lines_directly_above, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delete_takes_its_deeper_comment_lines_below, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delete_the_last_entry_of_a_text_without_final_newline,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_the_only_child_leaves_an_empty_collection,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_keeps_the_quoting_style, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_reindents_to_the_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_follows_the_dash_column, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_into_an_empty_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_document_edits_of_the_done_when_list, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_document_moves_a_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_document_refusals_leave_the_text, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
