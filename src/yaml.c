/*
 * yaml.c - the `yaml` module scripts use (SPEC §5): the table and decode.
 *
 * The daemon reads its config.yml with PyYAML's safe_load, so decode must
 * give the values PyYAML gives: libyaml (the very parser CSafeLoader runs)
 * turns the text into events, and this file does what PyYAML's composer
 * and SafeConstructor do with them: YAML 1.1 resolution of plain scalars
 * (resolver.py's regular expressions, by hand), explicit !!tags, anchors
 * and aliases, merge keys. Deliberate differences: integers are exact
 * 64-bit (out of range is an error, not a bigint), timestamps stay strings,
 * an alias of a node still being built (a recursive structure) and the
 * tags !!binary, !!set, !!omap, !!pairs are refused.
 *
 * Mappings are json objects (json.c's marker metatable and key-order
 * registry, shared through the upvalues) so that json.encode(yaml.decode(t))
 * and yaml.encode keep the file's key order; sequences are json arrays.
 * yaml.encode lives in yaml_encode.c.
 */
#include "internal.h"

#include <lauxlib.h>
#include <yaml.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UV_OBJECT_MT lua_upvalueindex(1)
#define UV_ARRAY_MT lua_upvalueindex(2)
#define UV_KEY_ORDERS lua_upvalueindex(3)

#define YAML_MAX_DEPTH 512
/* Nodes that aliases may add to the document, in all: far above any real
 * config, far below what a "billion laughs" document asks for. */
#define YAML_MAX_ALIAS_NODES 1000000

#define TAG_PREFIX "tag:yaml.org,2002:"

/* Values a scalar may resolve to that only make sense as mapping keys:
 * `<<` (merge) and `=` (PyYAML's "value" tag, read as "=" in a key). */
static const char merge_sentinel = 0, value_sentinel = 0;
#define MERGE_KEY ((void *)&merge_sentinel)
#define VALUE_KEY ((void *)&value_sentinel)

typedef enum frame_kind { FRAME_SEQUENCE, FRAME_MAPPING } frame_kind;

/* A collection being built. Its stack slots, in order: the table, the key
 * order list (mappings; nil for sequences), the anchor name (or nil), the
 * merge sources (or nil until a `<<` arrives); then a pending key. */
typedef struct frame {
    frame_kind kind;
    int table;
    lua_Integer n;      /* sequence items, or keys in the order list */
    bool has_key;       /* a key waits on top of the stack for its value */
    bool merges;        /* the merge-sources slot holds a list */
    size_t nodes;       /* nodes in this subtree, aliases expanded */
    yaml_mark_t key_mark;
    yaml_mark_t start; /* where the collection began, for errors about it */
} frame;

typedef struct decoder {
    yaml_parser_t parser;
    yaml_event_t event;
    bool have_event;
    void *null;
    size_t alias_nodes;
    int anchors, sizes; /* stack slots: name -> value, name -> nodes (false while open) */
    int depth;
    frame frames[YAML_MAX_DEPTH];
} decoder;

/* ---- errors ---------------------------------------------------------------- */

static int fail_at(lua_State *L, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(lua_State *L, yaml_mark_t mark, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    /* libyaml counts lines and columns from 0, and columns in characters */
    return luaL_error(L, "yaml.decode: %s at line %d, column %d", reason, (int)mark.line + 1,
                      (int)mark.column + 1);
}

static int fail_parse(lua_State *L, const yaml_parser_t *p)
{
    const char *problem = p->problem != NULL ? p->problem : "invalid YAML";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return luaL_error(L, "yaml.decode: not enough memory");
    case YAML_READER_ERROR:
        return luaL_error(L, "yaml.decode: %s at byte %d", problem, (int)p->problem_offset + 1);
    default:
        if (p->context != NULL)
            return luaL_error(L, "yaml.decode: %s at line %d, column %d (%s at line %d, column %d)",
                              problem, (int)p->problem_mark.line + 1,
                              (int)p->problem_mark.column + 1, p->context,
                              (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
        return fail_at(L, p->problem_mark, "%s", problem);
    }
}

/* ---- plain scalars: PyYAML's implicit resolvers (resolver.py) --------------- */

typedef enum scalar_kind {
    SCALAR_STR, SCALAR_NULL, SCALAR_TRUE, SCALAR_FALSE, SCALAR_INT, SCALAR_FLOAT,
    SCALAR_MERGE, SCALAR_VALUE
} scalar_kind;

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(s, w, n) == 0;
}

/* One of the words in its three spellings: "yes", "Yes", "YES". */
static bool word_any_case(const char *s, size_t n, const char *lower)
{
    size_t len = strlen(lower);
    if (n != len)
        return false;
    if (memcmp(s, lower, n) == 0)
        return true;
    bool capital = s[0] == lower[0] - 32, upper = capital;
    for (size_t i = 1; i < n && (capital || upper); i++) {
        capital = capital && s[i] == lower[i];
        upper = upper && s[i] == lower[i] - 32;
    }
    return capital || upper;
}

/* Skips [0-9_]* from i (or [0-9] only when !underscores). */
static size_t skip_digits(const char *s, size_t n, size_t i, bool underscores)
{
    while (i < n && (is_digit(s[i]) || (underscores && s[i] == '_')))
        i++;
    return i;
}

/* (:[0-5]?[0-9])+ from i; returns the end or 0 when there is none. */
static size_t skip_sexagesimal(const char *s, size_t n, size_t i)
{
    size_t groups = 0;
    while (i + 1 < n && s[i] == ':' && is_digit(s[i + 1])) {
        i += 2;
        if (i < n && is_digit(s[i]) && s[i - 1] <= '5')
            i++;
        groups++;
    }
    return groups > 0 ? i : 0;
}

/* ([eE][-+][0-9]+)? at i: returns the end. */
static size_t skip_exponent(const char *s, size_t n, size_t i)
{
    if (i + 2 < n && (s[i] == 'e' || s[i] == 'E') && (s[i + 1] == '-' || s[i + 1] == '+') &&
        is_digit(s[i + 2]))
        return skip_digits(s, n, i + 2, false);
    return i;
}

static bool is_float_text(const char *s, size_t n)
{
    size_t i = 0;
    if (n >= 2 && s[0] == '.' && is_digit(s[1])) /* \.[0-9][0-9_]*(exp)? */
        return skip_exponent(s, n, skip_digits(s, n, 1, true)) == n;
    if (word_is(s, n, ".nan") || word_is(s, n, ".NaN") || word_is(s, n, ".NAN"))
        return true;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    if (n - i == 4 && s[i] == '.' &&
        (memcmp(s + i, ".inf", 4) == 0 || memcmp(s + i, ".Inf", 4) == 0 ||
         memcmp(s + i, ".INF", 4) == 0))
        return true;
    if (i >= n || !is_digit(s[i]))
        return false;
    i = skip_digits(s, n, i + 1, true);
    if (i < n && s[i] == ':') {
        i = skip_sexagesimal(s, n, i);
        if (i == 0 || i >= n || s[i] != '.')
            return false;
        return skip_digits(s, n, i + 1, true) == n;
    }
    if (i >= n || s[i] != '.')
        return false;
    return skip_exponent(s, n, skip_digits(s, n, i + 1, true)) == n;
}

static bool all_of(const char *s, size_t n, size_t i, const char *set)
{
    if (i >= n)
        return false;
    for (; i < n; i++)
        if (strchr(set, s[i]) == NULL || s[i] == '\0')
            return false;
    return true;
}

static bool is_int_text(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    if (i >= n || !is_digit(s[i]))
        return false;
    if (s[i] == '0') {
        if (i + 1 == n)
            return true;
        if (s[i + 1] == 'b')
            return all_of(s, n, i + 2, "01_");
        if (s[i + 1] == 'x')
            return all_of(s, n, i + 2, "0123456789abcdefABCDEF_");
        return all_of(s, n, i + 1, "01234567_");
    }
    i = skip_digits(s, n, i + 1, true);
    if (i == n)
        return true;
    return s[i] == ':' && skip_sexagesimal(s, n, i) == n;
}

static scalar_kind resolve_plain(const char *s, size_t n)
{
    if (n == 0)
        return SCALAR_NULL;
    switch (s[0]) {
    case '~': return n == 1 ? SCALAR_NULL : SCALAR_STR;
    case 'n': case 'N':
        if (word_any_case(s, n, "null"))
            return SCALAR_NULL;
        return word_any_case(s, n, "no") ? SCALAR_FALSE : SCALAR_STR;
    case 'y': case 'Y': return word_any_case(s, n, "yes") ? SCALAR_TRUE : SCALAR_STR;
    case 't': case 'T': return word_any_case(s, n, "true") ? SCALAR_TRUE : SCALAR_STR;
    case 'f': case 'F': return word_any_case(s, n, "false") ? SCALAR_FALSE : SCALAR_STR;
    case 'o': case 'O':
        if (word_any_case(s, n, "on"))
            return SCALAR_TRUE;
        return word_any_case(s, n, "off") ? SCALAR_FALSE : SCALAR_STR;
    case '<': return word_is(s, n, "<<") ? SCALAR_MERGE : SCALAR_STR;
    case '=': return n == 1 ? SCALAR_VALUE : SCALAR_STR;
    case '-': case '+': case '.':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        if (is_float_text(s, n))
            return SCALAR_FLOAT;
        return is_int_text(s, n) ? SCALAR_INT : SCALAR_STR;
    default: return SCALAR_STR;
    }
}

/* ---- scalar values: SafeConstructor's construct_yaml_int/float ------------- */

/* s without its underscores, into out (n + 1 bytes). */
static size_t strip_underscores(const char *s, size_t n, char *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '_')
            out[m++] = s[i];
    out[m] = '\0';
    return m;
}

static int digit_value(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 99;
}

/* Accumulates digits of `base` into *acc; false on a bad digit, none at
 * all, or overflow (which sets *overflow). */
static bool add_digits(const char *s, size_t n, unsigned base, unsigned long long *acc,
                       bool *overflow)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)digit_value(s[i]);
        if (d >= base)
            return false;
        if (*acc > (ULLONG_MAX - d) / base) {
            *overflow = true;
            return false;
        }
        *acc = *acc * base + d;
    }
    return true;
}

/* The integer the text (which matched the int resolver) stands for. */
static void push_int(lua_State *L, const char *text, size_t n, yaml_mark_t mark)
{
    char buf[128];
    bool heap = n >= sizeof buf;
    char *v = heap ? lua_newuserdatauv(L, n + 1, 0) : buf;
    size_t m = strip_underscores(text, n, v);
    bool negative = m > 0 && v[0] == '-', ok = true, overflow = false;
    unsigned long long mag = 0;
    if (m > 0 && (v[0] == '-' || v[0] == '+')) {
        v++;
        m--;
    }
    if (m == 0) {
        ok = false;
    } else if (m >= 2 && v[0] == '0' && v[1] == 'b') {
        ok = add_digits(v + 2, m - 2, 2, &mag, &overflow);
    } else if (m >= 2 && v[0] == '0' && v[1] == 'x') {
        ok = add_digits(v + 2, m - 2, 16, &mag, &overflow);
    } else if (v[0] == '0') {
        ok = add_digits(v, m, 8, &mag, &overflow);
    } else if (memchr(v, ':', m) != NULL) {
        /* sexagesimal: 1:20 is 80; each part in decimal, base 60 */
        size_t start = 0;
        for (size_t i = 0; i <= m && ok; i++) {
            if (i < m && v[i] != ':')
                continue;
            unsigned long long part = 0;
            ok = add_digits(v + start, i - start, 10, &part, &overflow);
            if (ok && mag > (ULLONG_MAX - part) / 60)
                ok = false, overflow = true;
            mag = mag * 60 + part;
            start = i + 1;
        }
    } else {
        ok = add_digits(v, m, 10, &mag, &overflow);
    }
    if (ok && (negative ? mag > (unsigned long long)LUA_MAXINTEGER + 1 : mag > LUA_MAXINTEGER))
        ok = false, overflow = true;
    if (!ok)
        fail_at(L, mark, overflow ? "integer %.*s does not fit in 64 bits" : "invalid integer %.*s",
                n > 40 ? 40 : (int)n, text);
    if (heap)
        lua_pop(L, 1);
    if (negative)
        lua_pushinteger(L, mag == (unsigned long long)LUA_MAXINTEGER + 1
                               ? LUA_MININTEGER
                               : -(lua_Integer)mag);
    else
        lua_pushinteger(L, (lua_Integer)mag);
}

/* What Python's float(s) accepts, underscores and case already gone:
 * spaces, a sign, then digits with one dot and an exponent, or inf,
 * infinity, nan. Returns the value through *out. */
static bool python_float(const char *s, double *out)
{
    const char *p = s;
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    const char *num = p;
    if (*p == '-' || *p == '+')
        p++;
    const char *body = p;
    if (strncmp(p, "infinity", 8) == 0) {
        p += 8;
    } else if (strncmp(p, "inf", 3) == 0 || strncmp(p, "nan", 3) == 0) {
        p += 3;
    } else {
        size_t digits = strspn(p, "0123456789");
        p += digits;
        if (*p == '.') {
            size_t frac = strspn(p + 1, "0123456789");
            p += 1 + frac;
            digits += frac;
        }
        if (digits == 0)
            return false;
        if (*p == 'e') {
            const char *e = p + 1;
            if (*e == '-' || *e == '+')
                e++;
            if (!is_digit(*e))
                return false;
            p = e + strspn(e, "0123456789");
        }
    }
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (*p != '\0')
        return false;
    if (body[0] == 'i' || body[0] == 'n') {
        *out = body[0] == 'n' ? NAN : (num[0] == '-' ? -HUGE_VAL : HUGE_VAL);
        return true;
    }
    *out = strtod(num, NULL); /* stops at the trailing spaces */
    return true;
}

static void push_float(lua_State *L, const char *text, size_t n, yaml_mark_t mark)
{
    char buf[128];
    char *v = n < sizeof buf ? buf : lua_newuserdatauv(L, n + 1, 0);
    size_t m = strip_underscores(text, n, v);
    double sign = 1, value = 0;
    bool ok = m > 0;
    for (size_t i = 0; i < m; i++)
        if (v[i] >= 'A' && v[i] <= 'Z')
            v[i] = (char)(v[i] + 32);
    if (ok && (v[0] == '-' || v[0] == '+')) {
        sign = v[0] == '-' ? -1 : 1;
        v++;
    }
    if (!ok) {
    } else if (strcmp(v, ".inf") == 0) {
        value = HUGE_VAL;
    } else if (strcmp(v, ".nan") == 0) {
        value = NAN;
        sign = 1;
    } else if (strchr(v, ':') != NULL) {
        /* the parts summed from the last one, as PyYAML does */
        double base = 1;
        char *part_end = v + strlen(v);
        while (ok) {
            char *colon = part_end;
            while (colon > v && colon[-1] != ':')
                colon--;
            double part;
            *part_end = '\0';
            ok = python_float(colon, &part);
            value += part * base;
            base *= 60;
            if (colon == v)
                break;
            part_end = colon - 1;
        }
    } else {
        ok = python_float(v, &value);
    }
    if (!ok)
        fail_at(L, mark, "invalid float %.*s", n > 40 ? 40 : (int)n, text);
    if (n >= sizeof buf)
        lua_pop(L, 1);
    lua_pushnumber(L, sign * value);
}

/* ---- tags -------------------------------------------------------------------- */

/* The tag's name after "tag:yaml.org,2002:", or NULL for another tag. */
static const char *standard_tag(const yaml_char_t *tag)
{
    const char *t = (const char *)tag;
    return strncmp(t, TAG_PREFIX, sizeof TAG_PREFIX - 1) == 0 ? t + sizeof TAG_PREFIX - 1 : NULL;
}

static bool is_unsupported_tag(const char *name)
{
    return strcmp(name, "binary") == 0 || strcmp(name, "set") == 0 || strcmp(name, "omap") == 0 ||
           strcmp(name, "pairs") == 0;
}

/* Raises for a tag the node cannot carry: `kind` is "scalar", "sequence"
 * or "mapping", `fits` the standard tag that suits it. */
static void check_collection_tag(lua_State *L, const yaml_char_t *tag, const char *fits,
                                 const char *kind, yaml_mark_t mark)
{
    if (tag == NULL || strcmp((const char *)tag, "!") == 0)
        return;
    const char *name = standard_tag(tag);
    if (name != NULL && strcmp(name, fits) == 0)
        return;
    if (name != NULL && is_unsupported_tag(name))
        fail_at(L, mark, "the tag !!%s is not supported", name);
    if (name != NULL && (strcmp(name, "str") == 0 || strcmp(name, "int") == 0 ||
                         strcmp(name, "float") == 0 || strcmp(name, "bool") == 0 ||
                         strcmp(name, "null") == 0 || strcmp(name, "seq") == 0 ||
                         strcmp(name, "map") == 0 || strcmp(name, "timestamp") == 0))
        fail_at(L, mark, "the tag !!%s cannot be given to a %s", name, kind);
    fail_at(L, mark, "could not determine a constructor for the tag '%s'", (const char *)tag);
}

static scalar_kind tagged_kind(lua_State *L, const yaml_event_t *ev)
{
    const yaml_char_t *tag = ev->data.scalar.tag;
    const char *value = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    if (tag == NULL || strcmp((const char *)tag, "!") == 0)
        return ev->data.scalar.plain_implicit ? resolve_plain(value, n) : SCALAR_STR;
    const char *name = standard_tag(tag);
    if (name == NULL) { /* fail_at raises: it never returns */
        fail_at(L, ev->start_mark, "could not determine a constructor for the tag '%s'",
                (const char *)tag);
        return SCALAR_STR;
    }
    if (strcmp(name, "str") == 0 || strcmp(name, "timestamp") == 0)
        return SCALAR_STR;
    if (strcmp(name, "null") == 0)
        return SCALAR_NULL;
    if (strcmp(name, "int") == 0) {
        if (!is_int_text(value, n))
            fail_at(L, ev->start_mark, "invalid integer %.*s", n > 40 ? 40 : (int)n, value);
        return SCALAR_INT;
    }
    if (strcmp(name, "float") == 0)
        return SCALAR_FLOAT;
    if (strcmp(name, "bool") == 0) {
        if (n <= 5) {
            char low[6] = { 0 };
            for (size_t i = 0; i < n; i++)
                low[i] = (char)(value[i] >= 'A' && value[i] <= 'Z' ? value[i] + 32 : value[i]);
            if (strcmp(low, "yes") == 0 || strcmp(low, "true") == 0 || strcmp(low, "on") == 0)
                return SCALAR_TRUE;
            if (strcmp(low, "no") == 0 || strcmp(low, "false") == 0 || strcmp(low, "off") == 0)
                return SCALAR_FALSE;
        }
        fail_at(L, ev->start_mark, "invalid boolean %.*s", n > 40 ? 40 : (int)n, value);
    }
    if (strcmp(name, "merge") == 0)
        return SCALAR_MERGE;
    if (strcmp(name, "value") == 0)
        return SCALAR_VALUE;
    check_collection_tag(L, tag, "", "scalar", ev->start_mark);
    return SCALAR_STR;
}

static void push_scalar(lua_State *L, decoder *d)
{
    const yaml_event_t *ev = &d->event;
    const char *value = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    switch (tagged_kind(L, ev)) {
    case SCALAR_STR: lua_pushlstring(L, value, n); break;
    case SCALAR_NULL: lua_pushlightuserdata(L, d->null); break;
    case SCALAR_TRUE: lua_pushboolean(L, 1); break;
    case SCALAR_FALSE: lua_pushboolean(L, 0); break;
    case SCALAR_INT: push_int(L, value, n, ev->start_mark); break;
    case SCALAR_FLOAT: push_float(L, value, n, ev->start_mark); break;
    case SCALAR_MERGE: lua_pushlightuserdata(L, MERGE_KEY); break;
    case SCALAR_VALUE: lua_pushlightuserdata(L, VALUE_KEY); break;
    }
}

/* ---- anchors and aliases ------------------------------------------------------ */

/* At a node's start: PyYAML refuses an anchor defined twice. Marks it open. */
static void open_anchor(lua_State *L, decoder *d, const yaml_char_t *anchor, yaml_mark_t mark)
{
    lua_pushstring(L, (const char *)anchor);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, d->sizes) != LUA_TNIL)
        fail_at(L, mark, "found duplicate anchor '%s'", (const char *)anchor);
    lua_pop(L, 1);
    lua_pushboolean(L, 0);
    lua_rawset(L, d->sizes);
}

/* At a node's end, its value on top: the anchor (a string at `name`) now
 * names that value. */
static void close_anchor(lua_State *L, decoder *d, int name, size_t nodes)
{
    lua_pushvalue(L, name);
    lua_pushvalue(L, -2);
    lua_rawset(L, d->anchors);
    lua_pushvalue(L, name);
    lua_pushinteger(L, (lua_Integer)nodes);
    lua_rawset(L, d->sizes);
}

/* Pushes the aliased value (the same table: PyYAML shares it too) and
 * returns how many nodes it stands for. */
static size_t push_alias(lua_State *L, decoder *d)
{
    const char *name = (const char *)d->event.data.alias.anchor;
    lua_pushstring(L, name);
    int type = lua_rawget(L, d->sizes);
    if (type == LUA_TNIL)
        fail_at(L, d->event.start_mark, "found undefined alias '%s'", name);
    if (type == LUA_TBOOLEAN)
        fail_at(L, d->event.start_mark,
                "the alias '%s' refers to a node that contains it (recursive structures are not "
                "supported)", name);
    size_t nodes = (size_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
    d->alias_nodes += nodes;
    if (d->alias_nodes > YAML_MAX_ALIAS_NODES)
        fail_at(L, d->event.start_mark,
                "aliases expand to more than %d nodes (a \"billion laughs\" document?)",
                YAML_MAX_ALIAS_NODES);
    lua_pushstring(L, name);
    lua_rawget(L, d->anchors);
    return nodes;
}

/* ---- collections ----------------------------------------------------------------- */

static bool is_marked(lua_State *L, int idx, int mt)
{
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return false;
    bool same = lua_rawequal(L, -1, mt);
    lua_pop(L, 1);
    return same;
}

static void open_frame(lua_State *L, decoder *d, frame_kind kind)
{
    const yaml_event_t *ev = &d->event;
    const yaml_char_t *anchor = kind == FRAME_MAPPING ? ev->data.mapping_start.anchor
                                                      : ev->data.sequence_start.anchor;
    if (d->depth >= YAML_MAX_DEPTH)
        fail_at(L, ev->start_mark, "nesting deeper than %d", YAML_MAX_DEPTH);
    if (kind == FRAME_MAPPING)
        check_collection_tag(L, ev->data.mapping_start.tag, "map", "mapping", ev->start_mark);
    else
        check_collection_tag(L, ev->data.sequence_start.tag, "seq", "sequence", ev->start_mark);
    luaL_checkstack(L, 12, "yaml.decode");
    if (anchor != NULL)
        open_anchor(L, d, anchor, ev->start_mark);
    frame *f = &d->frames[d->depth++];
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->start = ev->start_mark;
    lua_newtable(L);
    f->table = lua_gettop(L);
    if (kind == FRAME_MAPPING)
        lua_newtable(L);
    else
        lua_pushnil(L);
    if (anchor != NULL)
        lua_pushstring(L, (const char *)anchor);
    else
        lua_pushnil(L);
    lua_pushnil(L); /* merge sources */
}

/* A `<<` value, on top: a mapping, or a sequence of mappings, whose entries
 * the mapping takes unless it has them itself. Merge sources are kept in
 * the order PyYAML's flatten_mapping lists their entries: a sequence's
 * items last to first, so that the first one wins. */
static void add_merge(lua_State *L, frame *f, yaml_mark_t mark)
{
    int value = lua_gettop(L), sources = f->table + 3;
    if (!f->merges) {
        lua_newtable(L);
        lua_replace(L, sources);
        f->merges = true;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, sources);
    if (is_marked(L, value, UV_OBJECT_MT)) {
        lua_pushvalue(L, value);
        lua_rawseti(L, sources, n + 1);
        return;
    }
    if (!is_marked(L, value, UV_ARRAY_MT))
        fail_at(L, mark, "expected a mapping or list of mappings for merging");
    lua_Integer items = (lua_Integer)lua_rawlen(L, value);
    for (lua_Integer i = items; i >= 1; i--) {
        lua_rawgeti(L, value, i);
        if (!is_marked(L, -1, UV_OBJECT_MT))
            fail_at(L, mark, "expected a mapping for merging, but found %s",
                    lua_type(L, -1) == LUA_TTABLE ? "a sequence" : "a scalar");
        lua_rawseti(L, sources, ++n);
    }
}

/* Calls fn for each key (at -2) and value (at -1) of the decoded mapping at
 * `map`, string keys in their order, then the others. */
static void merge_entries(lua_State *L, int map, int merged, int merged_order)
{
    lua_Integer listed = (lua_Integer)lua_rawlen(L, merged_order);
    lua_pushvalue(L, map);
    if (lua_rawget(L, UV_KEY_ORDERS) == LUA_TTABLE) {
        int order = lua_gettop(L);
        lua_Integer n = (lua_Integer)lua_rawlen(L, order);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, order, i);
            lua_pushvalue(L, -1);
            if (lua_rawget(L, merged) == LUA_TNIL) {
                lua_pushvalue(L, -2);
                lua_rawseti(L, merged_order, ++listed);
            }
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_rawget(L, map);
            lua_rawset(L, merged); /* a later source wins */
        }
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, map)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, merged);
    }
}

/* PyYAML puts merged entries before the mapping's own (whatever the place
 * of `<<`), and the mapping's own values win: the key order becomes the
 * merged keys, then the mapping's other keys. */
static void apply_merges(lua_State *L, frame *f)
{
    int table = f->table, order = table + 1, sources = table + 3;
    int top = lua_gettop(L);
    lua_newtable(L);
    int merged = top + 1;
    lua_newtable(L);
    int merged_order = top + 2;
    lua_Integer nsources = (lua_Integer)lua_rawlen(L, sources);
    for (lua_Integer i = 1; i <= nsources; i++) {
        lua_rawgeti(L, sources, i);
        merge_entries(L, lua_gettop(L), merged, merged_order);
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, merged)) {
        lua_pushvalue(L, -2);
        if (lua_rawget(L, table) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, table);
        } else {
            lua_pop(L, 2);
        }
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, merged_order);
    for (lua_Integer i = 1; i <= f->n; i++) {
        lua_rawgeti(L, order, i);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, merged) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_rawseti(L, merged_order, ++n);
        } else {
            lua_pop(L, 2);
        }
    }
    f->n = n;
    lua_pushvalue(L, merged_order);
    lua_replace(L, order);
    lua_settop(L, top);
}

/* Ends the innermost collection: leaves its table on top (the frame's slots
 * gone) and returns its node count. */
static size_t close_frame(lua_State *L, decoder *d)
{
    frame *f = &d->frames[--d->depth];
    int table = f->table;
    if (f->kind == FRAME_MAPPING) {
        if (f->merges)
            apply_merges(L, f);
        if (f->n > 0) {
            lua_pushvalue(L, table);
            lua_pushvalue(L, table + 1);
            lua_rawset(L, UV_KEY_ORDERS);
        }
        lua_pushvalue(L, UV_OBJECT_MT);
    } else {
        lua_pushvalue(L, UV_ARRAY_MT);
    }
    lua_setmetatable(L, table);
    size_t nodes = f->nodes + 1;
    if (!lua_isnil(L, table + 2)) {
        lua_pushvalue(L, table);
        close_anchor(L, d, table + 2, nodes);
        lua_pop(L, 1);
    }
    lua_settop(L, table);
    return nodes;
}

/* A mapping key just arrived, on top: PyYAML needs it hashable. */
static void check_key(lua_State *L, yaml_mark_t mark)
{
    if (lua_type(L, -1) == LUA_TTABLE)
        fail_at(L, mark, "found unhashable key (a %s)",
                is_marked(L, -1, UV_OBJECT_MT) ? "mapping" : "sequence");
    if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1))
        fail_at(L, mark, "a .nan key (Lua tables cannot hold one)");
    if (lua_touserdata(L, -1) == VALUE_KEY) {
        lua_pop(L, 1);
        lua_pushliteral(L, "=");
    }
}

/* Attaches the value on top (standing for `nodes` nodes) to the innermost
 * collection, or leaves it as the document's root. */
static void add_value(lua_State *L, decoder *d, size_t nodes, yaml_mark_t mark)
{
    void *p = lua_touserdata(L, -1);
    frame *f = d->depth > 0 ? &d->frames[d->depth - 1] : NULL;
    if (f != NULL && f->kind == FRAME_MAPPING && !f->has_key) {
        check_key(L, mark);
        f->has_key = true;
        f->key_mark = mark;
        f->nodes += nodes;
        return;
    }
    if (p == MERGE_KEY || p == VALUE_KEY)
        fail_at(L, mark, "could not determine a constructor for the tag '" TAG_PREFIX "%s'",
                p == MERGE_KEY ? "merge" : "value");
    if (f == NULL)
        return;
    f->nodes += nodes;
    if (f->kind == FRAME_SEQUENCE) {
        lua_rawseti(L, f->table, ++f->n);
        return;
    }
    f->has_key = false;
    if (lua_touserdata(L, -2) == MERGE_KEY) {
        add_merge(L, f, f->key_mark);
        lua_pop(L, 2);
        return;
    }
    /* a duplicate key keeps its first place and takes the last value, as a
     * Python dict does */
    lua_pushvalue(L, -2);
    if (lua_rawget(L, f->table) == LUA_TNIL && lua_type(L, -3) == LUA_TSTRING) {
        lua_pushvalue(L, -3);
        lua_rawseti(L, f->table + 1, ++f->n);
    }
    lua_pop(L, 1);
    lua_rawset(L, f->table);
}

/* ---- the event loop ------------------------------------------------------------ */

static void next_event(lua_State *L, decoder *d)
{
    if (d->have_event) {
        yaml_event_delete(&d->event);
        d->have_event = false;
    }
    if (!yaml_parser_parse(&d->parser, &d->event))
        fail_parse(L, &d->parser);
    d->have_event = true;
}

/* Runs protected with the decoder as a light userdata; returns the value. */
static int decode_events(lua_State *L)
{
    decoder *d = lua_touserdata(L, 1);
    int documents = 0;
    lua_settop(L, 1);
    lua_newtable(L);
    d->anchors = lua_gettop(L);
    lua_newtable(L);
    d->sizes = lua_gettop(L);
    for (;;) {
        next_event(L, d);
        yaml_event_t *ev = &d->event;
        switch (ev->type) {
        case YAML_STREAM_END_EVENT:
            if (documents == 0)
                lua_pushnil(L);
            return 1;
        case YAML_DOCUMENT_START_EVENT:
            if (documents++ > 0)
                fail_at(L, ev->start_mark,
                        "expected a single document in the stream, but found another document");
            break;
        case YAML_ALIAS_EVENT: {
            luaL_checkstack(L, 6, "yaml.decode");
            size_t nodes = push_alias(L, d);
            add_value(L, d, nodes, ev->start_mark);
            break;
        }
        case YAML_SCALAR_EVENT:
            luaL_checkstack(L, 6, "yaml.decode");
            if (ev->data.scalar.anchor != NULL)
                open_anchor(L, d, ev->data.scalar.anchor, ev->start_mark);
            push_scalar(L, d);
            if (ev->data.scalar.anchor != NULL) {
                lua_pushstring(L, (const char *)ev->data.scalar.anchor);
                lua_insert(L, -2);
                close_anchor(L, d, lua_gettop(L) - 1, 1);
                lua_remove(L, -2);
            }
            add_value(L, d, 1, ev->start_mark);
            break;
        case YAML_SEQUENCE_START_EVENT: open_frame(L, d, FRAME_SEQUENCE); break;
        case YAML_MAPPING_START_EVENT: open_frame(L, d, FRAME_MAPPING); break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
            yaml_mark_t start = d->frames[d->depth - 1].start;
            size_t nodes = close_frame(L, d);
            add_value(L, d, nodes, start);
            break;
        }
        default: break; /* stream start, document end, no event */
        }
    }
}

static int yaml_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    int status;
    lua_settop(L, 1);
    luaL_checkstack(L, 8, "yaml.decode");
    /* a userdata, not the C stack: the frames are large, and a daemon's
     * threads may have small stacks */
    decoder *d = lua_newuserdatauv(L, sizeof *d, 0);
    d->have_event = false;
    d->depth = 0;
    d->alias_nodes = 0;
    d->null = mig_json_null();
    lua_pushvalue(L, UV_OBJECT_MT);
    lua_pushvalue(L, UV_ARRAY_MT);
    lua_pushvalue(L, UV_KEY_ORDERS);
    lua_pushcclosure(L, decode_events, 3);
    if (!yaml_parser_initialize(&d->parser))
        return luaL_error(L, "yaml.decode: not enough memory");
    yaml_parser_set_input_string(&d->parser, (const unsigned char *)text, len);
    lua_pushlightuserdata(L, d);
    status = lua_pcall(L, 1, 1, 0);
    if (d->have_event)
        yaml_event_delete(&d->event);
    yaml_parser_delete(&d->parser);
    if (status == LUA_ERRRUN) /* raised inside decode_events */
        return mig_raise_at_caller(L);
    if (status != LUA_OK)
        return lua_error(L);
    return 1;
}

/* ---- the module ----------------------------------------------------------------- */

/* Every function shares json's three upvalues. yaml.edit (the document
 * editor) joins this list. */
static const luaL_Reg yaml_functions[] = {
    { "decode", yaml_decode },
    { "encode", mig_yaml_encode },
    { "null", NULL },
    { NULL, NULL },
};

void mig_open_yaml(lua_State *L, int json_decode)
{
    json_decode = lua_absindex(L, json_decode);
    luaL_checkstack(L, 6, "yaml");
    lua_createtable(L, 0, 4);
    for (int i = 1; i <= 3; i++)
        if (lua_getupvalue(L, json_decode, i) == NULL)
            luaL_error(L, "yaml: json.decode is not the library's");
    luaL_setfuncs(L, yaml_functions, 3);
    lua_pushlightuserdata(L, mig_json_null());
    lua_setfield(L, -2, "null");
    mig_yaml_add_edit(L); /* yaml_doc.c */
}
