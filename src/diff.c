/* diff.c - unified diffs of two texts (the rehearsal's changes, SPEC §4.6,
 * and the fixture harness's differences): the fewest line changes (a
 * longest common subsequence) in hunks with three lines of context, as
 * `diff -u` writes them and `patch` reads them. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTEXT_LINES 3
/* The LCS table between the texts' first and last differing lines: past
 * this many cells (64 MiB of uint32_t) no diff is made. */
#define MAX_DIFF_CELLS ((size_t)1 << 24)

typedef struct line {
    const char *s;
    size_t len; /* with its '\n', if it has one */
} line;

/* One step of the edit script: '=' keep, '-' only in a, '+' only in b; a
 * and b are the line positions in each text where it happens. */
typedef struct edit {
    char op;
    size_t a, b;
} edit;

typedef struct buffer {
    char *data;
    size_t len, cap;
    bool failed;
} buffer;

static void put(buffer *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *bigger = realloc(b->data, cap);
        if (bigger == NULL) {
            b->failed = true;
            return;
        }
        b->data = bigger;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void putf(buffer *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(buffer *b, const char *fmt, ...)
{
    char text[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(b, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

static line *split_lines(const char *s, size_t n, size_t *count)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == '\n';
    line *lines = malloc((k + 2) * sizeof *lines);
    if (lines == NULL)
        return NULL;
    k = 0;
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (s + i)) + 1 : n - i;
        lines[k++] = (line){s + i, len};
        i += len;
    }
    *count = k;
    return lines;
}

static bool same_line(line a, line b)
{
    return a.len == b.len && memcmp(a.s, b.s, a.len) == 0;
}

/* The edit script turning a[lo..na) into b[lo..nb) with the fewest changes,
 * appended to ed. 1: done; 0: the table would be too big; -1: no memory. */
static int lcs_edits(const line *a, size_t na, const line *b, size_t nb, size_t lo, edit *ed,
                     size_t *ne)
{
    size_t rows = na - lo + 1, cols = nb - lo + 1;
    if (rows > MAX_DIFF_CELLS / cols)
        return 0;
    uint32_t *t = malloc(rows * cols * sizeof *t);
    if (t == NULL)
        return -1;
#define T(i, j) t[((i) - lo) * cols + ((j) - lo)]
    for (size_t i = na + 1; i-- > lo;)
        for (size_t j = nb + 1; j-- > lo;) {
            if (i == na || j == nb)
                T(i, j) = 0;
            else if (same_line(a[i], b[j]))
                T(i, j) = T(i + 1, j + 1) + 1;
            else
                T(i, j) = T(i + 1, j) > T(i, j + 1) ? T(i + 1, j) : T(i, j + 1);
        }
    size_t i = lo, j = lo;
    while (i < na || j < nb) {
        if (i < na && j < nb && same_line(a[i], b[j]))
            ed[(*ne)++] = (edit){'=', i++, j++};
        else if (i < na && (j == nb || T(i + 1, j) >= T(i, j + 1)))
            ed[(*ne)++] = (edit){'-', i++, j};
        else
            ed[(*ne)++] = (edit){'+', i, j++};
    }
#undef T
    free(t);
    return 1;
}

static void put_line(buffer *out, const char *indent, char op, line l)
{
    bool nl = l.len > 0 && l.s[l.len - 1] == '\n';
    put(out, indent, strlen(indent));
    put(out, &op, 1);
    put(out, l.s, l.len - nl);
    put(out, "\n", 1);
    if (!nl) {
        put(out, indent, strlen(indent));
        put(out, "\\ No newline at end of file\n", 28);
    }
}

/* The hunk edits ed[from..to), with its "@@ -a,n +b,m @@" header. */
static void put_hunk(buffer *out, const char *indent, const edit *ed, size_t from, size_t to,
                     const line *a, const line *b)
{
    size_t na = 0, nb = 0;
    for (size_t k = from; k < to; k++) {
        na += ed[k].op != '+';
        nb += ed[k].op != '-';
    }
    putf(out, "%s@@ -%zu,%zu +%zu,%zu @@\n", indent, ed[from].a + (na > 0), na,
         ed[from].b + (nb > 0), nb);
    for (size_t k = from; k < to; k++)
        put_line(out, indent, ed[k].op == '=' ? ' ' : ed[k].op,
                 ed[k].op == '+' ? b[ed[k].b] : a[ed[k].a]);
}

/* Groups the changes into hunks with CONTEXT_LINES of context around them. */
static void put_hunks(buffer *out, const char *indent, const edit *ed, size_t ne, const line *a,
                      const line *b)
{
    size_t k = 0;
    while (k < ne) {
        while (k < ne && ed[k].op == '=')
            k++;
        if (k == ne)
            break;
        size_t from = k > CONTEXT_LINES ? k - CONTEXT_LINES : 0, last = k;
        for (size_t j = k; j < ne && j <= last + 2 * CONTEXT_LINES; j++)
            if (ed[j].op != '=')
                last = j;
        size_t to = last + 1 + CONTEXT_LINES < ne ? last + 1 + CONTEXT_LINES : ne;
        put_hunk(out, indent, ed, from, to, a, b);
        k = to;
    }
}

char *mig_unified_diff(const char *indent, const char *label_a, const char *ta, size_t la,
                       const char *label_b, const char *tb, size_t lb, bool *too_large)
{
    *too_large = false;
    size_t na = 0, nb = 0;
    line *a = split_lines(ta, la, &na), *b = split_lines(tb, lb, &nb);
    edit *ed = a && b ? malloc((na + nb + 1) * sizeof *ed) : NULL;
    buffer out = {NULL, 0, 0, ed == NULL};
    if (ed != NULL) {
        /* Common head and tail lines need no table: diffs stay cheap for the
         * usual one-key change in a long file. */
        size_t lo = 0;
        while (lo < na && lo < nb && same_line(a[lo], b[lo]))
            lo++;
        size_t ea = na, eb = nb;
        while (ea > lo && eb > lo && same_line(a[ea - 1], b[eb - 1]))
            ea--, eb--;
        size_t ne = 0;
        for (size_t i = 0; i < lo; i++)
            ed[ne++] = (edit){'=', i, i};
        int made = lcs_edits(a, ea, b, eb, lo, ed, &ne);
        if (made > 0) {
            for (size_t i = ea, j = eb; i < na; i++, j++)
                ed[ne++] = (edit){'=', i, j};
            put(&out, "", 0); /* "" for two equal texts */
            if (lo < na || lo < nb) {
                const char *parts[] = {indent, "--- ", label_a, "\n", indent, "+++ ", label_b, "\n"};
                for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++)
                    put(&out, parts[k], strlen(parts[k]));
                put_hunks(&out, indent, ed, ne, a, b);
            }
        } else {
            *too_large = made == 0;
            out.failed = true;
        }
    }
    free(ed);
    free(a);
    free(b);
    if (out.failed) {
        free(out.data);
        return NULL;
    }
    return out.data;
}
