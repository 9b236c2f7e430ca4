/* pattern.c - Lua 5.4's pattern matching (string.find, match, gmatch,
 * gsub), re-implemented so that it checks the deadline (SPEC §3).
 *
 * The stock functions run entirely in C: a backtracking pattern such as
 * ('a'):rep(20000):find('.-.-.-.-.-b') never reaches the instruction hook
 * and runs for minutes. These behave exactly as Lua 5.4's (same results,
 * same limits, same error messages: tests/test_pattern.c compares them with
 * the stock library on Lua's own cases and a generated corpus), and call
 * mig_deadline_poll() every POLL_EVERY steps of work, a step being a match
 * call, a character tried in a repetition or a byte compared. */
#include "internal.h"

#include <ctype.h>
#include <lauxlib.h>
#include <string.h>

/* Lua 5.4's limits, so that a pattern refused by one is refused by both. */
#define MAX_CAPTURES 32  /* LUA_MAXCAPTURES */
#define MAX_DEPTH 200    /* MAXCCALLS: "pattern too complex" past it */
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)
#define ESC '%'
#define SPECIALS "^$*+?.([%-"

/* About ten microseconds of matching between two looks at the clock:
 * small against any timeout, invisible in the cost of a match. */
#define POLL_EVERY 1000
/* A loop over single characters (a run of x*, a %b scan) polls every
 * LONG_RUN + 1 of them, a fraction of a millisecond. */
#define LONG_RUN 0xffff

typedef struct capture {
    const char *init;
    ptrdiff_t len; /* or CAP_UNFINISHED, CAP_POSITION */
} capture;

typedef struct matcher {
    const char *subject, *subject_end;
    const char *pattern_end;
    lua_State *L;
    int depth_left; /* recursion still allowed */
    int level;      /* captures opened so far */
    long budget;    /* steps until the next deadline poll */
    capture cap[MAX_CAPTURES];
} matcher;

static const char *do_match(matcher *m, const char *s, const char *p);

/* Counts n steps of work; every POLL_EVERY, the deadline is checked (and
 * raises the timeout error through it once passed). */
static inline void spend(matcher *m, size_t n)
{
    m->budget -= (long)(n < POLL_EVERY ? n : POLL_EVERY);
    if (m->budget <= 0) {
        m->budget = POLL_EVERY;
        mig_deadline_poll(m->L);
    }
}

static void matcher_init(matcher *m, lua_State *L, const char *s, size_t ls, const char *p,
                         size_t lp)
{
    m->L = L;
    m->subject = s;
    m->subject_end = s + ls;
    m->pattern_end = p + lp;
    m->budget = POLL_EVERY;
}

/* Before each attempt at a new position. */
static void matcher_reset(matcher *m)
{
    m->level = 0;
    m->depth_left = MAX_DEPTH;
}

/* ---- single characters ----------------------------------------------------- */

/* Whether c is in class cl (%a, %d, ...); an upper-case class is the
 * complement; any other character stands for itself. The C locale's ctype,
 * as Lua uses. */
static bool in_class(int c, int cl)
{
    bool yes;
    switch (tolower(cl)) {
    case 'a': yes = isalpha(c); break;
    case 'c': yes = iscntrl(c); break;
    case 'd': yes = isdigit(c); break;
    case 'g': yes = isgraph(c); break;
    case 'l': yes = islower(c); break;
    case 'p': yes = ispunct(c); break;
    case 's': yes = isspace(c); break;
    case 'u': yes = isupper(c); break;
    case 'w': yes = isalnum(c); break;
    case 'x': yes = isxdigit(c); break;
    case 'z': yes = c == 0; break; /* deprecated since 5.2, still in 5.4 */
    default: return cl == c;
    }
    return isupper(cl) ? !yes : yes;
}

/* Whether c is in the set [ ... ] that starts at p ('[') and whose closing
 * ']' is at close. A '-' makes a range only between two characters, and a
 * ']' right after '[' or '[^' is a member (class_end skipped it). */
static bool in_set(int c, const char *p, const char *close)
{
    bool member = true;
    if (p[1] == '^') {
        member = false;
        p++;
    }
    while (++p < close) {
        if (*p == ESC) {
            p++;
            if (in_class(c, (unsigned char)*p))
                return member;
        } else if (p[1] == '-' && p + 2 < close) {
            if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
                return member;
            p += 2;
        } else if ((unsigned char)*p == c) {
            return member;
        }
    }
    return !member;
}

/* The end of the single-character class that starts at p. */
static const char *class_end(matcher *m, const char *p)
{
    char first = *p++;
    if (first == ESC) {
        if (p == m->pattern_end)
            luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (first != '[')
        return p;
    if (*p == '^')
        p++;
    do { /* the first character is never the closing ']' */
        if (p == m->pattern_end)
            luaL_error(m->L, "malformed pattern (missing ']')");
        if (*p++ == ESC && p < m->pattern_end)
            p++; /* "%]" is not the end */
    } while (*p != ']');
    return p + 1;
}

/* Whether the subject character at s matches the class p..ep. */
static bool single_match(const matcher *m, const char *s, const char *p, const char *ep)
{
    if (s >= m->subject_end)
        return false;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return true;
    case ESC: return in_class(c, (unsigned char)p[1]);
    case '[': return in_set(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

/* ---- the items that are not single characters --------------------------------- */

/* %bxy at p (pointing at x): a balanced run from x to its matching y. */
static const char *match_balance(matcher *m, const char *s, const char *p)
{
    if (p >= m->pattern_end - 1)
        luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    /* s may be the subject's end: Lua strings end in a '\0' that can be read. */
    if (*s != *p)
        return NULL;
    char open = p[0], close = p[1];
    int depth = 1;
    const char *start = s;
    while (++s < m->subject_end) {
        if (((s - start) & LONG_RUN) == 0)
            spend(m, POLL_EVERY);
        if (*s == close) {
            if (--depth == 0) {
                spend(m, (size_t)((s - start) & LONG_RUN));
                return s + 1;
            }
        } else if (*s == open) {
            depth++;
        }
    }
    spend(m, (size_t)((s - start) & LONG_RUN));
    return NULL;
}

/* Greedy repetition (* and, from s + 1, +): the longest run first. */
static const char *max_expand(matcher *m, const char *s, const char *p, const char *ep)
{
    ptrdiff_t n = 0;
    while (single_match(m, s + n, p, ep))
        if ((++n & LONG_RUN) == 0)
            spend(m, POLL_EVERY); /* a run of megabytes */
    spend(m, (size_t)(n & LONG_RUN));
    for (; n >= 0; n--) {
        const char *end = do_match(m, s + n, ep + 1);
        if (end != NULL)
            return end;
    }
    return NULL;
}

/* Lazy repetition (-): the shortest run first. */
static const char *min_expand(matcher *m, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *end = do_match(m, s, ep + 1);
        if (end != NULL)
            return end;
        if (!single_match(m, s, p, ep))
            return NULL;
        s++;
    }
}

static const char *start_capture(matcher *m, const char *s, const char *p, ptrdiff_t what)
{
    if (m->level >= MAX_CAPTURES)
        luaL_error(m->L, "too many captures");
    m->cap[m->level].init = s;
    m->cap[m->level].len = what;
    m->level++;
    const char *end = do_match(m, s, p);
    if (end == NULL)
        m->level--; /* undo */
    return end;
}

static const char *end_capture(matcher *m, const char *s, const char *p)
{
    int l = m->level - 1;
    while (l >= 0 && m->cap[l].len != CAP_UNFINISHED)
        l--;
    if (l < 0)
        luaL_error(m->L, "invalid pattern capture");
    m->cap[l].len = s - m->cap[l].init;
    const char *end = do_match(m, s, p);
    if (end == NULL)
        m->cap[l].len = CAP_UNFINISHED; /* undo */
    return end;
}

/* %1-%9 in a pattern: the text of a closed capture again. */
static const char *match_backref(matcher *m, const char *s, int digit)
{
    int l = digit - '1';
    if (l < 0 || l >= m->level || m->cap[l].len == CAP_UNFINISHED)
        luaL_error(m->L, "invalid capture index %%%d", l + 1);
    size_t len = (size_t)m->cap[l].len; /* a position capture: huge, no match */
    if ((size_t)(m->subject_end - s) >= len && memcmp(m->cap[l].init, s, len) == 0) {
        spend(m, len);
        return s + len;
    }
    return NULL;
}

/* %f[set] at p (pointing at '['): between a character not in set and one
 * in it; the subject's ends count as '\0'. */
static const char *match_frontier(matcher *m, const char *s, const char **p)
{
    if (**p != '[')
        luaL_error(m->L, "missing '[' after '%%f' in pattern");
    const char *ep = class_end(m, *p);
    int before = s == m->subject ? '\0' : (unsigned char)s[-1];
    if (!in_set(before, *p, ep - 1) && in_set((unsigned char)*s, *p, ep - 1)) {
        *p = ep;
        return s;
    }
    return NULL;
}

/* ---- the matcher -------------------------------------------------------------- */

/* A single-character class at p (ending at ep) with its quantifier, if any. */
static const char *match_item(matcher *m, const char *s, const char *p, const char *ep,
                              const char **next)
{
    *next = NULL;
    if (!single_match(m, s, p, ep)) {
        if (*ep != '*' && *ep != '?' && *ep != '-')
            return NULL;
        *next = ep + 1; /* zero repetitions */
        return s;
    }
    switch (*ep) {
    case '?': {
        const char *end = do_match(m, s + 1, ep + 1);
        if (end == NULL)
            *next = ep + 1;
        return end != NULL ? end : s;
    }
    case '+': return max_expand(m, s + 1, p, ep);
    case '*': return max_expand(m, s, p, ep);
    case '-': return min_expand(m, s, p, ep);
    default:
        *next = ep;
        return s + 1;
    }
}

/* Matches the pattern from p against the subject from s; returns the end
 * of the match or NULL. Tail items loop instead of recursing, so only
 * backtracking points use depth. */
static const char *do_match(matcher *m, const char *s, const char *p)
{
    if (m->depth_left-- == 0)
        luaL_error(m->L, "pattern too complex");
    spend(m, 1);
    while (s != NULL && p != m->pattern_end) {
        const char *next;
        switch (*p) {
        case '(':
            if (p[1] == ')')
                s = start_capture(m, s, p + 2, CAP_POSITION);
            else
                s = start_capture(m, s, p + 1, CAP_UNFINISHED);
            goto done;
        case ')':
            s = end_capture(m, s, p + 1);
            goto done;
        case '$':
            if (p + 1 == m->pattern_end) {
                s = s == m->subject_end ? s : NULL;
                goto done;
            }
            break; /* a '$' elsewhere is a character */
        case ESC:
            switch (p[1]) {
            case 'b':
                s = match_balance(m, s, p + 2);
                p += 4;
                continue;
            case 'f':
                p += 2;
                s = match_frontier(m, s, &p);
                continue;
            case '0': case '1': case '2': case '3': case '4':
            case '5': case '6': case '7': case '8': case '9':
                s = match_backref(m, s, (unsigned char)p[1]);
                p += 2;
                continue;
            default:
                break; /* a class such as %a */
            }
            break;
        default:
            break;
        }
        const char *ep = class_end(m, p);
        s = match_item(m, s, p, ep, &next);
        if (next == NULL)
            goto done;
        p = next;
    }
done:
    m->depth_left++;
    return s;
}

/* ---- results ------------------------------------------------------------------ */

/* Capture i of the match s..e: pushes a position capture and returns
 * CAP_POSITION, else sets *text and returns its length. Capture 0 of a
 * pattern without captures is the whole match. */
static ptrdiff_t get_capture(matcher *m, int i, const char *s, const char *e, const char **text)
{
    if (i >= m->level) {
        if (i != 0)
            luaL_error(m->L, "invalid capture index %%%d", i + 1);
        *text = s;
        return e - s;
    }
    ptrdiff_t len = m->cap[i].len;
    *text = m->cap[i].init;
    if (len == CAP_UNFINISHED)
        luaL_error(m->L, "unfinished capture");
    else if (len == CAP_POSITION)
        lua_pushinteger(m->L, (m->cap[i].init - m->subject) + 1);
    return len;
}

static void push_capture(matcher *m, int i, const char *s, const char *e)
{
    const char *text;
    ptrdiff_t len = get_capture(m, i, s, e, &text);
    if (len != CAP_POSITION)
        lua_pushlstring(m->L, text, (size_t)len);
}

/* Pushes every capture (or the whole match when there is none and s is
 * not NULL); returns how many. */
static int push_captures(matcher *m, const char *s, const char *e)
{
    int n = (m->level == 0 && s != NULL) ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, s, e);
    return n;
}

/* ---- find and match ------------------------------------------------------------- */

/* Lua's translation of a relative initial position into 1..len+1 (or
 * past it): negative counts from the end, anything before the start is 1. */
static size_t start_index(lua_Integer pos, size_t len)
{
    if (pos > 0)
        return (size_t)pos;
    if (pos == 0)
        return 1;
    if (pos < -(lua_Integer)len)
        return 1;
    return len + (size_t)pos + 1;
}

static bool has_specials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++)
        if (p[i] != '\0' && strchr(SPECIALS, p[i]) != NULL)
            return true;
    return false;
}

/* Plain search of needle in hay; a large needle against a long text is
 * quadratic, so it pays its comparisons into the budget too. */
static const char *find_plain(matcher *m, const char *hay, size_t lh, const char *needle,
                              size_t ln)
{
    if (ln == 0)
        return hay;
    if (ln > lh)
        return NULL;
    const char *last = hay + (lh - ln); /* the last place it could start */
    const char *at = hay;
    while (at <= last) {
        const char *c = memchr(at, needle[0], (size_t)(last - at) + 1);
        if (c == NULL)
            return NULL;
        spend(m, (size_t)(c - at) / 16 + ln);
        if (memcmp(c + 1, needle + 1, ln - 1) == 0)
            return c;
        at = c + 1;
    }
    return NULL;
}

static int find_or_match(lua_State *L, bool find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_index(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    matcher m;
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        matcher_init(&m, L, s, ls, p, lp);
        const char *at = find_plain(&m, s + init, ls - init, p, lp);
        if (at != NULL) {
            lua_pushinteger(L, (at - s) + 1);
            lua_pushinteger(L, (lua_Integer)((size_t)(at - s) + lp));
            return 2;
        }
        luaL_pushfail(L);
        return 1;
    }
    bool anchored = *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    matcher_init(&m, L, s, ls, p, lp);
    const char *from = s + init;
    do {
        matcher_reset(&m);
        const char *end = do_match(&m, from, p);
        if (end != NULL) {
            if (!find)
                return push_captures(&m, from, end);
            lua_pushinteger(L, (from - s) + 1);
            lua_pushinteger(L, end - s);
            return push_captures(&m, NULL, NULL) + 2;
        }
        spend(&m, 1);
    } while (from++ < m.subject_end && !anchored);
    luaL_pushfail(L);
    return 1;
}

static int str_find(lua_State *L)
{
    return find_or_match(L, true);
}

static int str_match(lua_State *L)
{
    return find_or_match(L, false);
}

/* ---- gmatch ------------------------------------------------------------------- */

typedef struct gmatch_state {
    const char *from;      /* where the next search starts */
    const char *pattern;
    const char *last_end;  /* end of the last match: an empty match there is skipped */
    matcher m;
} gmatch_state;

/* Upvalues: the subject, the pattern (kept alive), the state. */
static int gmatch_next(lua_State *L)
{
    gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
    g->m.L = L;
    for (const char *from = g->from; from <= g->m.subject_end; from++) {
        matcher_reset(&g->m);
        const char *end = do_match(&g->m, from, g->pattern);
        if (end != NULL && end != g->last_end) {
            g->from = g->last_end = end;
            return push_captures(&g->m, from, end);
        }
        spend(&g->m, 1);
    }
    return 0;
}

static int str_gmatch(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_index(luaL_optinteger(L, 3, 1), ls) - 1;
    lua_settop(L, 2);
    gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
    if (init > ls)
        init = ls + 1; /* nothing left to match, and no pointer overflow */
    matcher_init(&g->m, L, s, ls, p, lp);
    g->from = s + init;
    g->pattern = p;
    g->last_end = NULL;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/* ---- gsub --------------------------------------------------------------------- */

/* The replacement string (argument 3) for the match s..e, with %0-%9 and %%. */
static void add_template(matcher *m, luaL_Buffer *b, const char *s, const char *e)
{
    lua_State *L = m->L;
    size_t len;
    const char *t = lua_tolstring(L, 3, &len);
    const char *esc;
    while ((esc = memchr(t, ESC, len)) != NULL) {
        luaL_addlstring(b, t, (size_t)(esc - t));
        esc++; /* a final '%' sees the string's terminating '\0' */
        if (*esc == ESC) {
            luaL_addchar(b, ESC);
        } else if (*esc == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (isdigit((unsigned char)*esc)) {
            const char *text;
            ptrdiff_t n = get_capture(m, *esc - '1', s, e, &text);
            if (n == CAP_POSITION)
                luaL_addvalue(b);
            else
                luaL_addlstring(b, text, (size_t)n);
        } else {
            luaL_error(L, "invalid use of '%c' in replacement string", ESC);
        }
        len -= (size_t)(esc + 1 - t);
        t = esc + 1;
    }
    luaL_addlstring(b, t, len);
}

/* Adds the replacement of the match s..e; returns whether it changed the
 * text (a false or nil from a table or function keeps the match). */
static bool add_replacement(matcher *m, luaL_Buffer *b, const char *s, const char *e, int kind)
{
    lua_State *L = m->L;
    if (kind == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1);
    } else if (kind == LUA_TTABLE) {
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    } else {
        add_template(m, b, s, e);
        return true;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return false;
    }
    if (!lua_isstring(L, -1))
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return true;
}

static int str_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    const char *last_end = NULL;
    int kind = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L, kind == LUA_TNUMBER || kind == LUA_TSTRING || kind == LUA_TFUNCTION ||
                            kind == LUA_TTABLE,
                     3, "string/function/table");
    bool anchored = *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    matcher m;
    matcher_init(&m, L, src, ls, p, lp);
    lua_Integer n = 0;
    bool changed = false;
    while (n < max) {
        matcher_reset(&m);
        const char *end = do_match(&m, src, p);
        if (end != NULL && end != last_end) {
            n++;
            changed = add_replacement(&m, &b, src, end, kind) || changed;
            src = last_end = end;
        } else if (src < m.subject_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        spend(&m, 1);
        if (anchored)
            break;
    }
    if (!changed) {
        lua_pushvalue(L, 1);
    } else {
        luaL_addlstring(&b, src, (size_t)(m.subject_end - src));
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

void mig_open_patterns(lua_State *L, int strings)
{
    static const luaL_Reg functions[] = {
        {"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch},
        {"gsub", str_gsub}, {NULL, NULL},
    };
    strings = lua_absindex(L, strings);
    for (const luaL_Reg *f = functions; f->name != NULL; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, strings, f->name);
    }
}
