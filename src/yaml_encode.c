/*
 * yaml_encode.c - yaml.encode (SPEC §5): block-style YAML that PyYAML's
 * safe_load (and yaml.decode) read back as the very value encoded.
 *
 * A string is written plain only when no reader could take it for
 * something else: not what YAML 1.1 or 1.2 resolve to a bool, null or
 * number ('off', 'y', '1:20', '1e3', '0o17', '~'), nothing an indicator
 * or a comment could cut short. Multi-line strings become literal blocks
 * (|, |-, |+) when their lines allow it; everything else is double-quoted
 * with escapes. Floats are written with the shortest digits that read back
 * as the same double, always with a dot (PyYAML's float needs one).
 * A decoded mapping keeps its key order (json.c's key-order registry);
 * other keys follow, sorted, so that the output is deterministic.
 */
#include "internal.h"

#include <lauxlib.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UV_OBJECT_MT lua_upvalueindex(1)
#define UV_ARRAY_MT lua_upvalueindex(2)
#define UV_KEY_ORDERS lua_upvalueindex(3)

#define ENCODE_MAX_DEPTH 256
#define ENCODE_MAX_INDENT 16
/* libyaml refuses an implicit key longer than 1024 characters: longer ones
 * are written as explicit keys ("? key"). */
#define IMPLICIT_KEY_MAX 1000

typedef struct path_step {
    const char *key; /* NULL: an index, or a key that is not a string */
    size_t key_len;
    lua_Integer index; /* 0: a key that is not a string */
} path_step;

typedef struct encoder {
    lua_State *L;
    mig_outbuf out;
    int indent;
    void *null;
    const void *open_tables[ENCODE_MAX_DEPTH];
    path_step path[ENCODE_MAX_DEPTH];
} encoder;

/* ---- output ------------------------------------------------------------------ */

static void out_spaces(encoder *e, int n)
{
    if (n > 0)
        mig_outbuf_fill(&e->out, ' ', (size_t)n);
}

/* Pushes "at a.b[2]" (or "" at the top) and returns it. */
static const char *push_where(encoder *e, int nsteps)
{
    luaL_Buffer b;
    if (nsteps == 0)
        return lua_pushliteral(e->L, "");
    luaL_buffinit(e->L, &b);
    luaL_addstring(&b, " at ");
    for (int i = 0; i < nsteps; i++) {
        const path_step *s = &e->path[i];
        if (s->key != NULL) {
            if (i > 0)
                luaL_addchar(&b, '.');
            luaL_addlstring(&b, s->key, s->key_len > 60 ? 60 : s->key_len);
        } else if (s->index > 0) {
            lua_pushfstring(e->L, "[%I]", (LUAI_UACINT)s->index);
            luaL_addvalue(&b);
        } else {
            luaL_addstring(&b, "[?]");
        }
    }
    luaL_pushresult(&b);
    return lua_tostring(e->L, -1);
}

/* ---- strings ------------------------------------------------------------------ */

/* Decodes the UTF-8 sequence at s (n bytes left) into *cp; returns its
 * length, or 0 when it is not well formed. */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned long *cp)
{
    unsigned long c = s[0], min;
    size_t len;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, c &= 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, c &= 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

/* Characters a YAML stream may hold as they are (libyaml's reader), but
 * neither line breaks beyond \n (NEL, LS, PS) nor the byte order mark. */
static bool is_printable(unsigned long c)
{
    if (c == 0x2028 || c == 0x2029 || c == 0xFEFF)
        return false;
    return c == '\t' || (c >= 0x20 && c <= 0x7E) || (c >= 0xA0 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

typedef struct string_shape {
    bool printable; /* every character is, \n aside */
    bool newline;
    bool tab;
} string_shape;

static bool string_shape_of(const char *s, size_t n, string_shape *out)
{
    memset(out, 0, sizeof *out);
    out->printable = true;
    for (size_t i = 0; i < n;) {
        unsigned long c;
        size_t len = utf8_decode((const unsigned char *)s + i, n - i, &c);
        if (len == 0)
            return false;
        if (c == '\n')
            out->newline = true;
        else if (!is_printable(c))
            out->printable = false;
        if (c == '\t')
            out->tab = true;
        i += len;
    }
    return true;
}

static bool equals_ignoring_case(const char *s, size_t n, const char *w)
{
    if (strlen(w) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
        if (c != w[i])
            return false;
    }
    return true;
}

/* Whether some YAML reader would not take the plain text for this string:
 * a keyword of YAML 1.1 or 1.2 in any case, or anything number-like. */
static bool reads_as_other(const char *s, size_t n)
{
    static const char *const words[] = { "y", "n", "yes", "no", "true", "false", "on", "off",
                                         "null", "~", ".inf", "-.inf", "+.inf", ".nan", "<<",
                                         "=" };
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (equals_ignoring_case(s, n, words[i]))
            return true;
    if (s[0] >= '0' && s[0] <= '9')
        return true; /* ints, floats, 1:20, 0o17, timestamps, 1e3 */
    if ((s[0] == '+' || s[0] == '.') && n > 1 && ((s[1] >= '0' && s[1] <= '9') || s[1] == '.'))
        return true;
    return false;
}

/* Plain in block context, where everything this encoder writes stands: the
 * flow indicators ,[]{} end a plain scalar only inside a flow collection
 * (libyaml's and PyYAML's scanners test them under flow_level alone), so
 * "${TOKEN}" or "a, b" stay plain; at the start they would open one. A
 * caller splicing into a flow collection (lua/yaml_edit.lua) quotes what
 * holds them. */
static bool can_be_plain(const char *s, size_t n, const string_shape *shape)
{
    if (n == 0 || !shape->printable || shape->newline || shape->tab)
        return false;
    if (strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]) != NULL || s[n - 1] == ' ' || s[n - 1] == ':')
        return false;
    for (size_t i = 0; i + 1 < n; i++)
        if ((s[i] == ':' && s[i + 1] == ' ') || (s[i] == ' ' && s[i + 1] == '#'))
            return false;
    return !reads_as_other(s, n);
}

/* A literal block keeps every line as it is; it needs a first character
 * that is not a space (the indentation is detected from it). */
static bool can_be_literal(const char *s, size_t n, const string_shape *shape)
{
    return n > 0 && shape->newline && shape->printable && s[0] != ' ' && s[0] != '\t' && s[0] != '\n';
}

static void write_double_quoted(encoder *e, const char *s, size_t n)
{
    char esc[16];
    mig_outbuf_char(&e->out, '"');
    for (size_t i = 0; i < n;) {
        unsigned long c;
        size_t len = utf8_decode((const unsigned char *)s + i, n - i, &c);
        const char *lit = NULL;
        switch (c) {
        case '"': lit = "\\\""; break;
        case '\\': lit = "\\\\"; break;
        case '\n': lit = "\\n"; break;
        case '\t': lit = "\\t"; break;
        case '\r': lit = "\\r"; break;
        case 0: lit = "\\0"; break;
        default: break;
        }
        if (lit != NULL) {
            mig_outbuf_add(&e->out, lit, strlen(lit));
        } else if (c != '\t' && is_printable(c)) {
            mig_outbuf_add(&e->out, s + i, len);
        } else {
            int m = c <= 0xFF ? snprintf(esc, sizeof esc, "\\x%02lX", c)
                    : c <= 0xFFFF ? snprintf(esc, sizeof esc, "\\u%04lX", c)
                                  : snprintf(esc, sizeof esc, "\\U%08lX", c);
            mig_outbuf_add(&e->out, esc, (size_t)m);
        }
        i += len;
    }
    mig_outbuf_char(&e->out, '"');
}

/* "|", "|-" or "|+" by the final newlines, then each line at `col`. */
static void write_literal(encoder *e, const char *s, size_t n, int col)
{
    size_t trailing = 0;
    while (trailing < n && s[n - 1 - trailing] == '\n')
        trailing++;
    mig_outbuf_add(&e->out, trailing == 0 ? "|-" : trailing == 1 ? "|" : "|+", trailing == 1 ? 1 : 2);
    mig_outbuf_char(&e->out, '\n');
    size_t end = trailing == 0 ? n : n - 1; /* the last break ends the last line */
    for (size_t i = 0;;) {
        const char *nl = memchr(s + i, '\n', end - i);
        size_t line = nl != NULL ? (size_t)(nl - (s + i)) : end - i;
        if (line > 0) {
            out_spaces(e, col);
            mig_outbuf_add(&e->out, s + i, line);
        }
        mig_outbuf_char(&e->out, '\n');
        if (nl == NULL)
            break;
        i += line + 1;
    }
}

static void check_utf8(encoder *e, const char *s, size_t n, string_shape *shape, int nsteps)
{
    if (!string_shape_of(s, n, shape))
        luaL_error(e->L, "yaml.encode: string%s is not valid UTF-8 (YAML text is Unicode)",
                   push_where(e, nsteps));
}

/* ---- scalars ------------------------------------------------------------------- */

static void write_float(encoder *e, double v)
{
    char buf[48];
    int n = 0;
    if (isnan(v)) {
        mig_outbuf_add(&e->out, ".nan", 4);
        return;
    }
    if (isinf(v)) {
        mig_outbuf_add(&e->out, v < 0 ? "-.inf" : ".inf", v < 0 ? 5 : 4);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    /* PyYAML's float needs a dot in the mantissa: 1e+20 -> 1.0e+20 */
    char *exp = strchr(buf, 'e');
    if (strchr(buf, '.') == NULL) {
        size_t at = exp != NULL ? (size_t)(exp - buf) : (size_t)n;
        memmove(buf + at + 2, buf + at, (size_t)n - at + 1);
        memcpy(buf + at, ".0", 2);
        n += 2;
    }
    mig_outbuf_add(&e->out, buf, (size_t)n);
}

static void write_number(encoder *e, int idx)
{
    if (lua_isinteger(e->L, idx)) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(e->L, idx));
        mig_outbuf_add(&e->out, buf, (size_t)n);
    } else {
        write_float(e, (double)lua_tonumber(e->L, idx));
    }
}

/* A scalar key or value, on one line (multi-line strings quoted). */
static bool write_inline_scalar(encoder *e, int idx, int nsteps, const char *what)
{
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: mig_outbuf_add(&e->out, "null", 4); return true;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            mig_outbuf_add(&e->out, "true", 4);
        else
            mig_outbuf_add(&e->out, "false", 5);
        return true;
    case LUA_TNUMBER: write_number(e, idx); return true;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) != e->null)
            break;
        mig_outbuf_add(&e->out, "null", 4);
        return true;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        string_shape shape;
        check_utf8(e, s, n, &shape, nsteps);
        if (can_be_plain(s, n, &shape))
            mig_outbuf_add(&e->out, s, n);
        else
            write_double_quoted(e, s, n);
        return true;
    }
    default: break;
    }
    if (what != NULL)
        luaL_error(L, "yaml.encode: cannot encode %s (a %s)%s", what, luaL_typename(L, idx),
                   push_where(e, nsteps));
    return false;
}

/* ---- tables -------------------------------------------------------------------- */

typedef enum context { AT_TOP, AFTER_KEY, AFTER_DASH } context;

static void write_value(encoder *e, int idx, int col, context ctx, int nsteps);

static bool is_marked(lua_State *L, int idx, int mt)
{
    if (!lua_getmetatable(L, idx))
        return false;
    bool same = lua_rawequal(L, -1, mt);
    lua_pop(L, 1);
    return same;
}

/* A sequence: marked as a json array, or unmarked with keys exactly 1..n
 * (n > 0). Returns n, or -1 for a mapping. */
static lua_Integer sequence_length(encoder *e, int table, int nsteps)
{
    lua_State *L = e->L;
    lua_Integer count = 0, max = 0;
    bool only_indices = true;
    lua_pushnil(L);
    while (lua_next(L, table)) {
        lua_pop(L, 1);
        count++;
        if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
            if (lua_tointeger(L, -1) > max)
                max = lua_tointeger(L, -1);
        } else {
            only_indices = false;
        }
    }
    if (is_marked(L, table, UV_ARRAY_MT)) {
        if (!only_indices || count != max)
            luaL_error(L, "yaml.encode: table%s is a json array but its keys are not 1..n",
                       push_where(e, nsteps));
        return count;
    }
    if (is_marked(L, table, UV_OBJECT_MT) || count == 0)
        return -1;
    return only_indices && count == max ? count : -1;
}

static void write_sequence(encoder *e, int table, lua_Integer n, int col, bool inline_first,
                           int nsteps)
{
    int offset = e->indent < 2 ? 2 : e->indent;
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1 || !inline_first)
            out_spaces(e, col);
        mig_outbuf_char(&e->out, '-');
        out_spaces(e, offset - 1);
        e->path[nsteps] = (path_step){ NULL, 0, i };
        lua_rawgeti(e->L, table, i);
        write_value(e, lua_gettop(e->L), col + offset, AFTER_DASH, nsteps + 1);
        lua_pop(e->L, 1);
    }
}

/* One entry, key at -2 and value at -1. */
static void write_entry(encoder *e, int col, bool indent_first, int nsteps)
{
    lua_State *L = e->L;
    int key = lua_gettop(L) - 1;
    size_t klen = 0;
    if (lua_type(L, key) == LUA_TSTRING) {
        const char *k = lua_tolstring(L, key, &klen);
        e->path[nsteps] = (path_step){ k, klen, 0 };
    } else {
        e->path[nsteps] = (path_step){ NULL, 0, 0 };
    }
    if (indent_first)
        out_spaces(e, col);
    if (klen > IMPLICIT_KEY_MAX) {
        mig_outbuf_add(&e->out, "? ", 2);
        write_inline_scalar(e, key, nsteps, "a key");
        mig_outbuf_char(&e->out, '\n');
        out_spaces(e, col);
    } else if (lua_type(L, key) == LUA_TSTRING || lua_type(L, key) == LUA_TNUMBER ||
               lua_type(L, key) == LUA_TBOOLEAN || lua_type(L, key) == LUA_TLIGHTUSERDATA) {
        write_inline_scalar(e, key, nsteps, "a key");
    } else {
        luaL_error(L, "yaml.encode: a table key cannot be a %s%s", luaL_typename(L, key),
                   push_where(e, nsteps));
    }
    mig_outbuf_char(&e->out, ':');
    write_value(e, key + 1, col + e->indent, AFTER_KEY, nsteps + 1);
}

typedef struct unlisted_key {
    int rank; /* numbers, booleans, null, strings */
    double number;
    const char *text;
    size_t len;
    int slot; /* for numbers and booleans: the position in a scratch table */
} unlisted_key;

static int unlisted_compare(const void *pa, const void *pb)
{
    const unlisted_key *a = pa, *b = pb;
    if (a->rank != b->rank)
        return a->rank - b->rank;
    if (a->rank == 3) {
        int c = memcmp(a->text, b->text, a->len < b->len ? a->len : b->len);
        return c != 0 ? c : (a->len > b->len) - (a->len < b->len);
    }
    return (a->number > b->number) - (a->number < b->number);
}

/* Writes the keys the order list (at `order`, or 0) does not name, sorted;
 * returns how many. `scratch` holds non-string keys by position. */
static lua_Integer write_unlisted(encoder *e, int table, int order, int col, bool inline_first,
                                  lua_Integer written, int nsteps)
{
    lua_State *L = e->L;
    size_t cap = 0, n = 0;
    lua_pushnil(L);
    while (lua_next(L, table)) {
        lua_pop(L, 1);
        cap++;
    }
    unlisted_key *keys = lua_newuserdatauv(L, cap * sizeof *keys + 1, 0);
    lua_newtable(L);
    int scratch = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, table)) {
        lua_pop(L, 1);
        int type = lua_type(L, -1);
        if (type == LUA_TSTRING && order != 0) {
            lua_pushvalue(L, -1);
            bool listed = lua_rawget(L, order) == LUA_TNUMBER;
            lua_pop(L, 1);
            if (listed)
                continue;
        }
        unlisted_key *k = &keys[n++];
        memset(k, 0, sizeof *k);
        if (type == LUA_TSTRING) {
            k->rank = 3;
            k->text = lua_tolstring(L, -1, &k->len);
        } else {
            k->rank = type == LUA_TNUMBER ? 0 : type == LUA_TBOOLEAN ? 1 : 2;
            k->number = type == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : lua_toboolean(L, -1);
            k->slot = (int)n;
            lua_pushvalue(L, -1);
            lua_rawseti(L, scratch, k->slot);
        }
    }
    qsort(keys, n, sizeof *keys, unlisted_compare);
    for (size_t i = 0; i < n; i++) {
        if (keys[i].rank == 3)
            lua_pushlstring(L, keys[i].text, keys[i].len);
        else
            lua_rawgeti(L, scratch, keys[i].slot);
        lua_pushvalue(L, -1);
        lua_rawget(L, table);
        write_entry(e, col, written > 0 || !inline_first, nsteps);
        written++;
        lua_pop(L, 2);
    }
    lua_pop(L, 2);
    return written;
}

/* Keys in the order json.c records (an order list with a reverse map
 * counts a key only at the slot the map names), then the rest. */
static void write_mapping(encoder *e, int table, int col, bool inline_first, int nsteps)
{
    lua_State *L = e->L;
    lua_Integer written = 0;
    int order = 0, top = lua_gettop(L);
    lua_pushvalue(L, table);
    if (lua_rawget(L, UV_KEY_ORDERS) == LUA_TTABLE) {
        order = lua_gettop(L);
        lua_rawgeti(L, order, 0);
        bool mapped = !lua_isnil(L, -1);
        lua_pop(L, 1);
        lua_Integer n = (lua_Integer)lua_rawlen(L, order);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, order, i);
            bool current = lua_type(L, -1) == LUA_TSTRING;
            if (current && mapped) {
                lua_pushvalue(L, -1);
                current = lua_rawget(L, order) == LUA_TNUMBER && lua_tointeger(L, -1) == i;
                lua_pop(L, 1);
            }
            if (current) {
                lua_pushvalue(L, -1);
                if (lua_rawget(L, table) != LUA_TNIL) {
                    write_entry(e, col, written > 0 || !inline_first, nsteps);
                    written++;
                }
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
        if (!mapped) {
            /* the unlisted check below looks keys up in the order list */
            lua_newtable(L);
            for (lua_Integer i = 1; i <= n; i++) {
                lua_rawgeti(L, order, i);
                lua_pushinteger(L, i);
                lua_rawset(L, -3);
            }
            lua_replace(L, order);
        }
    }
    write_unlisted(e, table, order, col, inline_first, written, nsteps);
    lua_settop(L, top);
}

static void write_table(encoder *e, int table, int col, context ctx, int nsteps)
{
    lua_State *L = e->L;
    const void *self = lua_topointer(L, table);
    for (int i = 0; i < nsteps; i++)
        if (e->open_tables[i] == self)
            luaL_error(L, "yaml.encode: cycle%s", push_where(e, nsteps));
    if (nsteps >= ENCODE_MAX_DEPTH) {
        luaL_error(L, "yaml.encode: nesting deeper than %d%s", ENCODE_MAX_DEPTH,
                   push_where(e, nsteps));
        return; /* luaL_error never returns; said for the analysers */
    }
    luaL_checkstack(L, 12, "yaml.encode");
    e->open_tables[nsteps] = self;
    lua_Integer n = sequence_length(e, table, nsteps);
    bool empty = n == 0;
    if (n < 0) {
        lua_pushnil(L);
        if (lua_next(L, table))
            lua_pop(L, 2);
        else
            empty = true;
    }
    if (empty) {
        if (ctx == AFTER_KEY)
            mig_outbuf_char(&e->out, ' ');
        mig_outbuf_add(&e->out, n == 0 ? "[]\n" : "{}\n", 3);
        return;
    }
    bool inline_first = ctx == AFTER_DASH;
    if (ctx == AFTER_KEY)
        mig_outbuf_char(&e->out, '\n');
    if (n > 0)
        write_sequence(e, table, n, col, inline_first, nsteps);
    else
        write_mapping(e, table, col, inline_first, nsteps);
}

/* The value at idx, after "key:" (AFTER_KEY), "- " (AFTER_DASH) or at the
 * start of the text; ends with a newline. `col` is where a nested block
 * (entries, items, literal lines) starts. */
static void write_value(encoder *e, int idx, int col, context ctx, int nsteps)
{
    lua_State *L = e->L;
    if (lua_type(L, idx) == LUA_TTABLE) {
        write_table(e, idx, col, ctx, nsteps);
        return;
    }
    if (ctx == AFTER_KEY)
        mig_outbuf_char(&e->out, ' ');
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        string_shape shape;
        check_utf8(e, s, n, &shape, nsteps);
        if (can_be_literal(s, n, &shape)) {
            write_literal(e, s, n, ctx == AT_TOP ? e->indent : col);
            return;
        }
    }
    write_inline_scalar(e, idx, nsteps, "a value");
    mig_outbuf_char(&e->out, '\n');
}

static int check_indent(lua_State *L, int arg)
{
    if (lua_isnoneornil(L, arg))
        return 2;
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_getfield(L, arg, "indent");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 2;
    }
    if (!lua_isinteger(L, -1))
        luaL_argerror(L, arg, "indent must be an integer");
    lua_Integer n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (n < 1 || n > ENCODE_MAX_INDENT)
        luaL_argerror(L, arg, lua_pushfstring(L, "indent must be 1..%d", ENCODE_MAX_INDENT));
    return (int)n;
}

int mig_yaml_encode(lua_State *L)
{
    encoder *e;
    int indent = check_indent(L, 2);
    lua_settop(L, 1);
    luaL_checkstack(L, 8, "yaml.encode");
    e = lua_newuserdatauv(L, sizeof *e, 0); /* 2: too large for a daemon thread's stack */
    memset(e, 0, sizeof *e);
    e->L = L;
    e->indent = indent;
    e->null = mig_json_null();
    mig_outbuf_init(&e->out, L, "yaml.encode");
    write_value(e, 1, 0, AT_TOP, 0);
    mig_outbuf_push(&e->out);
    return 1;
}
