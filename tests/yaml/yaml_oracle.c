/* yaml_oracle.c - the Lua side of the PyYAML differential suite
 * (tests/yaml/run.sh). Writes values in the canonical text that
 * tests/yaml/oracle.py writes for PyYAML's values, so the two compare as
 * strings:
 *   yaml_oracle canon FILE...   one line per file: the canonical text of
 *                               yaml.decode(file), or "ERROR"
 *   yaml_oracle encode DIR      yaml.encode of generated values into
 *                               DIR/NNNN.yaml, their canonical text into
 *                               DIR/NNNN.expect; checks yaml.decode reads
 *                               each back itself (prints "N passed, N failed")
 */
#include "../lua_formats.h"

#include <lauxlib.h>
#include <lualib.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The canonical text of a value, as oracle.py's canon(): null, true,
 * i:<int>, f:<%.17g>, s:"<bytes escaped>", [items], {k=v,...} with string
 * keys in their order, then the other keys sorted by their text. */
static const char CANON[] =
    "local orders, _, array_mt = ...\n"
    "local canon\n"
    "local function str(s)\n"
    "  return 's:\"' .. s:gsub('[^%w %-%.:/_$@{}()+=,;!?*&<>|~^]', function(c)\n"
    "    return ('\\\\x%02x'):format(c:byte()) end) .. '\"'\n"
    "end\n"
    "function canon(v)\n"
    "  local t = type(v)\n"
    "  if v == nil or v == yaml.null then return 'null' end\n"
    "  if t == 'boolean' then return tostring(v) end\n"
    "  if t == 'string' then return str(v) end\n"
    "  if math.type(v) == 'integer' then return 'i:' .. v end\n"
    "  if t == 'number' then\n"
    "    if v ~= v then return 'f:nan' end\n"
    "    if v == math.huge then return 'f:inf' end\n"
    "    if v == -math.huge then return 'f:-inf' end\n"
    "    return ('f:%.17g'):format(v)\n"
    "  end\n"
    "  if t ~= 'table' then return '?' .. t end\n"
    "  local mt = debug.getmetatable(v)\n"
    "  local n = 0\n"
    "  for _ in pairs(v) do n = n + 1 end\n"
    "  if mt == array_mt or (mt == nil and n > 0 and #v == n) then\n"
    "    local out = {}\n"
    "    for i = 1, #v do out[i] = canon(v[i]) end\n"
    "    return '[' .. table.concat(out, ',') .. ']'\n"
    "  end\n"
    "  local out, seen, others = {}, {}, {}\n"
    "  for _, k in ipairs(orders[v] or {}) do\n"
    "    if not seen[k] and v[k] ~= nil then seen[k] = true; out[#out + 1] = str(k) .. '=' .. canon(v[k]) end\n"
    "  end\n"
    "  local strings = {}\n"
    "  for k, x in pairs(v) do\n"
    "    if seen[k] then\n"
    "    elseif type(k) == 'string' then strings[#strings + 1] = k\n"
    "    else others[#others + 1] = canon(k) .. '=' .. canon(x) end\n"
    "  end\n"
    "  table.sort(strings)\n"
    "  for _, k in ipairs(strings) do out[#out + 1] = str(k) .. '=' .. canon(v[k]) end\n"
    "  table.sort(others)\n"
    "  for _, s in ipairs(others) do out[#out + 1] = s end\n"
    "  return '{' .. table.concat(out, ',') .. '}'\n"
    "end\n"
    "return canon\n";

/* Values for the encode round trip: every awkward string we know of, as a
 * value, a key and inside sequences; numbers at their limits. */
static const char VALUES[] =
    "local strings = {\n"
    "  '', ' ', 'a', 'off', 'Off', 'OFF', 'oFF', 'yes', 'no', 'y', 'n', 'Y', 'N', 'on', 'true', 'False',\n"
    "  'null', 'Null', 'NULL', 'nUll', '~', '<<', '=', '1:20', '1e3', '1.0e+3', '0777', '0o17', '0x1F',\n"
    "  '0b101', '08', '1_000', '.inf', '-.inf', '.nan', '.NaN', '+1', '-1', '.5', '1.', '12', '-0',\n"
    "  '2001-12-14', '2001-12-14 21:59:43.10 -5', ' lead', 'trail ', 'a: b', 'a #b', 'a#b', '#c',\n"
    "  '- x', '-x', '? x', '?x', ': x', ':x', 'x:', 'x: ', '[a]', '{a}', 'a,b', '&a', '*a', '!t', '|',\n"
    "  '>', \"'q'\", '\"q\"', '%x', '@x', '`x', '---', '...', '--- x', 'a\\nb', 'a\\nb\\n', 'a\\n\\n',\n"
    "  'a\\n\\n\\n', '\\n', '\\na', ' a\\nb', 'a\\n b', 'a\\r\\nb', 'tab\\there', '\\t', 'a\\0b', '\\27[0m',\n"
    "  'caf\\195\\169', '\\230\\151\\165\\230\\156\\172', '\\240\\159\\152\\128', '\\194\\133',\n"
    "  '\\226\\128\\168', '\\239\\187\\191bom', '\\127', '${HOME}/x', 'http://h:80/p?q=1#f', 'C:\\\\x',\n"
    "  'a  b', 'a\\n  indented\\nback', 'line # not comment\\n#nor this\\n', ('x'):rep(1500),\n"
    "  'key: value\\n- item\\n', '\\\\', '\\'', '\"',\n"
    /* flow indicators inside a plain scalar: plain in block context */
    "  '${TELEGRAM_BOT_TOKEN}', 'a, b', 'a,', 'a ,b', 'x[1]', 'a[', 'a]', 'f{a}g', 'a}', 'a:,b',\n"
    "  'x:{y}', 'a:[b]', '${A}:${B}', 'x #{y}', 'x#{y}', '-{a}', '?[a]', ':{a}', '$', '${',\n"
    "}\n"
    "local values = {}\n"
    "for _, s in ipairs(strings) do\n"
    "  values[#values + 1] = s\n"
    "  values[#values + 1] = json.object({ [s] = s })\n"
    "  values[#values + 1] = json.array({ s, { k = s }, { s } })\n"
    "end\n"
    "for _, n in ipairs({ 0, 1, -1, math.maxinteger, math.mininteger, 2^53 + 1 | 0, 0.0, -0.0, 1.5, 0.1,\n"
    "    1e300, 1e-300, 5e-324, 1e20, 1e21, 123456789012345680.0, 3.0, -2.5, 1/0, -1/0, 0/0 }) do\n"
    "  values[#values + 1] = n\n"
    "  values[#values + 1] = { n = n, list = { n, n } }\n"
    "end\n"
    "values[#values + 1] = { [1] = 'a', [3] = 'c' }\n"
    "values[#values + 1] = { [true] = 'yes', [false] = 'no', [2] = 'two', x = 'x' }\n"
    "values[#values + 1] = { a = {}, b = json.array(), c = json.object(), d = { {}, {{}} } }\n"
    "values[#values + 1] = { deep = { deeper = { deepest = { 1, { 2, { 3 } } } } } }\n"
    "values[#values + 1] = yaml.null\n"
    "values[#values + 1] = { n = yaml.null, [yaml.null] = 1 }\n"
    "values[#values + 1] = { { { 'a', 'b' }, { c = { 'd' } } } }\n"
    "values[#values + 1] = yaml.decode('z: 1\\ny: 2\\nx: [a, {q: 1, p: 2}]\\n')\n"
    "return values\n";

static lua_State *new_state(void)
{
    lua_State *L = tl_formats_state(TL_WITH_YAML);
    if (L == NULL)
        exit(2);
    return L;
}

/* Pushes canon(), built over json's key-order registry and markers. */
static void push_canon(lua_State *L)
{
    if (luaL_loadstring(L, CANON) != LUA_OK)
        exit(2);
    lua_getglobal(L, "json");
    lua_getfield(L, -1, "decode");
    lua_remove(L, -2);
    lua_getupvalue(L, -1, 3);
    lua_getupvalue(L, -2, 1);
    lua_getupvalue(L, -3, 2);
    lua_remove(L, -4);
    lua_call(L, 3, 1);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *bigger = realloc(buf, cap *= 2);
            if (bigger == NULL)
                free(buf);
            buf = bigger;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static int canon_files(lua_State *L, int argc, char **argv)
{
    push_canon(L);
    int canon = lua_gettop(L);
    for (int i = 2; i < argc; i++) {
        size_t len;
        char *text = read_file(argv[i], &len);
        if (text == NULL)
            return 2;
        lua_getglobal(L, "yaml");
        lua_getfield(L, -1, "decode");
        lua_remove(L, -2);
        lua_pushlstring(L, text, len);
        free(text);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
            /* the message, for a person reading a mismatch */
            printf("%s\tERROR\t%s\n", argv[i], lua_tostring(L, -1));
        } else {
            lua_pushvalue(L, canon);
            lua_insert(L, -2);
            lua_call(L, 1, 1);
            printf("%s\t%s\n", argv[i], lua_tostring(L, -1));
        }
        lua_settop(L, canon);
    }
    return 0;
}

static int write_text(const char *dir, int i, const char *ext, const char *s, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%04d.%s", dir, i, ext);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    fwrite(s, 1, n, f);
    return fclose(f);
}

static int encode_values(lua_State *L, const char *dir)
{
    int passed = 0, failed = 0;
    push_canon(L);
    int canon = lua_gettop(L);
    if (luaL_loadstring(L, VALUES) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        printf("values: %s\n", lua_tostring(L, -1));
        return 2;
    }
    int values = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, values);
    for (lua_Integer i = 1; i <= n; i++) {
        for (int indent = 2; indent <= 4; indent += 2) {
            int id = (int)i * 2 + indent / 2 - 2;
            size_t len;
            lua_getglobal(L, "yaml");
            lua_getfield(L, -1, "encode");
            lua_rawgeti(L, values, i);
            lua_createtable(L, 0, 1);
            lua_pushinteger(L, indent);
            lua_setfield(L, -2, "indent");
            if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
                printf("FAIL %04d: encode raised %s\n", id, lua_tostring(L, -1));
                failed++;
                lua_settop(L, values);
                continue;
            }
            const char *text = lua_tolstring(L, -1, &len);
            lua_pushvalue(L, canon);
            lua_rawgeti(L, values, i);
            lua_call(L, 1, 1);
            const char *expect = lua_tostring(L, -1);
            if (write_text(dir, id, "yaml", text, len) != 0 ||
                write_text(dir, id, "expect", expect, strlen(expect)) != 0)
                return 2;
            /* and yaml.decode reads it back itself */
            lua_getglobal(L, "yaml");
            lua_getfield(L, -1, "decode");
            lua_pushvalue(L, -4);
            if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
                printf("FAIL %04d: yaml.decode of its encoding raised %s\n%s\n", id,
                       lua_tostring(L, -1), text);
                failed++;
            } else {
                lua_pushvalue(L, canon);
                lua_insert(L, -2);
                lua_call(L, 1, 1);
                if (strcmp(lua_tostring(L, -1), expect) != 0) {
                    printf("FAIL %04d: decode(encode(v)) differs\n%s\nwant %s\ngot  %s\n", id,
                           text, expect, lua_tostring(L, -1));
                    failed++;
                } else {
                    passed++;
                }
            }
            lua_settop(L, values);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed > 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    lua_State *L = new_state();
    int rc = 2;
    if (strcmp(argv[1], "canon") == 0)
        rc = canon_files(L, argc, argv);
    else if (strcmp(argv[1], "encode") == 0 && argc == 3)
        rc = encode_values(L, argv[2]);
    lua_close(L);
    return rc;
}
