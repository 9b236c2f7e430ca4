/*
 * json.c - the `json` module scripts use (SPEC §5).
 *
 * Migrations rewrite users' config files, so the promise is: decode, change,
 * encode, and the text differs from the original only where the script
 * changed it. Hence: object key order is remembered, "3" and "3.0" stay what
 * they were, empty {} and [] keep their kind, and nothing is silently rounded.
 *
 * cJSON builds the tree; a syntax check of our own over the text comes
 * first and supplies what cJSON cannot: strict RFC 8259, exact error
 * positions, the nesting limit, and whether each number was written as an
 * integer. The encoder is ours: it writes JSON.stringify's layout.
 */
#include "internal.h"

#include <cJSON.h>
#include <lauxlib.h>

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 256
#define JSON_MAX_SAFE_INTEGER 9007199254740991LL /* 2^53 - 1 */
#define JSON_MAX_INDENT 16
/* cJSON copies a number into a 64-byte buffer before strtod: longer number
 * tokens would be cut short there. */
#define JSON_MAX_NUMBER_LEN 63

/* Upvalues of every function of the module (and of the object metatable's
 * __newindex): the two marker metatables and the key-order registry. */
#define UV_OBJECT_MT lua_upvalueindex(1)
#define UV_ARRAY_MT lua_upvalueindex(2)
#define UV_KEY_ORDERS lua_upvalueindex(3)

/* json.null is a light userdata with this address: unique, and no state. */
static const char json_null_sentinel = 0;
#define JSON_NULL ((void *)&json_null_sentinel)

/* ---- Shared helpers ------------------------------------------------------ */

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Bytes a JSON string holds as they are: printable ASCII but '"' and '\\'. */
static bool is_plain_ascii(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

static bool is_number_char(unsigned char c)
{
    return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0.
 * Strict, as RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF. */
static size_t utf8_sequence_length(const unsigned char *s, size_t n)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        lo = s[0] == 0xE0 ? 0xA0 : 0x80;
        hi = s[0] == 0xED ? 0x9F : 0xBF;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        lo = s[0] == 0xF0 ? 0x90 : 0x80;
        hi = s[0] == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* 0: no metatable; 1: the marker metatable at `mt`; -1: another one. */
static int metatable_is(lua_State *L, int idx, int mt)
{
    int same;
    if (!lua_getmetatable(L, idx))
        return 0;
    same = lua_rawequal(L, -1, mt);
    lua_pop(L, 1);
    return same ? 1 : -1;
}

typedef struct key_ref {
    const char *text;
    size_t len;
} key_ref;

static int key_ref_compare(const void *pa, const void *pb)
{
    const key_ref *a = pa, *b = pb;
    int c = memcmp(a->text, b->text, a->len < b->len ? a->len : b->len);
    if (c != 0)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

/* Pushes a userdata holding the table's string keys that `order` (the stack
 * index of an order list with its reverse map, or 0) does not list, sorted
 * bytewise; *count gets their number. The pointers stay valid while the
 * table, which holds the strings, is unchanged and reachable. */
static key_ref *push_sorted_keys(lua_State *L, int table, int order, size_t *count)
{
    size_t n = 0, cap = 0;
    key_ref *keys;
    lua_pushnil(L);
    while (lua_next(L, table)) {
        cap += lua_type(L, -2) == LUA_TSTRING;
        lua_pop(L, 1);
    }
    if (cap > SIZE_MAX / sizeof *keys)
        luaL_error(L, "json: too many keys");
    keys = lua_newuserdatauv(L, cap * sizeof *keys + 1, 0);
    lua_pushnil(L);
    while (lua_next(L, table)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            continue;
        if (order != 0) {
            lua_pushvalue(L, -1);
            bool listed = lua_rawget(L, order) != LUA_TNIL;
            lua_pop(L, 1);
            if (listed)
                continue;
        }
        keys[n].text = lua_tolstring(L, -1, &keys[n].len);
        n++;
    }
    qsort(keys, n, sizeof *keys, key_ref_compare);
    *count = n;
    return keys;
}

/* ---- Key order ------------------------------------------------------------ */

/*
 * Each object's key order lives in UV_KEY_ORDERS (weak keys, so it goes away
 * with the object): object -> { "a", "b" }, its keys in the order they were
 * first set. Decoding writes only that list: the object itself tells a
 * duplicate key apart, and most decoded objects are never given a new key.
 * The first key added to an object afterwards (or renamed in it) gives the
 * list a reverse map, { "a", "b", a = 1, b = 2, [0] = true }, so that a key
 * deleted and added again moves to the end without a search: its old slot
 * stays, but only the slot the map names counts. Without a map, every slot
 * counts.
 */

/* Pushes the order list of the table at `object` (absolute index), created
 * (empty, with its map) when it has none. */
static void push_key_order(lua_State *L, int object)
{
    lua_pushvalue(L, object);
    if (lua_rawget(L, UV_KEY_ORDERS) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushboolean(L, 1);
    lua_rawseti(L, -2, 0);
    lua_pushvalue(L, object);
    lua_pushvalue(L, -2);
    lua_rawset(L, UV_KEY_ORDERS);
}

static bool key_order_is_mapped(lua_State *L, int order)
{
    bool mapped = lua_rawgeti(L, order, 0) != LUA_TNIL;
    lua_pop(L, 1);
    return mapped;
}

/* Gives the order list at `order` its reverse map, if it has none yet. The
 * flag goes last, so a map cut short by an allocation failure is simply
 * built again next time. */
static void map_key_order(lua_State *L, int order)
{
    order = lua_absindex(L, order);
    if (key_order_is_mapped(L, order))
        return;
    lua_Integer n = (lua_Integer)lua_rawlen(L, order);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, order, i);
        lua_pushinteger(L, i);
        lua_rawset(L, order);
    }
    lua_pushboolean(L, 1);
    lua_rawseti(L, order, 0);
}

/* Appends the string at `key` to the order list on top of the stack, which
 * has its reverse map. */
static void append_key(lua_State *L, int key)
{
    key = lua_absindex(L, key);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1) + 1;
    lua_pushvalue(L, key);
    lua_rawseti(L, -2, n);
    lua_pushvalue(L, key);
    lua_pushinteger(L, n);
    lua_rawset(L, -3);
}

/* __newindex of decoded objects: runs only for keys the object lacks, so
 * every key a script adds goes last, in the order it added them. */
static int object_newindex(lua_State *L)
{
    lua_settop(L, 3);
    if (lua_type(L, 2) == LUA_TSTRING && !lua_isnil(L, 3)) {
        push_key_order(L, 1);
        map_key_order(L, -1);
        append_key(L, 2);
        lua_pop(L, 1);
    }
    lua_rawset(L, 1);
    return 0;
}

/* ---- decode: syntax check ---------------------------------------------------- */

typedef enum problem_kind {
    PROBLEM_NONE,
    PROBLEM_SYNTAX,
    PROBLEM_TOO_DEEP,
    PROBLEM_INTEGER_RANGE
} problem_kind;

typedef struct syntax_problem {
    problem_kind problem;
    size_t pos;       /* byte offset of the problem */
    size_t token_len; /* PROBLEM_INTEGER_RANGE: length of the integer */
    char reason[96];  /* PROBLEM_SYNTAX */
    /* the text holds what cJSON cannot take as it is (a \u0000 escape, a
     * number longer than its buffer): decode works on a patched copy */
    bool needs_copy;
} syntax_problem;

static bool syntax_fail(syntax_problem *r, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool syntax_fail(syntax_problem *r, size_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
    r->problem = PROBLEM_SYNTAX;
    r->pos = pos;
    return false;
}

/* "'x'" for a printable ASCII byte, else "byte 0xNN". */
static const char *describe_byte(unsigned char c, char out[16])
{
    if (c > 0x20 && c < 0x7F)
        snprintf(out, 16, "'%c'", c);
    else
        snprintf(out, 16, "byte 0x%02X", c);
    return out;
}

static bool read_hex4(const char *text, size_t len, size_t pos, unsigned *out)
{
    unsigned v = 0;
    if (len < 4 || pos > len - 4)
        return false;
    for (size_t i = pos; i < pos + 4; i++) {
        unsigned char c = (unsigned char)text[i];
        unsigned d = is_digit(c) ? c - '0'
                     : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                     : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : 16;
        if (d == 16)
            return false;
        v = v * 16 + d;
    }
    *out = v;
    return true;
}

/* The escape at *pos (a backslash). Stricter than cJSON, which reads a bad
 * hex digit as 0, so that "\uZZZZ" would silently end the string there. */
static bool lex_escape(const char *text, size_t len, size_t *pos, syntax_problem *r)
{
    size_t i = *pos;
    unsigned code, low;
    char shown[16];
    if (i + 1 >= len)
        return syntax_fail(r, i, "unterminated string");
    switch (text[i + 1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        *pos = i + 2;
        return true;
    case 'u':
        break;
    default:
        return syntax_fail(r, i, "invalid escape \\ followed by %s",
                           describe_byte((unsigned char)text[i + 1], shown));
    }
    if (!read_hex4(text, len, i + 2, &code))
        return syntax_fail(r, i, "invalid \\u escape (four hex digits expected)");
    /* cJSON hands strings back NUL-terminated: a NUL inside would cut the
     * string short, so such texts take the slower path of decode_copy(). */
    if (code == 0)
        r->needs_copy = true;
    if (code >= 0xDC00 && code <= 0xDFFF)
        return syntax_fail(r, i, "unpaired surrogate \\u%04X", code);
    if (code >= 0xD800 && code <= 0xDBFF) {
        if (i + 7 >= len || text[i + 6] != '\\' || text[i + 7] != 'u' ||
            !read_hex4(text, len, i + 8, &low) || low < 0xDC00 || low > 0xDFFF)
            return syntax_fail(r, i, "unpaired surrogate \\u%04X", code);
        *pos = i + 12;
        return true;
    }
    *pos = i + 6;
    return true;
}

/* The string starting at *pos (a quote). cJSON accepts raw control bytes
 * and any byte sequence; JSON and our encoder do not. */
static bool lex_string(const char *text, size_t len, size_t *pos, syntax_problem *r)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t i = *pos + 1;
    while (i < len && u[i] != '"') {
        if (is_plain_ascii(u[i])) {
            i++;
        } else if (u[i] == '\\') {
            if (!lex_escape(text, len, &i, r))
                return false;
        } else if (u[i] < 0x20) {
            return syntax_fail(r, i, "control character U+%04X in a string (must be escaped)",
                               u[i]);
        } else {
            size_t n = utf8_sequence_length(u + i, len - i);
            if (n == 0)
                return syntax_fail(r, i, "invalid UTF-8 in a string");
            i += n;
        }
    }
    if (i >= len)
        return syntax_fail(r, *pos, "unterminated string");
    *pos = i + 1;
    return true;
}

static size_t skip_digits(const char *text, size_t len, size_t i)
{
    while (i < len && is_digit((unsigned char)text[i]))
        i++;
    return i;
}

/* Whether the integer token (optional '-', then digits without leading
 * zeros) lies within ±(2^53 - 1). */
static bool integer_is_exact(const char *token, size_t len)
{
    unsigned long long v = 0;
    size_t i = token[0] == '-';
    if (len - i > 16)
        return false;
    for (; i < len; i++)
        v = v * 10 + (unsigned)(token[i] - '0');
    return v <= (unsigned long long)JSON_MAX_SAFE_INTEGER;
}

static bool lex_invalid_number(const char *text, size_t len, size_t start, syntax_problem *r)
{
    size_t end = start + 1;
    while (end < len && is_number_char((unsigned char)text[end]))
        end++;
    if (end - start > 32)
        return syntax_fail(r, start, "invalid number '%.32s...'", text + start);
    return syntax_fail(r, start, "invalid number '%.*s'", (int)(end - start), text + start);
}

/* The number at *pos, by RFC 8259's grammar: cJSON's strtod would also
 * take "01", "1." or "-.5". */
static bool lex_number(const char *text, size_t len, size_t *pos, syntax_problem *r)
{
    size_t start = *pos, i = start + (text[start] == '-');
    bool integer = true;
    if (i < len && text[i] == '0')
        i++;
    else if (i < len && is_digit((unsigned char)text[i]))
        i = skip_digits(text, len, i);
    else
        return lex_invalid_number(text, len, start, r);
    if (i < len && text[i] == '.') {
        integer = false;
        if (i + 1 >= len || !is_digit((unsigned char)text[i + 1]))
            return lex_invalid_number(text, len, start, r);
        i = skip_digits(text, len, i + 1);
    }
    if (i < len && (text[i] == 'e' || text[i] == 'E')) {
        integer = false;
        i += i + 1 < len && (text[i + 1] == '+' || text[i + 1] == '-');
        if (i + 1 >= len || !is_digit((unsigned char)text[i + 1]))
            return lex_invalid_number(text, len, start, r);
        i = skip_digits(text, len, i + 1);
    }
    if (i < len && is_number_char((unsigned char)text[i]))
        return lex_invalid_number(text, len, start, r);
    if (integer && !integer_is_exact(text + start, i - start)) {
        r->problem = PROBLEM_INTEGER_RANGE;
        r->pos = start;
        r->token_len = i - start;
        return false;
    }
    if (i - start > JSON_MAX_NUMBER_LEN)
        r->needs_copy = true; /* cJSON would cut it short: see push_number */
    *pos = i;
    return true;
}

static bool lex_word(const char *text, size_t len, size_t *pos, syntax_problem *r)
{
    size_t start = *pos, end = start;
    while (end < len && ((text[end] >= 'a' && text[end] <= 'z') ||
                         (text[end] >= 'A' && text[end] <= 'Z')))
        end++;
    if ((end - start == 4 && memcmp(text + start, "true", 4) == 0) ||
        (end - start == 5 && memcmp(text + start, "false", 5) == 0) ||
        (end - start == 4 && memcmp(text + start, "null", 4) == 0)) {
        *pos = end;
        return true;
    }
    if (end - start > 16)
        return syntax_fail(r, start, "invalid literal '%.16s...'", text + start);
    return syntax_fail(r, start, "invalid literal '%.*s'", (int)(end - start), text + start);
}

/* What the syntax check expects next. */
typedef enum expectation {
    EXPECT_VALUE,          /* at the start, after ':', after ',' in an array */
    EXPECT_VALUE_OR_CLOSE, /* after '[' */
    EXPECT_KEY,            /* after ',' in an object */
    EXPECT_KEY_OR_CLOSE,   /* after '{' */
    EXPECT_COLON,
    EXPECT_COMMA_OR_CLOSE,
    EXPECT_END
} expectation;

typedef struct syntax_state {
    const char *text;
    size_t len, pos;
    int depth;
    bool in_object[JSON_MAX_DEPTH]; /* per open bracket: '{' rather than '[' */
    expectation expect;
    size_t values, string_bytes; /* what cJSON will allocate for the text */
} syntax_state;

static bool syntax_unexpected(syntax_state *s, syntax_problem *r, const char *expected)
{
    char shown[16];
    if (s->pos >= s->len)
        return syntax_fail(r, s->len, "unexpected end of input");
    return syntax_fail(r, s->pos, "unexpected %s%s",
                       describe_byte((unsigned char)s->text[s->pos], shown), expected);
}

static void syntax_after_value(syntax_state *s)
{
    s->expect = s->depth == 0 ? EXPECT_END : EXPECT_COMMA_OR_CLOSE;
}

static bool syntax_open(syntax_state *s, syntax_problem *r, bool object)
{
    if (s->depth == JSON_MAX_DEPTH) {
        r->problem = PROBLEM_TOO_DEEP;
        r->pos = s->pos;
        return false;
    }
    s->in_object[s->depth++] = object;
    s->expect = object ? EXPECT_KEY_OR_CLOSE : EXPECT_VALUE_OR_CLOSE;
    s->pos++;
    return true;
}

static bool syntax_close(syntax_state *s)
{
    s->depth--;
    s->pos++;
    syntax_after_value(s);
    return true;
}

/* A string (value or key): cJSON allocates its unescaped bytes and a NUL,
 * at most its length in the text. */
static bool syntax_string(syntax_state *s, syntax_problem *r)
{
    size_t start = s->pos;
    bool ok = lex_string(s->text, s->len, &s->pos, r);
    s->string_bytes += s->pos - start;
    return ok;
}

static bool syntax_value(syntax_state *s, syntax_problem *r)
{
    unsigned char c = (unsigned char)s->text[s->pos];
    bool ok;
    s->values++;
    if (c == '{' || c == '[')
        return syntax_open(s, r, c == '{');
    if (c == ']' && s->expect == EXPECT_VALUE_OR_CLOSE)
        return syntax_close(s);
    if (c == '"')
        ok = syntax_string(s, r);
    else if (c == '-' || is_digit(c))
        ok = lex_number(s->text, s->len, &s->pos, r);
    else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        ok = lex_word(s->text, s->len, &s->pos, r);
    else
        return syntax_unexpected(s, r, s->expect == EXPECT_VALUE ? " (expected a value)"
                                                                 : " (expected a value or ']')");
    syntax_after_value(s);
    return ok;
}

static bool syntax_step(syntax_state *s, syntax_problem *r)
{
    char c = s->text[s->pos];
    bool object = s->depth > 0 && s->in_object[s->depth - 1];
    switch (s->expect) {
    case EXPECT_VALUE:
    case EXPECT_VALUE_OR_CLOSE:
        return syntax_value(s, r);
    case EXPECT_KEY:
    case EXPECT_KEY_OR_CLOSE:
        if (c == '}' && s->expect == EXPECT_KEY_OR_CLOSE)
            return syntax_close(s);
        if (c != '"')
            return syntax_unexpected(s, r, " (expected a string key)");
        s->expect = EXPECT_COLON;
        return syntax_string(s, r);
    case EXPECT_COLON:
        if (c != ':')
            return syntax_unexpected(s, r, " (expected ':')");
        s->expect = EXPECT_VALUE;
        s->pos++;
        return true;
    case EXPECT_COMMA_OR_CLOSE:
        if (c == (object ? '}' : ']'))
            return syntax_close(s);
        if (c != ',')
            return syntax_unexpected(s, r, object ? " (expected ',' or '}')"
                                                  : " (expected ',' or ']')");
        s->expect = object ? EXPECT_KEY : EXPECT_VALUE;
        s->pos++;
        return true;
    default:
        return syntax_unexpected(s, r, " (expected end of input)");
    }
}

static size_t skip_whitespace(const char *text, size_t len, size_t i)
{
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
        i++;
    return i;
}

/*
 * Checks the whole text against RFC 8259 and finds the first problem and
 * where it is. cJSON alone would not do: it is lenient (numbers like "01",
 * raw control bytes and invalid UTF-8 in strings, any byte below 0x20 as
 * whitespace), reports some errors a byte too far, and cannot tell a
 * syntax error from a failed malloc. *tree_bytes gets an upper bound of
 * what cJSON will allocate for a valid text (SIZE_MAX if it overflows).
 */
static void check_syntax(const char *text, size_t len, syntax_problem *r, size_t *tree_bytes)
{
    /* cJSON items, string copies and malloc's own overhead for each */
    const size_t item_bytes = sizeof(cJSON) + 2 * 16;
    syntax_state s;
    s.values = 0;
    s.string_bytes = 0;
    s.text = text;
    s.len = len;
    /* a UTF-8 byte order mark, as some Windows editors write, is skipped
     * (and not written back) */
    s.pos = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    s.depth = 0;
    s.expect = EXPECT_VALUE;
    r->problem = PROBLEM_NONE;
    r->needs_copy = false;
    for (;;) {
        s.pos = skip_whitespace(text, len, s.pos);
        if (s.pos >= len) {
            if (s.expect != EXPECT_END)
                syntax_unexpected(&s, r, "");
            *tree_bytes = s.values > (SIZE_MAX - s.string_bytes) / item_bytes
                              ? SIZE_MAX
                              : s.values * item_bytes + s.string_bytes;
            return;
        }
        if (!syntax_step(&s, r))
            return;
    }
}

/* ---- decode: errors ------------------------------------------------------------ */

/* 1-based line and column (in characters) of byte offset pos. */
static void locate(const char *text, size_t pos, size_t *line, size_t *column)
{
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            ++*line;
            *column = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            ++*column;
        }
    }
}

static void format_decode_error(const char *text, const syntax_problem *r, char *msg, size_t size)
{
    size_t line, column, shown;
    locate(text, r->pos, &line, &column);
    switch (r->problem) {
    case PROBLEM_TOO_DEEP:
        snprintf(msg, size,
                 "json.decode: nesting deeper than %d at line %zu, column %zu (byte %zu)",
                 JSON_MAX_DEPTH, line, column, r->pos);
        break;
    case PROBLEM_INTEGER_RANGE:
        shown = r->token_len > 40 ? 40 : r->token_len;
        snprintf(msg, size,
                 "json.decode: integer %.*s%s at line %zu, column %zu is outside ±2^53 and "
                 "cannot be represented exactly",
                 (int)shown, text + r->pos, r->token_len > 40 ? "..." : "", line, column);
        break;
    default:
        snprintf(msg, size, "json.decode: invalid JSON at line %zu, column %zu (byte %zu): %s",
                 line, column, r->pos, r->reason);
        break;
    }
}

/* ---- decode: tree to Lua ------------------------------------------------------- */

typedef struct decoder {
    cJSON *tree;
    const char *text;
    size_t len;
    size_t next_number; /* where the search for the next number token starts */
    bool strings_from_text; /* strings decoded from the text, not cJSON's */
    size_t next_string;     /* then: where the next string token is sought */
} decoder;

/* Finds the next number token in the text: the k-th number of the tree (in
 * document order) is the k-th number token, since strings, which may hold
 * digits, are skipped whole. Returns whether it is written as an integer. */
static bool next_number_token(lua_State *L, decoder *d, size_t *start)
{
    const char *t = d->text;
    size_t i = d->next_number, len = d->len;
    bool integer = true;
    while (i < len && t[i] != '-' && !is_digit((unsigned char)t[i])) {
        if (t[i++] != '"')
            continue;
        while (i < len && t[i] != '"')
            i += t[i] == '\\' ? 2 : 1;
        i++;
    }
    if (i >= len)
        luaL_error(L, "json.decode: internal error: number tokens out of step");
    *start = i;
    for (i++; i < len && is_number_char((unsigned char)t[i]); i++)
        integer = integer && t[i] != '.' && t[i] != 'e' && t[i] != 'E';
    d->next_number = i;
    return integer;
}

/* A number token too long for cJSON's buffer (the copy cJSON saw has a 0
 * there): strtod over a copy, with the locale's decimal point as cJSON
 * does. */
static double long_number(lua_State *L, const char *token, size_t len)
{
    char *copy = lua_newuserdatauv(L, len + 1, 0);
    char point = localeconv()->decimal_point[0];
    for (size_t i = 0; i < len; i++)
        copy[i] = token[i] == '.' ? point : token[i];
    copy[len] = '\0';
    double value = strtod(copy, NULL);
    lua_pop(L, 1);
    return value;
}

static void push_utf8(luaL_Buffer *b, unsigned code)
{
    if (code < 0x80) {
        luaL_addchar(b, (char)code);
    } else if (code < 0x800) {
        luaL_addchar(b, (char)(0xC0 | (code >> 6)));
        luaL_addchar(b, (char)(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
        luaL_addchar(b, (char)(0xE0 | (code >> 12)));
        luaL_addchar(b, (char)(0x80 | ((code >> 6) & 0x3F)));
        luaL_addchar(b, (char)(0x80 | (code & 0x3F)));
    } else {
        luaL_addchar(b, (char)(0xF0 | (code >> 18)));
        luaL_addchar(b, (char)(0x80 | ((code >> 12) & 0x3F)));
        luaL_addchar(b, (char)(0x80 | ((code >> 6) & 0x3F)));
        luaL_addchar(b, (char)(0x80 | (code & 0x3F)));
    }
}

/* Pushes the next string token of the text, unescaped, NULs included: the
 * k-th string of the tree (keys included, in document order) is the k-th
 * string token, as numbers and literals hold no quote. The syntax check
 * has validated every escape. */
static void push_string_from_text(lua_State *L, decoder *d)
{
    const char *t = d->text;
    size_t i = d->next_string, len = d->len;
    luaL_Buffer b;
    while (i < len && t[i] != '"')
        i++;
    if (i >= len)
        luaL_error(L, "json.decode: internal error: string tokens out of step");
    luaL_buffinit(L, &b);
    for (i++; i < len && t[i] != '"'; i++) {
        if (t[i] != '\\') {
            luaL_addchar(&b, t[i]);
            continue;
        }
        char c = t[++i];
        unsigned code, low;
        switch (c) {
        case 'b': luaL_addchar(&b, '\b'); break;
        case 'f': luaL_addchar(&b, '\f'); break;
        case 'n': luaL_addchar(&b, '\n'); break;
        case 'r': luaL_addchar(&b, '\r'); break;
        case 't': luaL_addchar(&b, '\t'); break;
        case 'u':
            read_hex4(t, len, i + 1, &code);
            i += 4;
            if (code >= 0xD800 && code <= 0xDBFF) {
                read_hex4(t, len, i + 3, &low);
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                i += 6;
            }
            push_utf8(&b, code);
            break;
        default: luaL_addchar(&b, c); break; /* " \ / */
        }
    }
    d->next_string = i + 1;
    luaL_pushresult(&b);
}

static void push_number(lua_State *L, decoder *d, const cJSON *item)
{
    size_t start, shown, line, column;
    char msg[160];
    if (next_number_token(L, d, &start)) {
        /* exact: the syntax check bounded integers to ±(2^53 - 1) */
        lua_pushinteger(L, (lua_Integer)item->valuedouble);
        return;
    }
    double value = item->valuedouble;
    if (d->next_number - start > JSON_MAX_NUMBER_LEN)
        value = long_number(L, d->text + start, d->next_number - start);
    if (isfinite(value)) {
        lua_pushnumber(L, value);
        return;
    }
    shown = d->next_number - start;
    locate(d->text, start, &line, &column);
    snprintf(msg, sizeof msg,
             "json.decode: number %.*s at line %zu, column %zu is too large for a double",
             (int)(shown > 40 ? 40 : shown), d->text + start, line, column);
    luaL_error(L, "%s", msg);
}

static void push_value(lua_State *L, decoder *d, const cJSON *item, int depth);

/* Sets one member on the object at `object`; a key it lacks so far goes
 * into the order list at `order` as slot *listed + 1. A duplicate key: the
 * last value wins (as in JavaScript) and the key keeps the place of its
 * first occurrence (values are never nil, json.null being a userdata). */
static void push_member(lua_State *L, decoder *d, const cJSON *child, int depth, int object,
                        int order, lua_Integer *listed)
{
    const char *key = child->string != NULL ? child->string : "";
    if (d->strings_from_text)
        push_string_from_text(L, d);
    else
        lua_pushlstring(L, key, strlen(key)); /* not lua_pushstring: see push_value */
    lua_pushvalue(L, -1);
    if (lua_rawget(L, object) == LUA_TNIL) {
        lua_pushvalue(L, -2);
        lua_rawseti(L, order, ++*listed);
    }
    lua_pop(L, 1);
    push_value(L, d, child, depth);
    lua_rawset(L, object);
}

static void push_array(lua_State *L, decoder *d, const cJSON *item, int depth)
{
    lua_Integer n = 0;
    luaL_checkstack(L, 4, "json.decode");
    lua_createtable(L, cJSON_GetArraySize(item), 0);
    for (const cJSON *child = item->child; child != NULL; child = child->next) {
        push_value(L, d, child, depth);
        lua_rawseti(L, -2, ++n);
    }
    lua_pushvalue(L, UV_ARRAY_MT);
    lua_setmetatable(L, -2);
}

static void push_object(lua_State *L, decoder *d, const cJSON *item, int depth)
{
    int size = cJSON_GetArraySize(item), object;
    lua_Integer listed = 0;
    luaL_checkstack(L, 10, "json.decode");
    lua_createtable(L, 0, size);
    object = lua_gettop(L);
    if (size > 0) {
        lua_pushvalue(L, object);
        lua_createtable(L, size, 0);
        for (const cJSON *child = item->child; child != NULL; child = child->next)
            push_member(L, d, child, depth, object, object + 2, &listed);
        lua_rawset(L, UV_KEY_ORDERS);
    }
    lua_pushvalue(L, UV_OBJECT_MT);
    lua_setmetatable(L, object);
}

static void push_value(lua_State *L, decoder *d, const cJSON *item, int depth)
{
    switch (item->type & 0xFF) {
    case cJSON_NULL: lua_pushlightuserdata(L, JSON_NULL); break;
    case cJSON_False: lua_pushboolean(L, 0); break;
    case cJSON_True: lua_pushboolean(L, 1); break;
    case cJSON_Number: push_number(L, d, item); break;
    case cJSON_String:
        if (d->strings_from_text) {
            push_string_from_text(L, d);
            break;
        }
        /* lua_pushstring would first strcmp the text against the strings
         * it last saw at colliding addresses, a cache that cJSON's fresh
         * pointers never hit */
        lua_pushlstring(L, item->valuestring, strlen(item->valuestring));
        break;
    case cJSON_Array:
    case cJSON_Object:
        /* the syntax check already refused deeper text; this guards the C stack */
        if (depth >= JSON_MAX_DEPTH)
            luaL_error(L, "json.decode: nesting deeper than %d", JSON_MAX_DEPTH);
        if ((item->type & 0xFF) == cJSON_Array)
            push_array(L, d, item, depth + 1);
        else
            push_object(L, d, item, depth + 1);
        break;
    default:
        luaL_error(L, "json.decode: unexpected cJSON item type %d", item->type);
    }
}

/* Raises for a text that is not JSON. Otherwise pushes a userdata as
 * large as cJSON's tree will be: cJSON allocates with malloc, which the
 * script's memory limit does not see, and this reservation (never written,
 * so mostly never resident) makes the limit apply to the tree as well. */
static bool check_text(lua_State *L, const char *text, size_t len)
{
    syntax_problem problem;
    size_t tree_bytes = 0;
    check_syntax(text, len, &problem, &tree_bytes);
    if (problem.problem != PROBLEM_NONE) {
        char msg[256];
        format_decode_error(text, &problem, msg, sizeof msg);
        luaL_error(L, "%s", msg);
    }
    if (tree_bytes == SIZE_MAX)
        luaL_error(L, "json.decode: text too large");
    lua_newuserdatauv(L, tree_bytes, 0);
    return problem.needs_copy;
}

/* Runs protected (lua_pcall) with the decoder as a light userdata: any
 * push may raise out of memory, and the caller still holds the tree. */
static int decode_tree(lua_State *L)
{
    decoder *d = lua_touserdata(L, 1);
    push_value(L, d, d->tree, 0);
    return 1;
}

/* Pushes (and returns) a copy of the valid text that cJSON can parse, of
 * the same length so that offsets stay: each \u0000 escape becomes \u0020
 * (the strings are then read from the text itself) and each number token
 * too long for cJSON becomes a 0 padded with spaces (push_number reads it
 * from the text). Only texts holding either pay for this. */
static const char *patched_copy(lua_State *L, const char *text, size_t len)
{
    char *copy = lua_newuserdatauv(L, len + 1, 0);
    memcpy(copy, text, len);
    copy[len] = '\0';
    for (size_t i = 0; i < len;) {
        if (copy[i] == '"') {
            for (i++; i < len && copy[i] != '"'; i++) {
                if (copy[i] != '\\')
                    continue;
                if (copy[i + 1] == 'u' && memcmp(copy + i + 2, "0000", 4) == 0)
                    copy[i + 4] = '2';
                i++;
            }
            i++;
        } else if (copy[i] == '-' || is_digit((unsigned char)copy[i])) {
            size_t start = i;
            while (i < len && is_number_char((unsigned char)copy[i]))
                i++;
            if (i - start > JSON_MAX_NUMBER_LEN) {
                copy[start] = '0';
                memset(copy + start + 1, ' ', i - start - 1);
            }
        } else {
            i++;
        }
    }
    return copy;
}

static int json_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    decoder d = { NULL, text, len, 0, false, 0 };
    const char *parsed = text;
    int status;
    lua_settop(L, 1);
    luaL_checkstack(L, 7, "json.decode");
    if (check_text(L, text, len)) {
        parsed = patched_copy(L, text, len);
        d.strings_from_text = true;
    }
    /* allocated before the tree exists, so that no allocation failure can
     * strand it */
    lua_pushvalue(L, UV_OBJECT_MT);
    lua_pushvalue(L, UV_ARRAY_MT);
    lua_pushvalue(L, UV_KEY_ORDERS);
    lua_pushcclosure(L, decode_tree, 3);
    /* where the syntax check began, past a byte order mark: cJSON would
     * skip one only when a byte follows it */
    d.next_number = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    d.next_string = d.next_number;
    d.tree = mig_cjson_parse(parsed + d.next_number, len - d.next_number, NULL, false);
    if (d.tree == NULL) /* the text is valid: cJSON's malloc failed */
        return luaL_error(L, "json.decode: not enough memory");
    lua_pushlightuserdata(L, &d);
    status = lua_pcall(L, 1, 1, 0);
    cJSON_Delete(d.tree);
    if (status == LUA_ERRRUN) /* raised inside decode_tree */
        return mig_raise_at_caller(L);
    if (status != LUA_OK)
        return lua_error(L);
    return 1;
}

/* ---- encode ------------------------------------------------------------------- */

/* One step of the path from the encoded value to the current one. */
typedef struct path_step {
    const char *key; /* NULL: an array index */
    size_t key_len;
    lua_Integer index;
} path_step;

typedef struct encoder {
    lua_State *L;
    mig_outbuf out;
    int indent;
    /* the tables being encoded (for cycles) and how each was reached */
    const void *open_tables[JSON_MAX_DEPTH];
    path_step path[JSON_MAX_DEPTH];
} encoder;

/* JSON.stringify's layout: with an indent, each member on its own line. */
static void out_newline(encoder *e, int level)
{
    size_t spaces = (size_t)e->indent * (size_t)level;
    if (e->indent == 0)
        return;
    mig_outbuf_char(&e->out, '\n');
    mig_outbuf_fill(&e->out, ' ', spaces);
}

static bool is_identifier(const char *s, size_t len)
{
    if (len == 0 || is_digit((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(is_digit((unsigned char)s[i]) || s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z')))
            return false;
    return true;
}

static void add_quoted_key(luaL_Buffer *b, const char *key, size_t len)
{
    size_t shown = len;
    char hex[8];
    if (shown > 40) {
        shown = 40;
        while (shown > 0 && ((unsigned char)key[shown] & 0xC0) == 0x80)
            shown--; /* keep a UTF-8 sequence whole */
    }
    luaL_addstring(b, "[\"");
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c == '"' || c == '\\') {
            luaL_addchar(b, '\\');
            luaL_addchar(b, (char)c);
        } else if (c < 0x20) {
            snprintf(hex, sizeof hex, "\\u%04x", c);
            luaL_addstring(b, hex);
        } else {
            luaL_addchar(b, (char)c);
        }
    }
    luaL_addstring(b, shown < len ? "...\"]" : "\"]");
}

/* Pushes the path of the value reached by the first nsteps steps, as
 * $.servers[2]["odd key"] (indexes 1-based, as in Lua), and returns it. */
static const char *push_path(encoder *e, int nsteps)
{
    luaL_Buffer b;
    char index[32];
    luaL_buffinit(e->L, &b);
    luaL_addchar(&b, '$');
    for (int i = 0; i < nsteps; i++) {
        const path_step *s = &e->path[i];
        if (s->key == NULL) {
            snprintf(index, sizeof index, "[%lld]", (long long)s->index);
            luaL_addstring(&b, index);
        } else if (is_identifier(s->key, s->key_len)) {
            luaL_addchar(&b, '.');
            luaL_addlstring(&b, s->key, s->key_len);
        } else {
            add_quoted_key(&b, s->key, s->key_len);
        }
    }
    luaL_pushresult(&b);
    return lua_tostring(e->L, -1);
}

static void encode_string(encoder *e, const char *s, size_t len, int nsteps, const char *what)
{
    static const char hexdigits[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    mig_outbuf_char(&e->out, '"');
    for (;;) {
        while (i < len && is_plain_ascii(u[i]))
            i++;
        if (i == len)
            break;
        if (u[i] >= 0x80) {
            size_t n = utf8_sequence_length(u + i, len - i);
            if (n == 0)
                luaL_error(e->L, "json.encode: %s at %s is not valid UTF-8", what,
                           push_path(e, nsteps));
            i += n;
            continue;
        }
        char esc[6] = { '\\', 0, '0', '0', 0, 0 };
        mig_outbuf_add(&e->out, s + run, i - run);
        switch (u[i]) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[4] = hexdigits[u[i] >> 4];
            esc[5] = hexdigits[u[i] & 15];
            break;
        }
        mig_outbuf_add(&e->out, esc, esc[1] == 'u' ? 6 : 2);
        run = ++i;
    }
    mig_outbuf_add(&e->out, s + run, len - run);
    mig_outbuf_char(&e->out, '"');
}

/* format_float's fast path, for the usual value: at most 15 significant
 * digits and 1e-4 <= |v| < 1e15, where %g writes no exponent. It finds the
 * fewest decimals k with which m / 10^k (m an integer below 10^15) is v,
 * which is the text %.15g writes: m / 10^k is within half an ulp of v, far
 * closer than the next 15-digit decimal, and strtod reads it back as v as
 * the division does (both round correctly). a * 10^k is off by less than
 * 0.25 for such m, so rounding it finds m. Returns 0 where it does not
 * apply; printf and strtod cost ten times as much. */
static size_t format_decimal(double v, char out[40])
{
    static const double pow10[] = { 1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,
                                    1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13,
                                    1e14, 1e15, 1e16, 1e17, 1e18, 1e19 };
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e15))
        return 0;
    for (size_t k = 0; k < sizeof pow10 / sizeof pow10[0]; k++) {
        double scaled = a * pow10[k];
        if (scaled >= 1e15)
            return 0;
        double m = floor(scaled + 0.5);
        if (m / pow10[k] != a)
            continue;
        /* m / 10^k, a point, and m's last k digits (one 0 when k is 0) */
        unsigned long long um = (unsigned long long)m, p = (unsigned long long)pow10[k];
        char *at = out;
        if (v < 0)
            *at++ = '-';
        at = mig_put_uint(at, um / p, 1);
        *at++ = '.';
        at = mig_put_uint(at, um % p, k > 0 ? (int)k : 1);
        return (size_t)(at - out);
    }
    return 0;
}

/* Writes v as the shortest of %.15g..%.17g that reads back exactly, with
 * "." whatever the locale's decimal point, no leading zeros in the exponent
 * (1e-7, as JavaScript writes it) and ".0" when it would otherwise read
 * back as an integer. Returns the length. */
static size_t format_float(double v, char out[40])
{
    char raw[40];
    size_t n = format_decimal(v, out), i = 0;
    if (n > 0)
        return n;
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(raw, sizeof raw, "%.*g", precision, v);
        if (strtod(raw, NULL) == v)
            break;
    }
    while (raw[i] != '\0') {
        if (raw[i] == 'e') {
            out[n++] = raw[i++];
            if (raw[i] == '+' || raw[i] == '-')
                out[n++] = raw[i++];
            while (raw[i] == '0' && raw[i + 1] != '\0')
                i++;
        } else if (is_number_char((unsigned char)raw[i])) {
            out[n++] = raw[i++];
        } else {
            out[n++] = '.'; /* the locale's decimal point, maybe several bytes */
            while (raw[i] != '\0' && !is_number_char((unsigned char)raw[i]))
                i++;
        }
    }
    if (memchr(out, '.', n) == NULL && memchr(out, 'e', n) == NULL) {
        out[n++] = '.';
        out[n++] = '0';
    }
    return n;
}

static void encode_number(encoder *e, int idx, int nsteps)
{
    char text[40];
    if (lua_isinteger(e->L, idx)) {
        lua_Integer i = lua_tointeger(e->L, idx);
        if (i > JSON_MAX_SAFE_INTEGER || i < -JSON_MAX_SAFE_INTEGER)
            luaL_error(e->L,
                       "json.encode: integer %I at %s is outside ±2^53 and cannot be "
                       "represented exactly",
                       (LUAI_UACINT)i, push_path(e, nsteps));
        char *at = text;
        if (i < 0)
            *at++ = '-';
        at = mig_put_uint(at, i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i, 1);
        mig_outbuf_add(&e->out, text, (size_t)(at - text));
        return;
    }
    double v = lua_tonumber(e->L, idx);
    if (!isfinite(v))
        luaL_error(e->L, "json.encode: %s at %s cannot be encoded (JSON has no NaN or infinity)",
                   isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf", push_path(e, nsteps));
    size_t n = format_float(v, text);
    mig_outbuf_add(&e->out, text, n);
}

static void encode_value(encoder *e, int idx, int nsteps);

/* What the keys of a table say about it. */
typedef struct key_census {
    lua_Integer count, strings, integers, max_index;
    bool bad_index;        /* an integer key < 1 */
    const char *odd_type;  /* the type of a key neither string nor integer */
    lua_Integer bad_index_value;
} key_census;

static void count_keys(lua_State *L, int table, key_census *c)
{
    memset(c, 0, sizeof *c);
    lua_pushnil(L);
    while (lua_next(L, table)) {
        lua_pop(L, 1);
        c->count++;
        if (lua_type(L, -1) == LUA_TSTRING) {
            c->strings++;
        } else if (lua_isinteger(L, -1)) {
            lua_Integer i = lua_tointeger(L, -1);
            c->integers++;
            if (i < 1 && !c->bad_index) {
                c->bad_index = true;
                c->bad_index_value = i;
            }
            if (i > c->max_index)
                c->max_index = i;
        } else if (c->odd_type == NULL) {
            c->odd_type = lua_type(L, -1) == LUA_TNUMBER ? "float" : luaL_typename(L, -1);
        }
    }
}

static lua_Integer first_hole(lua_State *L, int table)
{
    lua_Integer i = 1;
    while (lua_rawgeti(L, table, i) != LUA_TNIL) {
        lua_pop(L, 1);
        i++;
    }
    lua_pop(L, 1);
    return i;
}

/* Checks an array candidate's keys are exactly 1..n; returns n. */
static lua_Integer check_array_keys(encoder *e, int table, int nsteps, const key_census *c)
{
    lua_State *L = e->L;
    if (c->bad_index)
        luaL_error(L, "json.encode: table at %s has the index %I (arrays must be 1..n)",
                   push_path(e, nsteps), (LUAI_UACINT)c->bad_index_value);
    if (c->count != c->max_index)
        luaL_error(L, "json.encode: table at %s has a hole at index %I (arrays must be 1..n)",
                   push_path(e, nsteps), (LUAI_UACINT)first_hole(L, table));
    return c->max_index;
}

/* Decides how the table is written: returns -1 for an object (*nkeys gets
 * its number of keys), else the length of the array. Raises for tables that
 * are neither. */
static lua_Integer table_shape(encoder *e, int table, int nsteps, lua_Integer *nkeys)
{
    lua_State *L = e->L;
    key_census c;
    count_keys(L, table, &c);
    *nkeys = c.count;
    if (metatable_is(L, table, UV_ARRAY_MT) == 1) {
        if (c.strings > 0 || c.odd_type != NULL)
            luaL_error(L, "json.encode: table at %s is a JSON array but has keys other than 1..n",
                       push_path(e, nsteps));
        return check_array_keys(e, table, nsteps, &c);
    }
    if (metatable_is(L, table, UV_OBJECT_MT) == 1) {
        if (c.strings != c.count)
            luaL_error(L, "json.encode: table at %s is a JSON object but has a key that is not a "
                       "string", push_path(e, nsteps));
        return -1;
    }
    if (c.odd_type != NULL)
        luaL_error(L, "json.encode: table at %s has a %s key (JSON keys must be strings)",
                   push_path(e, nsteps), c.odd_type);
    if (c.strings > 0 && c.integers > 0)
        luaL_error(L, "json.encode: table at %s mixes integer and string keys",
                   push_path(e, nsteps));
    if (c.integers > 0)
        return check_array_keys(e, table, nsteps, &c);
    return -1;
}

static void encode_array(encoder *e, int table, int nsteps, lua_Integer n)
{
    if (n == 0) {
        mig_outbuf_add(&e->out, "[]", 2);
        return;
    }
    mig_outbuf_char(&e->out, '[');
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1)
            mig_outbuf_char(&e->out, ',');
        out_newline(e, nsteps + 1);
        e->path[nsteps] = (path_step){ NULL, 0, i };
        lua_rawgeti(e->L, table, i);
        encode_value(e, lua_gettop(e->L), nsteps + 1);
        lua_pop(e->L, 1);
    }
    out_newline(e, nsteps);
    mig_outbuf_char(&e->out, ']');
}

/* Writes the member whose key is at -2 and value at -1. */
static void encode_member(encoder *e, int nsteps, bool first)
{
    size_t len;
    const char *key = lua_tolstring(e->L, -2, &len);
    if (!first)
        mig_outbuf_char(&e->out, ',');
    out_newline(e, nsteps + 1);
    encode_string(e, key, len, nsteps, "a key of the object");
    mig_outbuf_add(&e->out, ": ", e->indent > 0 ? 2 : 1);
    e->path[nsteps] = (path_step){ key, len, 0 };
    encode_value(e, lua_gettop(e->L), nsteps + 1);
}

/* Writes the members the key order lists (the order list is at `order`),
 * in that order; returns how many. With a reverse map, a listed key counts
 * only at the slot the map names; a key counts only while the object still
 * has it. */
static lua_Integer encode_listed_members(encoder *e, int table, int nsteps, int order)
{
    lua_State *L = e->L;
    lua_Integer written = 0, n = (lua_Integer)lua_rawlen(L, order);
    bool mapped = key_order_is_mapped(L, order);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, order, i);
        bool current = true;
        if (mapped) {
            lua_pushvalue(L, -1);
            current = lua_rawget(L, order) == LUA_TNUMBER && lua_tointeger(L, -1) == i;
            lua_pop(L, 1);
        }
        if (current) {
            lua_pushvalue(L, -1);
            if (lua_rawget(L, table) != LUA_TNIL) {
                encode_member(e, nsteps, written == 0);
                written++;
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    return written;
}

/* Writes the object at `table`, which has `nkeys` keys, all strings. */
static void encode_object(encoder *e, int table, int nsteps, lua_Integer nkeys)
{
    lua_State *L = e->L;
    lua_Integer written = 0;
    int order = 0, top = lua_gettop(L);
    lua_pushvalue(L, table);
    if (lua_rawget(L, UV_KEY_ORDERS) == LUA_TTABLE)
        order = lua_gettop(L);
    mig_outbuf_char(&e->out, '{');
    if (order != 0)
        written = encode_listed_members(e, table, nsteps, order);
    /* keys the order does not know (unmarked tables, rawset) go after the
     * listed ones, sorted, so that the output is deterministic */
    if (written < nkeys) {
        size_t nsorted;
        if (order != 0)
            map_key_order(L, order); /* what push_sorted_keys asks */
        key_ref *keys = push_sorted_keys(L, table, order, &nsorted);
        for (size_t i = 0; i < nsorted; i++) {
            lua_pushlstring(L, keys[i].text, keys[i].len);
            lua_pushvalue(L, -1);
            lua_rawget(L, table);
            encode_member(e, nsteps, written == 0);
            written++;
            lua_pop(L, 2);
        }
    }
    lua_settop(L, top);
    if (written > 0)
        out_newline(e, nsteps);
    mig_outbuf_char(&e->out, '}');
}

static void encode_table(encoder *e, int table, int nsteps)
{
    lua_State *L = e->L;
    const void *self = lua_topointer(L, table);
    lua_Integer n, nkeys;
    for (int i = 0; i < nsteps; i++)
        if (e->open_tables[i] == self)
            luaL_error(L, "json.encode: cycle at %s", push_path(e, nsteps));
    if (nsteps >= JSON_MAX_DEPTH) {
        luaL_error(L, "json.encode: nesting deeper than %d at %s", JSON_MAX_DEPTH,
                   push_path(e, nsteps));
        return;
    }
    luaL_checkstack(L, 10, "json.encode");
    e->open_tables[nsteps] = self;
    n = table_shape(e, table, nsteps, &nkeys);
    if (n < 0)
        encode_object(e, table, nsteps, nkeys);
    else
        encode_array(e, table, nsteps, n);
}

static void encode_value(encoder *e, int idx, int nsteps)
{
    lua_State *L = e->L;
    size_t len;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            mig_outbuf_add(&e->out, "true", 4);
        else
            mig_outbuf_add(&e->out, "false", 5);
        return;
    case LUA_TNUMBER:
        encode_number(e, idx, nsteps);
        return;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        encode_string(e, s, len, nsteps, "string");
        return;
    case LUA_TTABLE:
        encode_table(e, idx, nsteps);
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == JSON_NULL) {
            mig_outbuf_add(&e->out, "null", 4);
            return;
        }
        break;
    case LUA_TNIL:
        luaL_error(L, "json.encode: cannot encode nil at %s (json.null stands for null)",
                   push_path(e, nsteps));
        return;
    default:
        break;
    }
    luaL_error(L, "json.encode: cannot encode a %s at %s", luaL_typename(L, idx),
               push_path(e, nsteps));
}

/* The indent option: an integer 0..JSON_MAX_INDENT; 0 when absent. */
static int check_indent(lua_State *L, int arg)
{
    lua_Integer indent = 0;
    int exact = 0;
    if (lua_isnoneornil(L, arg))
        return 0;
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "indent") != 0)
            luaL_argerror(L, arg, "unknown option (only 'indent' is known)");
    }
    lua_pushliteral(L, "indent");
    if (lua_rawget(L, arg) == LUA_TNUMBER)
        indent = lua_tointegerx(L, -1, &exact);
    else
        exact = lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!exact || indent < 0 || indent > JSON_MAX_INDENT)
        luaL_argerror(L, arg, "indent must be an integer from 0 to 16");
    return (int)indent;
}

static int json_encode(lua_State *L)
{
    encoder e;
    luaL_checkany(L, 1);
    e.indent = check_indent(L, 2);
    lua_settop(L, 1);
    e.L = L;
    mig_outbuf_init(&e.out, L, "json.encode");
    encode_value(&e, 1, 0);
    mig_outbuf_push(&e.out);
    return 1;
}

/* ---- null, array, object ------------------------------------------------------- */

/* The table argument (a new one when absent), refused when it already has
 * a metatable other than `mt`; returns whether it already had `mt`. */
static bool check_markable(lua_State *L, int mt)
{
    int marked;
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    marked = metatable_is(L, 1, mt);
    if (marked < 0)
        luaL_argerror(L, 1, "table already has another metatable");
    return marked == 1;
}

static int json_array(lua_State *L)
{
    if (!check_markable(L, UV_ARRAY_MT)) {
        lua_pushvalue(L, UV_ARRAY_MT);
        lua_setmetatable(L, 1);
    }
    return 1;
}

/* Marks the table as an object; its present keys take their sorted order,
 * keys added later go after them. */
static int json_object(lua_State *L)
{
    size_t nkeys;
    key_ref *keys;
    if (check_markable(L, UV_OBJECT_MT))
        return 1;
    keys = push_sorted_keys(L, 1, 0, &nkeys);
    if (nkeys > 0) {
        push_key_order(L, 1);
        int order = lua_gettop(L);
        for (size_t i = 0; i < nkeys; i++) {
            lua_pushlstring(L, keys[i].text, keys[i].len);
            lua_pushvalue(L, order);
            append_key(L, -2);
            lua_pop(L, 2);
        }
    }
    lua_settop(L, 1);
    lua_pushvalue(L, UV_OBJECT_MT);
    lua_setmetatable(L, 1);
    return 1;
}

/* json.rename(object, old, new): renames a key where it stands, so a
 * rewritten config shows one changed line instead of a key moved to the end. */
static int json_rename(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkstring(L, 2);
    luaL_checkstring(L, 3);
    lua_settop(L, 3);
    if (lua_rawequal(L, 2, 3))
        return 0;
    lua_pushvalue(L, 3);
    if (lua_rawget(L, 1) != LUA_TNIL)
        return luaL_error(L, "json.rename: key \"%s\" exists already", lua_tostring(L, 3));
    lua_pushvalue(L, 2);
    if (lua_rawget(L, 1) == LUA_TNIL)
        return luaL_error(L, "json.rename: no key \"%s\"", lua_tostring(L, 2));
    int value = lua_gettop(L);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, UV_KEY_ORDERS) == LUA_TTABLE) {
        int order = lua_gettop(L);
        map_key_order(L, order);
        lua_pushvalue(L, 2);
        if (lua_rawget(L, order) == LUA_TNUMBER) { /* the old key's slot */
            lua_Integer slot = lua_tointeger(L, -1);
            lua_pushvalue(L, 3);
            lua_rawseti(L, order, slot);
            lua_pushvalue(L, 3);
            lua_pushinteger(L, slot);
            lua_rawset(L, order);
            lua_pushvalue(L, 2);
            lua_pushnil(L);
            lua_rawset(L, order);
        }
    }
    lua_pushvalue(L, 3);
    lua_pushvalue(L, value);
    lua_rawset(L, 1);
    lua_pushvalue(L, 2);
    lua_pushnil(L);
    lua_rawset(L, 1);
    return 0;
}

/* ---- internals for the document layer (lua/doc.lua) ------------------------ */

/* internals.keys(t): the string keys of t in the order json.encode writes
 * them (the key order first, then the keys it does not list, sorted). */
static int internal_keys(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_newtable(L); /* 2: the result */
    lua_Integer n = 0;
    int order = 0;
    lua_pushvalue(L, 1);
    if (lua_rawget(L, UV_KEY_ORDERS) == LUA_TTABLE) {
        order = 3;
        map_key_order(L, order);
        lua_Integer len = (lua_Integer)lua_rawlen(L, order);
        for (lua_Integer i = 1; i <= len; i++) {
            lua_rawgeti(L, order, i);
            lua_pushvalue(L, -1);
            bool current = lua_rawget(L, order) == LUA_TNUMBER && lua_tointeger(L, -1) == i;
            lua_pop(L, 1);
            if (current) {
                lua_pushvalue(L, -1);
                current = lua_rawget(L, 1) != LUA_TNIL;
                lua_pop(L, 1);
            }
            if (current)
                lua_rawseti(L, 2, ++n);
            else
                lua_pop(L, 1);
        }
    }
    size_t nsorted;
    key_ref *keys = push_sorted_keys(L, 1, order, &nsorted);
    (void)keys;
    for (size_t i = 0; i < nsorted; i++) {
        lua_pushlstring(L, keys[i].text, keys[i].len);
        lua_rawseti(L, 2, ++n);
    }
    lua_settop(L, 2);
    return 1;
}

/* internals.kind(v): "object" or "array" for tables json marked (decoded
 * ones included), else nil. */
static int internal_kind(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TTABLE)
        return 0;
    if (metatable_is(L, 1, UV_OBJECT_MT) == 1)
        lua_pushliteral(L, "object");
    else if (metatable_is(L, 1, UV_ARRAY_MT) == 1)
        lua_pushliteral(L, "array");
    else
        lua_pushnil(L);
    return 1;
}

static size_t skip_string(const char *t, size_t len, size_t i)
{
    for (i++; i < len && t[i] != '"'; i++)
        if (t[i] == '\\')
            i++;
    return i + 1;
}

/* internals.skip(text, pos): the 1-based position just past the JSON value
 * that starts at pos, in text already known to be valid; the editor walks
 * only the containers on its path and skips every other value here. */
static int internal_skip(lua_State *L)
{
    size_t len;
    const char *t = luaL_checklstring(L, 1, &len);
    lua_Integer pos = luaL_checkinteger(L, 2);
    if (pos < 1 || (size_t)pos > len)
        return luaL_error(L, "json skip: position %d out of range", (int)pos);
    size_t i = (size_t)pos - 1, depth = 0;
    do {
        unsigned char c = (unsigned char)t[i];
        if (c == '"') {
            i = skip_string(t, len, i);
        } else if (c == '{' || c == '[') {
            depth++;
            i++;
        } else if (c == '}' || c == ']') {
            depth--;
            i++;
        } else if (depth == 0) {
            /* a number or a literal */
            while (i < len && (is_number_char((unsigned char)t[i]) || (t[i] >= 'a' && t[i] <= 'z')))
                i++;
        } else {
            i++;
        }
    } while (depth > 0 && i < len);
    lua_pushinteger(L, (lua_Integer)i + 1);
    return 1;
}

/* Pushes the table's keys in json's order (internal_keys' result). */
static void push_ordered_keys(lua_State *L, int t)
{
    lua_pushvalue(L, lua_upvalueindex(4)); /* internal_keys, with json's upvalues */
    lua_pushvalue(L, t);
    lua_call(L, 1, 1);
}

/* Advances *i over the order list at `order` to its next slot that counts
 * (the map names it, the table still has the key) and pushes that key;
 * false at the end. */
static bool next_listed(lua_State *L, int table, int order, lua_Integer *i)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, order);
    bool mapped = key_order_is_mapped(L, order);
    while (++*i <= n) {
        lua_rawgeti(L, order, *i);
        bool current = true;
        if (mapped) {
            lua_pushvalue(L, -1);
            current = lua_rawget(L, order) == LUA_TNUMBER && lua_tointeger(L, -1) == *i;
            lua_pop(L, 1);
        }
        if (current) {
            lua_pushvalue(L, -1);
            current = lua_rawget(L, table) != LUA_TNIL;
            lua_pop(L, 1);
        }
        if (current)
            return true;
        lua_pop(L, 1);
    }
    return false;
}

/* Whether the two objects list the same keys in the same order. */
static bool same_order(lua_State *L, int want, int got, lua_Integer nkeys)
{
    int top = lua_gettop(L);
    lua_pushvalue(L, want);
    int wo = lua_rawget(L, UV_KEY_ORDERS) == LUA_TTABLE ? lua_gettop(L) : 0;
    lua_pushvalue(L, got);
    int go = lua_rawget(L, UV_KEY_ORDERS) == LUA_TTABLE ? lua_gettop(L) : 0;
    lua_Integer wi = 0, gi = 0, listed = 0;
    bool same = wo != 0 && go != 0;
    while (same) {
        bool a = next_listed(L, want, wo, &wi);
        bool b = next_listed(L, got, go, &gi);
        if (a != b)
            same = false;
        else if (!a)
            break;
        else
            same = lua_rawequal(L, -1, -2), listed++;
        lua_settop(L, go);
    }
    lua_settop(L, top);
    if (same && listed == nkeys)
        return true;
    /* keys the orders do not list (or no order at all): the full lists */
    push_ordered_keys(L, want);
    push_ordered_keys(L, got);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -2);
    same = n == (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; same && i <= n; i++) {
        lua_rawgeti(L, -2, i);
        lua_rawgeti(L, -2, i);
        same = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    lua_settop(L, top);
    return same;
}

static int table_kind(lua_State *L, int t)
{
    if (metatable_is(L, t, UV_OBJECT_MT) == 1)
        return 1;
    if (metatable_is(L, t, UV_ARRAY_MT) == 1)
        return 2;
    return 0;
}

static bool is_sequence_table(lua_State *L, int t, int kind)
{
    if (kind != 0)
        return kind == 2;
    bool seq = lua_rawgeti(L, t, 1) != LUA_TNIL;
    lua_pop(L, 1);
    return seq;
}

/* lua/doc.lua's check after an edit, in C for speed (it visits the whole
 * document): whether `want` (the expected value, made of decoded tables
 * and the script's values) is what decoding gave (`got`). Numbers must
 * agree in subtype too; key order counts where `want` has one (objects); a
 * plain table has none, so only its contents count, and an empty plain
 * table stands for either empty kind. */
static bool same_value(lua_State *L, int want, int got, int depth)
{
    int wt = lua_type(L, want), gt = lua_type(L, got);
    if (wt != LUA_TTABLE || gt != LUA_TTABLE) {
        if (wt == LUA_TNUMBER && gt == LUA_TNUMBER)
            return lua_isinteger(L, want) == lua_isinteger(L, got) && lua_rawequal(L, want, got);
        return lua_rawequal(L, want, got);
    }
    if (depth > JSON_MAX_DEPTH + 8)
        return false;
    luaL_checkstack(L, 12, "doc");
    int top = lua_gettop(L);
    int wk = table_kind(L, want), gk = table_kind(L, got);
    if (wk == 0) {
        lua_pushnil(L);
        if (lua_next(L, want) == 0) {
            lua_pushnil(L);
            bool empty = lua_next(L, got) == 0;
            lua_settop(L, top);
            return empty;
        }
        lua_settop(L, top);
    }
    bool wseq = is_sequence_table(L, want, wk), gseq = is_sequence_table(L, got, gk);
    if (wseq != gseq || (wseq && wk == 1))
        return false;
    lua_Integer wn = 0, gn = 0;
    bool same = true;
    /* every key of want: got has the same value there */
    lua_pushnil(L);
    while (same && lua_next(L, want) != 0) {
        int key = lua_gettop(L) - 1;
        if (wseq ? !lua_isinteger(L, key) : lua_type(L, key) != LUA_TSTRING) {
            same = false;
            break;
        }
        wn++;
        lua_pushvalue(L, key);
        lua_rawget(L, got);
        same = same_value(L, key + 1, key + 2, depth + 1);
        lua_settop(L, key);
    }
    lua_settop(L, top);
    if (!same)
        return false;
    lua_pushnil(L);
    while (lua_next(L, got) != 0) {
        gn++;
        lua_pop(L, 1);
    }
    if (wn != gn)
        return false;
    if (wseq)
        return (lua_Integer)lua_rawlen(L, want) == wn;
    return wk != 1 || same_order(L, want, got, wn);
}

static int internal_same(lua_State *L)
{
    lua_settop(L, 2);
    lua_pushboolean(L, same_value(L, 1, 2, 0));
    return 1;
}

static const luaL_Reg json_internal_functions[] = {
    { "keys", internal_keys },
    { "kind", internal_kind },
    { "skip", internal_skip },
    { "same", internal_same },
    { "decode", json_decode },
    { "encode", json_encode },
    { "object", json_object },
    { "array", json_array },
    { "rename", json_rename },
    { NULL, NULL },
};

static const char KEY_JSON_INTERNALS = 0;

/* The registry's internals closure: builds the table once. */
static int json_internals(lua_State *L)
{
    lua_createtable(L, 0, 12);
    lua_pushvalue(L, UV_OBJECT_MT);
    lua_pushvalue(L, UV_ARRAY_MT);
    lua_pushvalue(L, UV_KEY_ORDERS);
    lua_pushvalue(L, UV_OBJECT_MT);
    lua_pushvalue(L, UV_ARRAY_MT);
    lua_pushvalue(L, UV_KEY_ORDERS);
    lua_pushcclosure(L, internal_keys, 3); /* same's fallback calls it */
    luaL_setfuncs(L, json_internal_functions, 4);
    lua_pushlightuserdata(L, JSON_NULL);
    lua_setfield(L, -2, "null");
    return 1;
}

void mig_json_push_internals(lua_State *L)
{
    luaL_checkstack(L, 8, "json");
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &KEY_JSON_INTERNALS) == LUA_TTABLE)
        return;
    if (lua_type(L, -1) != LUA_TFUNCTION)
        luaL_error(L, "json internals: the json module is not open");
    lua_call(L, 0, 1);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &KEY_JSON_INTERNALS);
}

/* json.edit(text): a document over the text (lua/json_edit.lua). */
static int json_edit(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_settop(L, 1);
    mig_push_doc_chunk(L, "lua/json_edit.lua"); /* the backend */
    mig_push_doc(L);
    lua_getfield(L, -1, "new");
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

static const luaL_Reg json_functions[] = {
    { "decode", json_decode },
    { "encode", json_encode },
    { "array", json_array },
    { "object", json_object },
    { "rename", json_rename },
    { "edit", json_edit },
    { "null", NULL },
    { NULL, NULL },
};

void *mig_json_null(void)
{
    return JSON_NULL;
}

void mig_open_json(lua_State *L)
{
    luaL_checkstack(L, 8, "json");
    lua_createtable(L, 0, 5); /* the module */
    lua_createtable(L, 0, 2); /* object metatable */
    lua_pushliteral(L, "json object");
    lua_setfield(L, -2, "__metatable"); /* scripts cannot reach it (to add a __gc, say) */
    lua_createtable(L, 0, 1); /* array metatable */
    lua_pushliteral(L, "json array");
    lua_setfield(L, -2, "__metatable");
    lua_createtable(L, 0, 0); /* key orders, weak: an object takes its order along */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, object_newindex, 3);
    lua_setfield(L, -4, "__newindex");
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, json_internals, 3);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &KEY_JSON_INTERNALS);
    luaL_setfuncs(L, json_functions, 3);
    lua_pushlightuserdata(L, JSON_NULL);
    lua_setfield(L, -2, "null");
}
