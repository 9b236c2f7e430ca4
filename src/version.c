/* version.c - SemVer 2.0.0 (https://semver.org): parsing, precedence and
 * ranges, for the C API and for the scripts' `semver` module. */
#include "internal.h"

#include <lauxlib.h>
#include <string.h>

/* Where in a version a parse failed. */
enum part { PART_MAJOR, PART_MINOR, PART_PATCH, PART_PRERELEASE, PART_BUILD, PART_COUNT };

/* Every printable ASCII character as a string literal: the reasons below
 * name the offending character yet stay static strings, because
 * mig_version_parse() has no buffer to format one into. */
#define PRINTABLE_ASCII(X) \
    X(" ") X("!") X("\"") X("#") X("$") X("%") X("&") X("'") X("(") X(")") X("*") X("+") \
    X(",") X("-") X(".") X("/") X("0") X("1") X("2") X("3") X("4") X("5") X("6") X("7") \
    X("8") X("9") X(":") X(";") X("<") X("=") X(">") X("?") X("@") X("A") X("B") X("C") \
    X("D") X("E") X("F") X("G") X("H") X("I") X("J") X("K") X("L") X("M") X("N") X("O") \
    X("P") X("Q") X("R") X("S") X("T") X("U") X("V") X("W") X("X") X("Y") X("Z") X("[") \
    X("\\") X("]") X("^") X("_") X("`") X("a") X("b") X("c") X("d") X("e") X("f") X("g") \
    X("h") X("i") X("j") X("k") X("l") X("m") X("n") X("o") X("p") X("q") X("r") X("s") \
    X("t") X("u") X("v") X("w") X("x") X("y") X("z") X("{") X("|") X("}") X("~")
#define PRINTABLE_FIRST 0x20
#define PRINTABLE_COUNT 95

#define IN_MAJOR(c) "invalid character '" c "' in major",
#define IN_MINOR(c) "invalid character '" c "' in minor",
#define IN_PATCH(c) "invalid character '" c "' in patch",
#define IN_PRERELEASE(c) "invalid character '" c "' in prerelease",
#define IN_BUILD(c) "invalid character '" c "' in build metadata",

static const char *const bad_char_reasons[PART_COUNT][PRINTABLE_COUNT] = {
    [PART_MAJOR] = {PRINTABLE_ASCII(IN_MAJOR)},
    [PART_MINOR] = {PRINTABLE_ASCII(IN_MINOR)},
    [PART_PATCH] = {PRINTABLE_ASCII(IN_PATCH)},
    [PART_PRERELEASE] = {PRINTABLE_ASCII(IN_PRERELEASE)},
    [PART_BUILD] = {PRINTABLE_ASCII(IN_BUILD)},
};

static const char *const bad_byte_reasons[PART_COUNT] = {
    [PART_MAJOR] = "control or non-ASCII byte in major",
    [PART_MINOR] = "control or non-ASCII byte in minor",
    [PART_PATCH] = "control or non-ASCII byte in patch",
    [PART_PRERELEASE] = "control or non-ASCII byte in prerelease",
    [PART_BUILD] = "control or non-ASCII byte in build metadata",
};

struct number_reasons {
    const char *missing, *empty, *leading_zero, *too_large;
};
#define NUMBER_REASONS(name) \
    {"missing " name, "empty " name, "leading zero in " name, \
     name " is larger than 18446744073709551615"}
static const struct number_reasons number_reasons[] = {
    [PART_MAJOR] = NUMBER_REASONS("major"),
    [PART_MINOR] = NUMBER_REASONS("minor"),
    [PART_PATCH] = NUMBER_REASONS("patch"),
};

/* ---- Parsing ------------------------------------------------------------- */

/* Not isdigit()/isalnum(): those follow the locale, SemVer is ASCII. */
static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_identifier_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

static const char *bad_char(enum part part, char c)
{
    unsigned char byte = (unsigned char)c;
    if (byte < PRINTABLE_FIRST || byte >= PRINTABLE_FIRST + PRINTABLE_COUNT)
        return bad_byte_reasons[part];
    return bad_char_reasons[part][byte - PRINTABLE_FIRST];
}

/* Reads major, minor or patch at *p into *out. Returns NULL, or why not. */
static const char *parse_number(const char **p, const char *end, enum part part, uint64_t *out)
{
    const struct number_reasons *why = &number_reasons[part];
    const char *start = *p, *stop = *p;
    while (stop < end && is_digit(*stop))
        stop++;
    if (stop == start) {
        if (start == end || *start == '.' || *start == '-' || *start == '+')
            return why->empty;
        return bad_char(part, *start);
    }
    if (*start == '0' && stop - start > 1)
        return why->leading_zero;

    uint64_t n = 0;
    for (const char *d = start; d < stop; d++) {
        unsigned digit = (unsigned)(*d - '0');
        if (n > (UINT64_MAX - digit) / 10)
            return why->too_large;
        n = n * 10 + digit;
    }
    *out = n;
    *p = stop;
    return NULL;
}

/* Consumes the '.' between `done` and `next`. Returns NULL, or why not. */
static const char *expect_dot(const char **p, const char *end, enum part done, enum part next)
{
    if (*p < end && **p == '.') {
        (*p)++;
        return NULL;
    }
    if (*p == end || **p == '-' || **p == '+')
        return number_reasons[next].missing;
    return bad_char(done, **p);
}

static const char *parse_core(const char **p, const char *end, migrate_version *v)
{
    const char *why = parse_number(p, end, PART_MAJOR, &v->major);
    if (why == NULL)
        why = expect_dot(p, end, PART_MAJOR, PART_MINOR);
    if (why == NULL)
        why = parse_number(p, end, PART_MINOR, &v->minor);
    if (why == NULL)
        why = expect_dot(p, end, PART_MINOR, PART_PATCH);
    if (why == NULL)
        why = parse_number(p, end, PART_PATCH, &v->patch);
    return why;
}

/* Reads dot-separated identifiers up to the end or, in a prerelease, up to
 * the '+' of build metadata. Returns NULL, or why not. */
static const char *parse_identifiers(const char **p, const char *end, enum part part)
{
    bool in_prerelease = part == PART_PRERELEASE;
    const char *s = *p;
    for (;;) {
        const char *start = s;
        bool numeric = true;
        for (; s < end && is_identifier_char(*s); s++)
            numeric = numeric && is_digit(*s);
        bool at_stop = s == end || (in_prerelease && *s == '+');
        if (!at_stop && *s != '.')
            return bad_char(part, *s);
        if (s == start)
            return in_prerelease ? "empty prerelease identifier" : "empty build metadata identifier";
        /* Build metadata may keep its leading zeros: it has no precedence. */
        if (in_prerelease && numeric && *start == '0' && s - start > 1)
            return "leading zero in numeric prerelease identifier";
        if (at_stop) {
            *p = s;
            return NULL;
        }
        s++;
    }
}

static const char *parse_suffixes(const char **p, const char *end, migrate_version *v)
{
    const char *why = NULL;
    if (*p < end && **p != '-' && **p != '+')
        return **p == '.' ? "more than three numeric fields" : bad_char(PART_PATCH, **p);
    if (*p < end && **p == '-') {
        v->prerelease = ++*p;
        why = parse_identifiers(p, end, PART_PRERELEASE);
        v->prerelease_len = (size_t)(*p - v->prerelease);
    }
    if (why == NULL && *p < end) { /* at the '+' */
        v->build = ++*p;
        why = parse_identifiers(p, end, PART_BUILD);
        v->build_len = (size_t)(*p - v->build);
    }
    return why;
}

static const char *parse_version(const char *p, const char *end, migrate_version *v)
{
    if (p == end)
        return "empty";
    if (*p == 'v') /* the directory-name form, "v1.2.3"; only one, lowercase */
        p++;
    const char *why = parse_core(&p, end, v);
    return why != NULL ? why : parse_suffixes(&p, end, v);
}

int mig_version_parse(const char *text, size_t len, migrate_version *out, const char **why)
{
    migrate_version v = {0};
    const char *reason = "no version given";
    if (text != NULL && out != NULL)
        reason = parse_version(text, text + len, &v);
    if (reason != NULL) {
        v = (migrate_version){0};
        if (why != NULL)
            *why = reason;
    }
    if (out != NULL)
        *out = v;
    return reason == NULL ? MIGRATE_OK : MIGRATE_EINVAL;
}

int migrate_version_parse(const char *text, migrate_version *out)
{
    if (text == NULL)
        return mig_version_parse(NULL, 0, out, NULL);
    return mig_version_parse(text, strlen(text), out, NULL);
}

/* ---- Precedence (semver.org §11) ------------------------------------------ */

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

static int compare_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static bool all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_digit(s[i]))
            return false;
    return true;
}

static int compare_identifier(const char *a, size_t a_len, const char *b, size_t b_len)
{
    bool a_numeric = all_digits(a, a_len), b_numeric = all_digits(b, b_len);
    if (a_numeric != b_numeric)
        return a_numeric ? -1 : 1;
    /* Without leading zeros a longer number is a larger one, which also
     * orders numbers too large for any integer type. */
    if (a_numeric && a_len != b_len)
        return compare_u64(a_len, b_len);
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    return c != 0 ? sign(c) : compare_u64(a_len, b_len);
}

static size_t identifier_len(const char *s, const char *end)
{
    const char *dot = memchr(s, '.', (size_t)(end - s));
    return (size_t)((dot != NULL ? dot : end) - s);
}

static int compare_prerelease(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (a_len == 0 || b_len == 0) /* a release outranks its prereleases */
        return (a_len == 0) - (b_len == 0);
    const char *a_end = a + a_len, *b_end = b + b_len;
    for (;;) {
        size_t a_id = identifier_len(a, a_end), b_id = identifier_len(b, b_end);
        int c = compare_identifier(a, a_id, b, b_id);
        if (c != 0)
            return c;
        a += a_id;
        b += b_id;
        if (a == a_end || b == b_end) /* the longer list wins */
            return (a != a_end) - (b != b_end);
        a++; /* past the dots */
        b++;
    }
}

static size_t prerelease_len(const migrate_version *v)
{
    return v->prerelease != NULL ? v->prerelease_len : 0;
}

int migrate_version_compare(const migrate_version *a, const migrate_version *b)
{
    /* No error code to return: a NULL sorts first rather than crash the host. */
    if (a == NULL || b == NULL)
        return (a != NULL) - (b != NULL);
    int c = compare_u64(a->major, b->major);
    if (c == 0)
        c = compare_u64(a->minor, b->minor);
    if (c == 0)
        c = compare_u64(a->patch, b->patch);
    if (c == 0)
        c = compare_prerelease(a->prerelease, prerelease_len(a), b->prerelease, prerelease_len(b));
    return c;
}

int migrate_version_cmp(const char *a, const char *b, int *out)
{
    migrate_version va, vb;
    if (out == NULL || migrate_version_parse(a, &va) != MIGRATE_OK ||
        migrate_version_parse(b, &vb) != MIGRATE_OK)
        return MIGRATE_EINVAL;
    *out = migrate_version_compare(&va, &vb);
    return MIGRATE_OK;
}

/* from < v <= to; a NULL bound is no bound. */
static bool version_within(const migrate_version *v, const migrate_version *from,
                           const migrate_version *to)
{
    return (from == NULL || migrate_version_compare(from, v) < 0) &&
           (to == NULL || migrate_version_compare(v, to) <= 0);
}

int migrate_version_in_range(const char *v, const char *from, const char *to, bool *out)
{
    migrate_version vv, vfrom, vto;
    if (out == NULL || migrate_version_parse(v, &vv) != MIGRATE_OK)
        return MIGRATE_EINVAL;
    if (from != NULL && migrate_version_parse(from, &vfrom) != MIGRATE_OK)
        return MIGRATE_EINVAL;
    if (to != NULL && migrate_version_parse(to, &vto) != MIGRATE_OK)
        return MIGRATE_EINVAL;
    *out = version_within(&vv, from != NULL ? &vfrom : NULL, to != NULL ? &vto : NULL);
    return MIGRATE_OK;
}

/* ---- The scripts' `semver` module ----------------------------------------- */

/* The version at stack index arg, or a Lua error naming the text. The
 * result points into the Lua string, which stays on the stack. */
static void check_version(lua_State *L, int arg, const char *fname, migrate_version *out)
{
    size_t len;
    const char *text = luaL_checklstring(L, arg, &len);
    const char *why;
    if (mig_version_parse(text, len, out, &why) != MIGRATE_OK)
        luaL_error(L, "semver.%s: \"%s\": not a SemVer version (%s)", fname, text, why);
}

/* Like check_version for an optional bound: false when it is nil. */
static bool opt_version(lua_State *L, int arg, const char *fname, migrate_version *out)
{
    if (lua_isnoneornil(L, arg))
        return false;
    check_version(L, arg, fname, out);
    return true;
}

/* Past LUA_MAXINTEGER a float: inexact, but never a wrapped negative. */
static void push_version_number(lua_State *L, uint64_t n)
{
    if (n <= (uint64_t)LUA_MAXINTEGER)
        lua_pushinteger(L, (lua_Integer)n);
    else
        lua_pushnumber(L, (lua_Number)n);
}

static int semver_compare(lua_State *L)
{
    migrate_version a, b;
    check_version(L, 1, "compare", &a);
    check_version(L, 2, "compare", &b);
    lua_pushinteger(L, migrate_version_compare(&a, &b));
    return 1;
}

static int semver_parse(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    migrate_version v;
    const char *why;
    if (mig_version_parse(text, len, &v, &why) != MIGRATE_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, why);
        return 2;
    }
    lua_createtable(L, 0, 5);
    push_version_number(L, v.major);
    lua_setfield(L, -2, "major");
    push_version_number(L, v.minor);
    lua_setfield(L, -2, "minor");
    push_version_number(L, v.patch);
    lua_setfield(L, -2, "patch");
    if (v.prerelease != NULL) {
        lua_pushlstring(L, v.prerelease, v.prerelease_len);
        lua_setfield(L, -2, "prerelease");
    }
    if (v.build != NULL) {
        lua_pushlstring(L, v.build, v.build_len);
        lua_setfield(L, -2, "build");
    }
    return 1;
}

static int semver_in_range(lua_State *L)
{
    migrate_version v, from, to;
    check_version(L, 1, "in_range", &v);
    bool has_from = opt_version(L, 2, "in_range", &from);
    bool has_to = opt_version(L, 3, "in_range", &to);
    lua_pushboolean(L, version_within(&v, has_from ? &from : NULL, has_to ? &to : NULL));
    return 1;
}

static const luaL_Reg semver_functions[] = {
    {"compare", semver_compare},
    {"parse", semver_parse},
    {"in_range", semver_in_range},
    {NULL, NULL},
};

void mig_open_semver(lua_State *L)
{
    luaL_newlib(L, semver_functions);
}
