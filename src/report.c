/* report.c - the outcome of a run: results, warnings, logs, JSON. */
#include "internal.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A script that logs in a loop must not grow the host's memory without
 * bound: the report keeps this many lines per migration and counts the rest
 * (the event callback still sees every line). */
#define MAX_LOG_LINES 1000

typedef struct log_line {
    int level;
    char *message;
} log_line;

typedef struct result {
    migrate_result pub; /* first: a migrate_result * is a result * */
    log_line *log;
    size_t nlog;
    size_t log_dropped;
    migrate_change *changes; /* the rehearsal's, in order */
    size_t nchanges, changes_cap;
    bool error_static; /* pub.error is the out-of-memory fallback literal */
} result;

struct migrate_report {
    char *from, *to;
    bool dry_run;
    bool rehearse;
    size_t rehearsal_peak; /* the most bytes the rehearsal's view held */
    int code;    /* what the run returned: MIGRATE_OK until mig_report_fail() */
    char *error;
    result *items;
    size_t count, cap;
    char **warnings;
    size_t nwarnings;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

migrate_report *mig_report_new(const char *from, const char *to, bool dry_run)
{
    migrate_report *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->from = dup_or_null(from);
    r->to = dup_or_null(to);
    r->dry_run = dry_run;
    if ((from != NULL && r->from == NULL) || (to != NULL && r->to == NULL)) {
        migrate_report_free(r);
        return NULL;
    }
    return r;
}

int mig_report_add(migrate_report *r, const char *id, const char *version, const char *path)
{
    if (r->count == r->cap) {
        result *items = mig_grow(r->items, &r->cap, sizeof *items, 16);
        if (items == NULL)
            return MIGRATE_ENOMEM;
        r->items = items;
    }
    /* One block for the three strings: a run of 10,000 migrations builds
     * its report on every daemon start, nothing to do or not. */
    size_t lid = strlen(id) + 1, lver = strlen(version) + 1, lpath = strlen(path) + 1;
    char *text = malloc(lid + lver + lpath);
    if (text == NULL)
        return MIGRATE_ENOMEM;
    memcpy(text, id, lid);
    memcpy(text + lid, version, lver);
    memcpy(text + lid + lver, path, lpath);
    result *it = &r->items[r->count++];
    memset(it, 0, sizeof *it);
    it->pub.outcome = MIGRATE_NOT_RUN;
    it->pub.id = text;
    it->pub.version = text + lid;
    it->pub.path = text + lid + lver;
    return MIGRATE_OK;
}

migrate_result *mig_report_at(migrate_report *r, size_t i)
{
    return &r->items[i].pub;
}

/* The one writer of a result's outcome and error (run.c never writes them
 * itself). Returns whether the result is now FAILED. */
bool mig_report_set_outcome(migrate_report *r, size_t i, migrate_outcome outcome,
                            const char *message)
{
    result *it = &r->items[i];
    if (!it->error_static)
        free((char *)it->pub.error);
    it->pub.outcome = outcome;
    it->pub.error = NULL;
    it->error_static = false;
    if (outcome != MIGRATE_FAILED)
        return false;
    it->pub.error = mig_strdup_cut(message);
    it->error_static = it->pub.error == NULL;
    if (it->error_static)
        it->pub.error = "failed (out of memory while recording the message)";
    return true;
}

void mig_report_set_seconds(migrate_report *r, size_t i, double seconds)
{
    r->items[i].pub.seconds = seconds;
}

int mig_report_fail(migrate_report *r, int code, const char *message)
{
    if (r != NULL) {
        free(r->error);
        r->error = strdup(message);
        r->code = code;
    }
    return code;
}

int mig_report_warn(migrate_report *r, const char *message)
{
    char *copy = mig_strdup_cut(message);
    char **w = copy ? realloc(r->warnings, (r->nwarnings + 1) * sizeof *w) : NULL;
    if (w == NULL) {
        free(copy);
        return MIGRATE_ENOMEM;
    }
    r->warnings = w;
    r->warnings[r->nwarnings++] = copy;
    return MIGRATE_OK;
}

void mig_report_log(migrate_report *r, size_t i, int level, const char *message, size_t len)
{
    result *it = &r->items[i];
    if (it->nlog >= MAX_LOG_LINES) {
        it->log_dropped++;
        return;
    }
    if (it->nlog % 16 == 0) {
        log_line *log = realloc(it->log, (it->nlog + 16) * sizeof *log);
        if (log == NULL) {
            it->log_dropped++;
            return;
        }
        it->log = log;
    }
    char *copy = mig_strndup_cut(message, len, MIGRATE_MAX_LOG_LINE);
    if (copy == NULL) {
        it->log_dropped++;
        return;
    }
    it->log[it->nlog].level = level;
    it->log[it->nlog].message = copy;
    it->nlog++;
}

void mig_report_set_rehearse(migrate_report *r, bool rehearse)
{
    r->rehearse = rehearse;
}

void mig_report_set_rehearsal_peak(migrate_report *r, size_t bytes)
{
    if (bytes > r->rehearsal_peak)
        r->rehearsal_peak = bytes;
}

size_t migrate_report_rehearsal_peak(const migrate_report *r)
{
    return r != NULL ? r->rehearsal_peak : 0;
}

void mig_report_set_rehearsal(migrate_report *r, size_t i, bool rehearsal)
{
    r->items[i].pub.rehearsal = rehearsal;
}

void mig_report_clear_log(migrate_report *r, size_t i)
{
    result *it = &r->items[i];
    for (size_t k = 0; k < it->nlog; k++)
        free(it->log[k].message);
    free(it->log);
    it->log = NULL;
    it->nlog = it->log_dropped = 0;
}

static void change_free(migrate_change *c)
{
    free((char *)c->path);
    free((char *)c->from);
    free((char *)c->target);
    free((char *)c->diff);
}

void mig_report_clear_changes(migrate_report *r, size_t i)
{
    result *it = &r->items[i];
    for (size_t k = 0; k < it->nchanges; k++)
        change_free(&it->changes[k]);
    free(it->changes);
    it->changes = NULL;
    it->nchanges = it->changes_cap = 0;
}

static bool copy_or_null(const char *s, const char **out)
{
    *out = s != NULL ? strdup(s) : NULL;
    return s == NULL || *out != NULL;
}

int mig_report_add_change(migrate_report *r, size_t i, const migrate_change *c)
{
    result *it = &r->items[i];
    if (it->nchanges == it->changes_cap) {
        migrate_change *bigger = mig_grow(it->changes, &it->changes_cap, sizeof *bigger, 8);
        if (bigger == NULL)
            return MIGRATE_ENOMEM;
        it->changes = bigger;
    }
    migrate_change *n = &it->changes[it->nchanges];
    *n = *c; /* type is a static string */
    n->path = n->from = n->target = n->diff = NULL;
    if (!copy_or_null(c->path, &n->path) || !copy_or_null(c->from, &n->from) ||
        !copy_or_null(c->target, &n->target) || !copy_or_null(c->diff, &n->diff)) {
        change_free(n);
        return MIGRATE_ENOMEM;
    }
    it->nchanges++;
    return MIGRATE_OK;
}

/* ---- public accessors ---------------------------------------------------- */

size_t migrate_result_change_count(const migrate_report *r, size_t i)
{
    return r != NULL && i < r->count ? r->items[i].nchanges : 0;
}

const migrate_change *migrate_result_change(const migrate_report *r, size_t i, size_t j)
{
    if (r == NULL || i >= r->count || j >= r->items[i].nchanges)
        return NULL;
    return &r->items[i].changes[j];
}

const char *migrate_change_kind_name(migrate_change_kind kind)
{
    switch (kind) {
    case MIGRATE_CHANGE_CREATED: return "created";
    case MIGRATE_CHANGE_MODIFIED: return "modified";
    case MIGRATE_CHANGE_REMOVED: return "removed";
    case MIGRATE_CHANGE_RENAMED: return "renamed";
    case MIGRATE_CHANGE_MODE: return "mode";
    }
    return "unknown";
}

size_t migrate_report_count(const migrate_report *r)
{
    return r != NULL ? r->count : 0;
}

const migrate_result *migrate_report_get(const migrate_report *r, size_t i)
{
    return r != NULL && i < r->count ? &r->items[i].pub : NULL;
}

const migrate_result *migrate_report_failed(const migrate_report *r)
{
    for (size_t i = 0; r != NULL && i < r->count; i++)
        if (r->items[i].pub.outcome == MIGRATE_FAILED)
            return &r->items[i].pub;
    return NULL;
}

const char *migrate_report_error(const migrate_report *r)
{
    return r != NULL ? r->error : NULL;
}

size_t migrate_report_warning_count(const migrate_report *r)
{
    return r != NULL ? r->nwarnings : 0;
}

const char *migrate_report_warning(const migrate_report *r, size_t i)
{
    return r != NULL && i < r->nwarnings ? r->warnings[i] : NULL;
}

const char *migrate_outcome_name(migrate_outcome outcome)
{
    switch (outcome) {
    case MIGRATE_PENDING: return "pending";
    case MIGRATE_APPLIED: return "applied";
    case MIGRATE_SKIPPED_STATE: return "skipped_state";
    case MIGRATE_SKIPPED_CHECK: return "skipped_check";
    case MIGRATE_FAILED: return "failed";
    case MIGRATE_NOT_RUN: return "not_run";
    }
    return "unknown";
}

/* ---- JSON ------------------------------------------------------------------ */

static const char *level_name(int level)
{
    return level == MIGRATE_LOG_ERROR ? "error" : level == MIGRATE_LOG_WARN ? "warn" : "info";
}

static cJSON *string_or_null(const char *s)
{
    return s != NULL ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static bool add_mode(cJSON *o, const char *key, int mode)
{
    if (mode < 0)
        return true;
    char text[16];
    snprintf(text, sizeof text, "0%03o", (unsigned)mode & 07777);
    return cJSON_AddStringToObject(o, key, text) != NULL;
}

static cJSON *change_json(const migrate_change *c)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    bool file = strcmp(c->type, "file") == 0 &&
                (c->kind == MIGRATE_CHANGE_CREATED || c->kind == MIGRATE_CHANGE_MODIFIED);
    bool ok = cJSON_AddStringToObject(o, "kind", migrate_change_kind_name(c->kind)) &&
              cJSON_AddStringToObject(o, "path", c->path) &&
              cJSON_AddStringToObject(o, "type", c->type) &&
              (c->from == NULL || cJSON_AddStringToObject(o, "from", c->from)) &&
              (c->target == NULL || cJSON_AddStringToObject(o, "target", c->target)) &&
              add_mode(o, "mode", c->mode) && add_mode(o, "old_mode", c->old_mode) &&
              (!file || cJSON_AddNumberToObject(o, "size", (double)c->size)) &&
              (!file || cJSON_AddItemToObject(o, "diff", string_or_null(c->diff)));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* cJSON_Add*ToObject return NULL when out of memory; each builder below
 * reports that through its own NULL return. */
static cJSON *result_json(const result *it)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    const migrate_result *m = &it->pub;
    bool ok = cJSON_AddStringToObject(o, "id", m->id) &&
              cJSON_AddStringToObject(o, "version", m->version) &&
              cJSON_AddStringToObject(o, "outcome", migrate_outcome_name(m->outcome)) &&
              cJSON_AddNumberToObject(o, "seconds", m->seconds);
    ok = ok && cJSON_AddItemToObject(o, "error", string_or_null(m->error)) &&
         cJSON_AddBoolToObject(o, "rehearsal", m->rehearsal);
    cJSON *changes = ok ? cJSON_AddArrayToObject(o, "changes") : NULL;
    for (size_t i = 0; changes != NULL && i < it->nchanges; i++)
        if (!cJSON_AddItemToArray(changes, change_json(&it->changes[i])))
            changes = NULL;
    ok = changes != NULL;
    cJSON *log = ok ? cJSON_AddArrayToObject(o, "log") : NULL;
    for (size_t i = 0; log != NULL && i < it->nlog; i++) {
        cJSON *line = cJSON_CreateObject();
        if (line == NULL || !cJSON_AddItemToArray(log, line) ||
            !cJSON_AddStringToObject(line, "level", level_name(it->log[i].level)) ||
            !cJSON_AddStringToObject(line, "message", it->log[i].message))
            log = NULL;
    }
    if (log != NULL && it->log_dropped > 0 &&
        !cJSON_AddNumberToObject(o, "log_dropped", (double)it->log_dropped))
        log = NULL;
    if (log == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* A cancelled run may hold a FAILED migration (the one it interrupted):
 * the code, not the outcomes, says which status it is. */
static const char *report_status(const migrate_report *r)
{
    if (r->code == MIGRATE_ECANCELED)
        return "canceled";
    if (r->error == NULL)
        return "ok";
    return migrate_report_failed(r) != NULL ? "failed" : "error";
}

static cJSON *report_json(const migrate_report *r)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    bool ok = cJSON_AddItemToObject(o, "from", string_or_null(r->from)) &&
              cJSON_AddItemToObject(o, "to", string_or_null(r->to)) &&
              cJSON_AddBoolToObject(o, "dry_run", r->dry_run) &&
              cJSON_AddBoolToObject(o, "rehearse", r->rehearse) &&
              (!r->rehearse ||
               cJSON_AddNumberToObject(o, "rehearsal_peak_bytes", (double)r->rehearsal_peak)) &&
              cJSON_AddStringToObject(o, "status", report_status(r)) &&
              cJSON_AddItemToObject(o, "error", string_or_null(r->error));
    cJSON *warnings = ok ? cJSON_AddArrayToObject(o, "warnings") : NULL;
    for (size_t i = 0; warnings != NULL && i < r->nwarnings; i++)
        if (!cJSON_AddItemToArray(warnings, cJSON_CreateString(r->warnings[i])))
            warnings = NULL;
    cJSON *migrations = warnings ? cJSON_AddArrayToObject(o, "migrations") : NULL;
    for (size_t i = 0; migrations != NULL && i < r->count; i++)
        if (!cJSON_AddItemToArray(migrations, result_json(&r->items[i])))
            migrations = NULL;
    if (migrations == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* cJSON_Print's text in the library's layout; malloc'd, or NULL. */
static char *relayout(const char *printed, size_t len)
{
    /* cJSON indents with tabs and writes ":\t"; a tab inside a string is
     * escaped, so every raw tab is layout: two spaces per level, ": " after
     * a key, as people and most tools write JSON. */
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += printed[i] == '\t' ? 2 : 1;
    char *text = malloc(n + 1);
    if (text == NULL)
        return NULL;
    char *out = text;
    for (size_t i = 0; i < len; i++) {
        if (printed[i] != '\t') {
            *out++ = printed[i];
        } else if (i > 0 && printed[i - 1] == ':') {
            *out++ = ' ';
        } else {
            *out++ = ' ';
            *out++ = ' ';
        }
    }
    *out = '\0';
    return text;
}

char *mig_json_print(const cJSON *item)
{
    char *printed = cJSON_Print(item);
    char *text = printed != NULL ? relayout(printed, strlen(printed)) : NULL;
    cJSON_free(printed);
    return text;
}

char *migrate_report_json(const migrate_report *r)
{
    if (r == NULL)
        return NULL;
    cJSON *o = report_json(r);
    /* malloc'd whatever allocator the host gave cJSON_InitHooks(). */
    char *text = o != NULL ? mig_json_print(o) : NULL;
    cJSON_Delete(o);
    return text;
}

/* ---- freeing ----------------------------------------------------------------- */

static void free_result(result *it)
{
    migrate_result *m = &it->pub;
    free((char *)m->id); /* and version and path: see mig_report_add() */
    if (!it->error_static)
        free((char *)m->error);
    for (size_t i = 0; i < it->nlog; i++)
        free(it->log[i].message);
    free(it->log);
    for (size_t i = 0; i < it->nchanges; i++)
        change_free(&it->changes[i]);
    free(it->changes);
}

void migrate_report_free(migrate_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->count; i++)
        free_result(&r->items[i]);
    free(r->items);
    for (size_t i = 0; i < r->nwarnings; i++)
        free(r->warnings[i]);
    free(r->warnings);
    free(r->from);
    free(r->to);
    free(r->error);
    free(r);
}
