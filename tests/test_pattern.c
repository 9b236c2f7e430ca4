/* The sandbox's pattern functions (src/pattern.c) against the stock Lua 5.4
 * ones: the same calls in two plain states, one with the stock string
 * library and one with ours installed over it, must give the same values
 * (types included) or the same error message. The calls are Lua's own
 * pattern test cases (rewritten from the assertions of its test suite's
 * pm.lua) and a seeded, generated corpus of patterns and subjects. */
#include "testutil.h"

#include "internal.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Serializes what a call returned (or the error), in both states alike. */
static const char DRIVER[] =
    "local pack, select, tostring, type, concat, pcall = table.pack, select, tostring, type,\n"
    "    table.concat, pcall\n"
    "local function ser(ok, ...)\n"
    "  local out = {tostring(ok), tostring(select('#', ...))}\n"
    "  for i = 1, select('#', ...) do\n"
    "    local v = select(i, ...)\n"
    "    out[#out + 1] = type(v) .. ':' .. tostring(v)\n"
    "  end\n"
    "  return concat(out, '\\1')\n"
    "end\n"
    "function collect(iter)\n" /* every gmatch result, bounded */
    "  local out = {}\n"
    "  for _ = 1, 1000 do\n"
    "    local r = pack(iter())\n"
    "    if r[1] == nil then break end\n"
    "    for i = 1, r.n do out[#out + 1] = type(r[i]) .. ':' .. tostring(r[i]) end\n"
    "    out[#out + 1] = ';'\n"
    "  end\n"
    "  return concat(out, '\\1')\n"
    "end\n"
    "local repl_table = {a = '[A]', b = false, ab = 7, [''] = 'E', [1] = 'one', [3] = {},\n"
    "                    x = 1.5, ['('] = '<paren>'}\n"
    "local function repl_fn(...)\n"
    "  local n, first = select('#', ...), ...\n"
    "  if first == 'b' then return false end\n"
    "  if first == 'c' then return {} end\n" /* invalid replacement value */
    "  if n == 2 then return nil end\n"
    "  if n == 3 then return 42 end\n"
    "  local t = {}\n"
    "  for i = 1, n do t[i] = tostring((select(i, ...))) end\n"
    "  return '<' .. concat(t, ',') .. '>'\n"
    "end\n"
    "function RUN(op, s, p, a, b)\n"
    "  if op == 'find' then return ser(pcall(string.find, s, p, a, b)) end\n"
    "  if op == 'match' then return ser(pcall(string.match, s, p, a)) end\n"
    "  if op == 'gmatch' then\n"
    "    return ser(pcall(function() return collect(string.gmatch(s, p, a)) end))\n"
    "  end\n"
    "  if op == 'gsub' then return ser(pcall(string.gsub, s, p, a, b)) end\n"
    "  if op == 'gsubt' then return ser(pcall(string.gsub, s, p, repl_table, b)) end\n"
    "  if op == 'gsubf' then return ser(pcall(string.gsub, s, p, repl_fn, b)) end\n"
    "  error('unknown op ' .. op)\n"
    "end\n"
    "function EVAL(src)\n"
    "  local f = assert(load('return ' .. src, '=case', 't'))\n"
    "  return ser(pcall(f))\n"
    "end\n";

typedef struct pair {
    lua_State *stock, *ours;
    int passed, failed;
} pair;

static lua_State *new_state(bool ours)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    lua_pop(L, 3);
    if (ours) {
        lua_getglobal(L, LUA_STRLIBNAME);
        mig_open_patterns(L, -1);
        lua_pop(L, 1);
    }
    if (luaL_dostring(L, DRIVER) != LUA_OK)
        fail_msg("driver: %s", lua_tostring(L, -1));
    return L;
}

static int pair_setup(void **state)
{
    pair *p = calloc(1, sizeof *p);
    p->stock = new_state(false);
    p->ours = new_state(true);
    *state = p;
    return 0;
}

static int pair_teardown(void **state)
{
    pair *p = *state;
    lua_close(p->stock);
    lua_close(p->ours);
    free(p);
    return 0;
}

/* An argument of a generated call. */
typedef struct arg {
    enum { A_NONE, A_NIL, A_INT, A_STR, A_TRUE } kind;
    lua_Integer i;
    const char *s;
    size_t len;
} arg;

static void push_arg(lua_State *L, const arg *a)
{
    switch (a->kind) {
    case A_NONE:
    case A_NIL: lua_pushnil(L); break;
    case A_INT: lua_pushinteger(L, a->i); break;
    case A_STR: lua_pushlstring(L, a->s, a->len); break;
    case A_TRUE: lua_pushboolean(L, 1); break;
    }
}

/* Calls the global fn with the args in L; leaves the serialized result. */
static void call_in(lua_State *L, const char *fn, const arg *args, int n)
{
    lua_getglobal(L, fn);
    for (int i = 0; i < n; i++)
        push_arg(L, &args[i]);
    if (lua_pcall(L, n, 1, 0) != LUA_OK)
        fail_msg("driver failed: %s", lua_tostring(L, -1));
}

/* Prints s with its bytes escaped, so a pattern can be pasted into Lua. */
static void print_quoted(const char *label, const char *s, size_t len)
{
    printf("  %s '", label);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\'' || c == '\\')
            printf("\\%c", c);
        else if (c < 32 || c > 126)
            printf("\\%d", c);
        else
            putchar(c);
    }
    printf("'\n");
}

/* Runs the same call in both states and counts (and prints) a difference. */
static void compare(pair *p, const char *fn, const arg *args, int n, const char *what)
{
    call_in(p->stock, fn, args, n);
    call_in(p->ours, fn, args, n);
    size_t l1, l2;
    const char *r1 = lua_tolstring(p->stock, -1, &l1);
    const char *r2 = lua_tolstring(p->ours, -1, &l2);
    if (l1 == l2 && memcmp(r1, r2, l1) == 0) {
        p->passed++;
    } else {
        if (p->failed < 20) {
            printf("pattern difference (%s):\n", what);
            for (int i = 0; i < n; i++)
                if (args[i].kind == A_STR)
                    print_quoted("arg", args[i].s, args[i].len);
                else if (args[i].kind == A_INT)
                    printf("  arg %lld\n", (long long)args[i].i);
            print_quoted("stock", r1, l1);
            print_quoted("ours ", r2, l2);
        }
        p->failed++;
    }
    lua_pop(p->stock, 1);
    lua_pop(p->ours, 1);
}

static void eval_both(pair *p, const char *src)
{
    arg a = {.kind = A_STR, .s = src, .len = strlen(src)};
    compare(p, "EVAL", &a, 1, src);
}

/* ---- Lua's own cases ----------------------------------------------------------- */

/* The calls of Lua 5.4's pm.lua, each compared between the two states
 * instead of asserted against a constant. */
static const char *const LUA_CASES[] = {
    /* find */
    "string.find('', '')", "string.find('alo', '')", "string.find('a\\0o a\\0o a\\0o', 'a', 1)",
    "string.find('a\\0o a\\0o a\\0o', 'a\\0o', 2)", "string.find('a\\0o a\\0o a\\0o', 'a\\0o', 9)",
    "string.find('a\\0a\\0a\\0a\\0\\0ab', '\\0ab', 2)", "string.find('a\\0a\\0a\\0a\\0\\0ab', 'b')",
    "string.find('a\\0a\\0a\\0a\\0\\0ab', 'b\\0')", "string.find('', '\\0')",
    "string.find('alo123alo', '12')", "string.find('alo123alo', '^12')",
    "string.find('aaab', 'a*')", "string.find('aaa', '^.*$')", "string.find('aaab', 'a-')",
    "string.find('aaa', 'b*')", "string.find('aaa', 'ab*a')", "string.find('aba', 'ab*a')",
    "string.find('aaab', 'a+')", "string.find('aaa', '^.+$')", "string.find('aaa', 'b+')",
    "string.find('aaa', 'ab+a')", "string.find('aba', 'ab+a')", "string.find('a$a', '.$')",
    "string.find('a$a', '.%$')", "string.find('a$a', '.$.')", "string.find('a$a', '$$')",
    "string.find('a$b', 'a$')", "string.find('a$a', '$')", "string.find('', 'b*')",
    "string.find('aaa', 'bb*')", "string.find('aaab', 'a-b')", "string.find('aaa', '^.-$')",
    "string.find('aabaaabaaabaaaba', 'b.*b')", "string.find('aabaaabaaabaaaba', 'b.-b')",
    "string.find('alo xo', '.o$')", "string.find(' \\n isto é assim', '%S%S*')",
    "string.find(' \\n isto é assim', '%S*$')", "string.find(' \\n isto é assim', '[a-z]*$')",
    "string.find('um caracter ? extra', '[^%sa-z]')", "string.find('', 'a?')",
    "string.find('á', 'á?')", "string.find('ábl', 'á?b?l?')", "string.find('  ábl', 'á?b?l?')",
    "string.find('aa', '^aa?a?a')", "string.find(']]]áb', '[^]]')",
    "string.find('0alo alo', '%x*')", "string.find('alo alo', '%C+')",
    "string.find('(álo)', '%(á')", "string.find('abc', '^ab', 2)",
    "string.find('  alo aalo allo', '%f[%S].-%f[%s].-%f[%S]')",
    "string.find('abc\\0efg', '%\\0')", "string.find('abc\\0efg', '[\\0]')",
    "string.find('abc\\0efg', '[^\\0]+')", "string.find('abc\\0\\0', '\\0.')",
    "string.find('abcx\\0\\0abc\\0abc', 'x\\0\\0abc\\0a.')",
    "string.find('(a)', '%(a%)', 1, true)", "string.find('a.b', '.', 1, true)",
    "string.find('a.b', '.', -1, true)", "string.find('abc', 'c', 10, true)",
    "string.find('abc', '', 4)", "string.find('abc', '', 5)", "string.find('abc', '', -10)",
    "string.find('abc', 'b', math and 0 or 0)", "string.find('', '', 1)",
    "string.find('', '', 2)", "string.find('abc', '^', 4)", "string.find('abc', '$', 4)",
    /* match */
    "string.match('aaab', '.*b')", "string.match('aaa', '.*a')", "string.match('b', '.*b')",
    "string.match('aaab', '.+b')", "string.match('aaa', '.+a')", "string.match('b', '.+b')",
    "string.match('aaab', '.?b')", "string.match('aaa', '.?a')", "string.match('b', '.?b')",
    "string.match('alo xyzK', '(%w+)K')", "string.match('254 K', '(%d*)K')",
    "string.match('alo ', '(%w*)$')", "string.match('alo ', '(%w+)$')",
    "string.match('(álo)', '%((á)')", "string.match('âlo alo', '^(((.).).* (%w*))$')",
    "string.match('0123456789', '(.+(.?)())')", "string.match('  alo aalo allo', "
                                                "'%f[%S](.-%f[%s].-%f[%S])')",
    "string.match('[[]] [][] [[[[', '^%[%[(.-)%]%]')", "string.match('alo', '%f[%l]')",
    "string.match(' x', '%f[%S]')", "string.match('clo alo', '^(clo)()(%s*)()(alo)$')",
    "string.match('hello world', '%w+')", "string.match(' a ', '()a()')",
    "string.match('abc', '()', 4)", "string.match('abc', '()', 5)",
    "string.match('abc', '()', -1)", "string.match('==========', '^([=]*)=%1$')",
    "string.match('==========', '^([=]*)=%2$')", "string.match('abc', '%1')",
    "string.match('abc', '(a)%2')", "string.match('abc', '(a%1)')",
    "string.match('x', '[a-]')", "string.match('-', '[a-]')", "string.match(']', '[]]')",
    "string.match('a', '[^]a]')", "string.match('%', '[%%]')", "string.match('-', '[%-]')",
    "string.match('a', '[%a-z]')", "string.match('-', '[%a-z]')",
    "string.find('a\\0b', '%z')", "string.find('a\\0b', '%Z+')", "string.gsub('\\0a\\0', '[%z]', 'z')",
    /* gsub */
    "string.gsub('ülo ülo', 'ü', 'x')", "string.gsub('alo úlo  ', ' +$', '')",
    "string.gsub('  alo alo  ', '^%s*(.-)%s*$', '%1')", "string.gsub('alo  alo  \\n 123\\n ', "
                                                      "'%s+', ' ')",
    "string.gsub('abc', '%w', '%1%0')", "string.gsub('abc', '%w+', '%0%1')",
    "string.gsub('áéí', '$', '\\0óú')", "string.gsub('', '^', 'r')", "string.gsub('', '$', 'r')",
    "string.gsub('um (dois) tres (quatro)', '(%(%w+%))', string.upper)",
    "string.gsub('abc=xyz', '(%w*)(%p)(%w+)', '%3%2%1-%0')", "string.gsub('abc', '', '-')",
    "string.gsub('abc', '%w', '%%%0', 2)", "string.gsub('abc', '%w', '%')",
    "string.gsub('abc', '%w', '%x')", "string.gsub('abc', '(%w)', '%2')",
    "string.gsub('alo alo', '()[al]', '%1')", "string.gsub('abc d', '(.)', '%1@')",
    "string.gsub('abcd', '(.)', '%0@', 2)", "string.gsub('alo alo', '%f[%w]%w+', '%0%0')",
    "string.gsub('trocar tudo em |teste|b| é |beleza|al|', '|([^|]*)|([^|]*)|', '%2%1')",
    "string.gsub('function', '%f[%w]%w+', 'x')", "string.gsub('THE (quick) fox', '%f[%a]%a+', "
                                                   "string.lower)",
    "string.gsub('hello world', '(%w+)', '<%1>')", "string.gsub('hello world', '%w+', '%0 %0', 1)",
    "string.gsub('hello world from Lua', '(%w+)%s*(%w+)', '%2 %1')",
    "string.gsub('abc', 'b*', '-')", "string.gsub('abc', 'b-', '-')", "string.gsub('', 'x*', '-')",
    "string.gsub('a b cd', ' *', '-')", "string.gsub('abc', '^b*', '-')",
    "string.gsub('$ and $$', '%$', '%%')", "string.gsub('abc', 'x', {x = 1})",
    "string.gsub('a b c', '%w', {a = 1, b = true})", "string.gsub('a b c', '%w', {a = 1, b = {}})",
    "string.gsub('abc', '.', function(c) return c == 'b' and 1.5 or nil end)",
    "string.gsub('abc', '()', function(p) return p end)",
    "string.gsub('abc', '(b)()', {b = 'B'})", "string.gsub('alo', '.', {})",
    "string.gsub('x', 'x', 1)", "string.gsub('x', 'x', 2.0)", "string.gsub('x', 'x')",
    "string.gsub('x', 'x', true)", "string.gsub('abc', 'b', '%0', -1)",
    "string.gsub('abc', 'b', '%0', 0)", "string.gsub('abc', '.', 'x', 1.0)",
    "string.gsub('abc', '.', 'x', 1.5)", "string.gsub('abc', '.', 'x', '2')",
    "string.gsub('(a)(b)', '%b()', '[%0]')", "string.gsub('alo (um (dois) (tres)) fim', '%b()', '')",
    "string.gsub('a(b(c)d)e', '%b()', '')", "string.gsub('[x]', '%b[]', 'y')",
    "string.gsub('x', '%b', 'y')", "string.gsub('x', '%bx', 'y')",
    "string.gsub('aaa aa a aaa a', '%f[%w]%a', 'x')", "string.gsub('[[]] [][] [[[[', '%f[[].', 'x')",
    "string.gsub('01abc45de3', '%f[%d]', '.')", "string.gsub('01abc45  de3x', '%f[%D]%w', '.')",
    "string.gsub('function', '%f[\\1-\\255]%w', '.')", "string.gsub('function', '%f[^\\1-\\255]', '.')",
    "string.gsub('abc', '%fa', 'x')",
    /* gmatch */
    "collect(string.gmatch('first second word', '%w+'))",
    "collect(string.gmatch('k=v, a=b', '(%w+)=(%w+)'))",
    "collect(string.gmatch('abcde', '()'))", "collect(string.gmatch('ab', '.-'))",
    "collect(string.gmatch('abc', 'b*'))", "collect(string.gmatch('', ''))",
    "collect(string.gmatch('xuxx uu ppar r', '()(.)%2'))",
    "collect(string.gmatch('13 14 10 = 11, 15= 16, 22=23', '(%d+)%s*=%s*(%d+)'))",
    "collect(string.gmatch('a b c d', '%a', 3))", "collect(string.gmatch('a b c d', '%a', -3))",
    "collect(string.gmatch('a b c d', '%a', 100))", "collect(string.gmatch('abc', '', 4))",
    "collect(string.gmatch('abc', '', 5))", "collect(string.gmatch('^ab', '^a'))",
    "collect(string.gmatch('aaa', '%f[a]'))", "collect(string.gmatch('abc', '(a'))",
    "collect(string.gmatch('abc', 'a)'))", "collect(string.gmatch('abc', '%'))",
    /* errors and limits */
    "string.find('a', '%')", "string.find('a', '[a')", "string.find('a', '[]')",
    "string.find('a', '[^]')", "string.find('a', '[a%')", "string.find('a', '(')",
    "string.find('a', ')')", "string.find('a', '(()')", "string.find('a', '%f')",
    "string.find('a', '%fa')", "string.find('a', '%b')", "string.find('a', '%1')",
    "string.find('a', '(.)%2')", "string.find('a', '(%1)')", "string.gsub('alo', '(%a)', '%2')",
    "string.gsub('alo', '(%a)', '%')", "string.gsub('alo', '.', {a = {}})",
    "string.gsub('alo', '.', function() return {} end)", "string.rep('a', 300):find(string.rep('a?', 300))",
    "string.find(string.rep('a', 30), string.rep('(', 33) .. string.rep(')', 33))",
    "string.find(string.rep('a', 30), string.rep('(', 32) .. string.rep(')', 32))",
    "string.match(string.rep('a', 40), string.rep('(a)', 32))",
    "string.match(string.rep('a', 40), string.rep('(a)', 33))",
    "string.find(string.rep('a', 20), string.rep('a?', 20) .. 'b')",
    "string.find(string.rep('a', 201), string.rep('.?', 201))",
    "string.gsub(string.rep('a', 10), '.', '%0', 3)", "string.find('abc', 'b', 2^53)",
    "string.find('abc', 'b', -2^53)", "string.find('abc', 'b', 0x7fffffffffffffff)",
    "string.find('abc', 'b', -0x7fffffffffffffff - 1)", "string.match('abc', 'b', -100)",
    "string.gmatch('abc', 'b', 0x7fffffffffffffff)()", "string.find('abc', 'b', 1.5)",
    "string.find('abc', 'b', '2')", "string.find('abc', 'b', {})", "string.find(nil, 'b')",
    "string.find('abc')", "string.match(123, '%d')", "string.gsub(12.5, '%.', ',')",
    "string.gsub('abc', 'b', nil)", "string.gmatch('abc')", "('x'):find('x')",
    "('abc'):gsub('%w', '%0%0')", "('abc'):match('(b)(c)')",
};

static void test_lua_own_cases(void **state)
{
    pair *p = *state;
    for (size_t i = 0; i < sizeof LUA_CASES / sizeof *LUA_CASES; i++)
        eval_both(p, LUA_CASES[i]);
    printf("pm.lua cases: %d same, %d different\n", p->passed, p->failed);
    assert_int_equal(p->failed, 0);
}

/* ---- the generated corpus ------------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)((rng_state >> 11) % n);
}

static char pick(const char *from)
{
    return from[rnd((uint32_t)strlen(from))];
}

typedef struct text {
    char buf[256];
    size_t len;
    int quantified; /* repetitions so far: bounds the stock matcher's work */
} text;

static void put(text *t, char c)
{
    if (t->len < sizeof t->buf - 1)
        t->buf[t->len++] = c;
}

static void puts_(text *t, const char *s)
{
    while (*s != '\0')
        put(t, *s++);
}

/* Subjects and literals share a small alphabet so that matches happen; it
 * has the pattern specials, the characters of %b and sets, and '\0'. */
static const char ALPHABET[] = "aaabbc  ()[]x1-.%^$";

static void gen_set(text *t)
{
    put(t, '[');
    if (rnd(3) == 0)
        put(t, '^');
    if (rnd(6) == 0)
        put(t, ']');
    int n = 1 + (int)rnd(3);
    for (int i = 0; i < n; i++) {
        switch (rnd(5)) {
        case 0: put(t, pick("abc")); put(t, '-'); put(t, pick("abcx")); break;
        case 1: put(t, '%'); put(t, pick("adswxpAS]%-")); break;
        case 2: put(t, '-'); break;
        default: put(t, pick(ALPHABET + 0)); break;
        }
    }
    if (rnd(15) != 0)
        put(t, ']');
}

/* One single-character class. */
static void gen_single(text *t)
{
    switch (rnd(8)) {
    case 0: put(t, '.'); break;
    case 1: put(t, '%'); put(t, pick("acdglpsuwxzACDGLPSUWXZ")); break;
    case 2: put(t, '%'); put(t, pick(".%()[]-^$*+?")); break;
    case 3: gen_set(t); break;
    default: put(t, pick("aabbcx1 -")); break;
    }
}

static void gen_item(text *t, int depth)
{
    switch (rnd(16)) {
    case 0:
        if (depth < 3) {
            put(t, '(');
            int n = (int)rnd(3);
            for (int i = 0; i < n; i++)
                gen_item(t, depth + 1);
            if (rnd(10) != 0)
                put(t, ')');
            return;
        }
        break;
    case 1: puts_(t, "()"); return;
    case 2: put(t, '%'); put(t, (char)('1' + rnd(3))); return;
    case 3: put(t, '%'); put(t, 'b'); put(t, pick("(a[")); put(t, pick(")b]")); return;
    case 4:
        puts_(t, "%f");
        if (rnd(10) != 0)
            gen_set(t);
        else
            put(t, pick("ax"));
        return;
    case 5: put(t, pick(")$^")); return;
    default: break;
    }
    gen_single(t);
    if (rnd(3) == 0 && t->quantified < 4) {
        put(t, pick("*+-?"));
        t->quantified++;
    }
}

static void gen_pattern(text *t)
{
    t->len = 0;
    t->quantified = 0;
    if (rnd(4) == 0)
        put(t, '^');
    int n = (int)rnd(6);
    for (int i = 0; i < n; i++)
        gen_item(t, 0);
    if (rnd(5) == 0)
        put(t, '$');
    switch (rnd(25)) { /* malformed endings */
    case 0: put(t, '%'); break;
    case 1: puts_(t, "%b"); break;
    case 2: puts_(t, "%bx"); break;
    case 3: put(t, '['); break;
    case 4: puts_(t, "[^"); break;
    default: break;
    }
}

static void gen_subject(text *t)
{
    t->len = 0;
    int n = (int)rnd(13);
    for (int i = 0; i < n; i++)
        put(t, rnd(30) == 0 ? '\0' : pick(ALPHABET));
}

static arg gen_init(size_t len)
{
    arg a = {.kind = A_INT};
    switch (rnd(10)) {
    case 0: a.kind = A_NONE; break;
    case 1: a.i = 0; break;
    case 2: a.i = -1 - (lua_Integer)rnd(4); break;
    case 3: a.i = (lua_Integer)len + 1; break;
    case 4: a.i = (lua_Integer)len + 2; break;
    case 5: a.i = LUA_MAXINTEGER; break;
    case 6: a.i = LUA_MININTEGER; break;
    case 7: a.i = -(lua_Integer)len - 1; break;
    default: a.i = 1 + (lua_Integer)rnd((uint32_t)len + 1); break;
    }
    return a;
}

static const char *const TEMPLATES[] = {"%0", "<%1>", "%2%1", "x%%y", "%", "%z", "", "[%1%3]",
                                        "-"};

static arg gen_limit(void)
{
    arg a = {.kind = A_INT};
    switch (rnd(6)) {
    case 0: a.i = 0; break;
    case 1: a.i = 1; break;
    case 2: a.i = 2; break;
    case 3: a.i = -1; break;
    default: a.kind = A_NONE; break;
    }
    return a;
}

#define CORPUS_PATTERNS 20000

static void test_generated_corpus(void **state)
{
    pair *p = *state;
    rng_state = 0x9e3779b97f4a7c15ull; /* fixed: a failure can be replayed */
    text pat, subj;
    for (int i = 0; i < CORPUS_PATTERNS; i++) {
        gen_pattern(&pat);
        gen_subject(&subj);
        arg a[5];
        a[1] = (arg){.kind = A_STR, .s = subj.buf, .len = subj.len};
        a[2] = (arg){.kind = A_STR, .s = pat.buf, .len = pat.len};
        char what[32];
        snprintf(what, sizeof what, "corpus #%d", i);
        switch (rnd(7)) {
        case 0:
        case 1:
            a[0] = (arg){.kind = A_STR, .s = "find", .len = 4};
            a[3] = gen_init(subj.len);
            a[4] = (arg){.kind = rnd(5) == 0 ? A_TRUE : A_NIL};
            break;
        case 2:
            a[0] = (arg){.kind = A_STR, .s = "match", .len = 5};
            a[3] = gen_init(subj.len);
            a[4] = (arg){.kind = A_NIL};
            break;
        case 3:
            a[0] = (arg){.kind = A_STR, .s = "gmatch", .len = 6};
            a[3] = gen_init(subj.len);
            a[4] = (arg){.kind = A_NIL};
            break;
        case 4: {
            const char *tpl = TEMPLATES[rnd(sizeof TEMPLATES / sizeof *TEMPLATES)];
            a[0] = (arg){.kind = A_STR, .s = "gsub", .len = 4};
            a[3] = (arg){.kind = A_STR, .s = tpl, .len = strlen(tpl)};
            a[4] = gen_limit();
            break;
        }
        case 5:
            a[0] = (arg){.kind = A_STR, .s = "gsubt", .len = 5};
            a[3] = (arg){.kind = A_NIL};
            a[4] = gen_limit();
            break;
        default:
            a[0] = (arg){.kind = A_STR, .s = "gsubf", .len = 5};
            a[3] = (arg){.kind = A_NIL};
            a[4] = gen_limit();
            break;
        }
        compare(p, "RUN", a, 5, what);
    }
    printf("generated corpus: %d calls, %d same, %d different\n", p->passed + p->failed,
           p->passed, p->failed);
    assert_int_equal(p->failed, 0);
}

/* ---- in a sandboxed migration --------------------------------------------------- */

static int world_setup(void **state)
{
    tu_world_setup(state);
    tu_world *w = *state;
    w->opts.timeout_ms = 300;
    /* A matcher that stopped polling would run for minutes: the alarm
     * (SIGALRM ends the program) turns that into a red test, not a hang. */
    alarm(120);
    return 0;
}

static int world_teardown(void **state)
{
    alarm(0);
    return tu_world_teardown(state);
}

/* Each of these backtracks for minutes in the stock library; in a
 * migration it ends with the timeout error, whichever way it is called. */
static const char *const CATASTROPHIC[] = {
    "return ('a'):rep(20000):find('.-.-.-.-.-b')",
    "return string.match(('a'):rep(30000), '(.-)*$')",
    "return string.gsub(('a'):rep(20000), '.-.-.-.-b', 'x')",
    "for m in ('a'):rep(20000):gmatch('a*a*a*a*b') do end",
    "return pcall(string.find, ('a'):rep(20000), '.-.-.-.-.-b')",
    "return string.find(('a'):rep(1 << 22), ('a'):rep(1 << 21) .. 'b', 1, true)",
    "return string.find(('a'):rep(1 << 22), ('a'):rep(1 << 21) .. 'b')",
};

static void test_catastrophic_patterns_time_out_in_a_migration(void **state)
{
    tu_world *w = *state;
    for (size_t i = 0; i < sizeof CATASTROPHIC / sizeof *CATASTROPHIC; i++) {
        char src[512];
        snprintf(src, sizeof src,
                 "function check() return false end\nfunction migrate()\n%s\nend\n",
                 CATASTROPHIC[i]);
        tu_script(w, "v1.0.0/001_pattern.lua", src);
        migrate_report *r = NULL;
        assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
        const migrate_result *f = migrate_report_failed(r);
        assert_non_null(f);
        if (strstr(f->error, "migrate() timed out after 300 ms") == NULL)
            fail_msg("%s: %s", CATASTROPHIC[i], f->error);
        migrate_report_free(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lua_own_cases, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_generated_corpus, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_catastrophic_patterns_time_out_in_a_migration,
                                        world_setup, world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
