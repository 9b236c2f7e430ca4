/* sandbox.c - a fresh, locked-down Lua state per migration script (SPEC §3).
 *
 * What a script can reach is an explicit allow-list; each exclusion below
 * says why. Every call into Lua that can allocate runs inside lua_pcall, so
 * no error ever reaches the panic handler (which would abort the host). */
#include "internal.h"

#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The timeout is checked every this many VM instructions: often enough to
 * stop within microseconds, rarely enough to cost nothing measurable. */
#define HOOK_EVERY 1000
/* Room the message handler may use past memory_limit, so that a script
 * stopped at its limit still gets a readable traceback. */
#define ERROR_HEADROOM (256u << 10)
/* A module file larger than this is not a helper someone wrote by hand. */
#define MAX_MODULE_BYTES (16u << 20)
/* A new state's first allocations (its libraries, modules and script: about
 * 22 KiB for a small script) are carved from one block and all released
 * with it; see sb_alloc(). Not under AddressSanitizer, which must see every
 * object to catch an overflow of one. */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_BYTES 0
#else
#define ARENA_BYTES (32u << 10)
#endif
#define ARENA_ALIGN 16u

struct mig_sandbox {
    lua_State *L;
    mig_sandbox_config cfg;
    mig_fsenv fsenv;  /* the fs module's view; its reasons are set per phase */
    size_t mem_used, mem_limit, headroom;
    char *arena;      /* ARENA_BYTES, or NULL */
    size_t arena_used;
    bool limit_hit;   /* the allocator refused for the limit, not the OS */
    struct timespec deadline;
    bool timed_out;
    const char *phase; /* "check", "migrate", "top level": for messages */
};

/* Registry keys (their addresses are unique, their values irrelevant). */
static const char KEY_CHECK = 'c', KEY_MIGRATE = 'm', KEY_LOADED = 'l', LOADING = 'L',
                  KEY_LAZY = 'z', KEY_YAML = 'y', KEY_YAML_OPENER = 'Y';

static const char READONLY_TOP[] =
    "the top level of a script runs when it is loaded and must not change anything; "
    "do the work in migrate()";
static const char READONLY_CHECK[] = "check() must not change anything";
/* The top level runs once, when the script is loaded in the compile pass,
 * before any migration has run (SPEC §4.3); what it read there could be
 * stale by the time migrate() runs, and it is not read again. */
static const char CLOSED_TOP[] =
    "the top level of a script runs when it is loaded, before any migration, so what it "
    "reads may be out of date when migrate() runs; read in check() or migrate()";

static mig_sandbox *sandbox_of(lua_State *L)
{
    return *(mig_sandbox **)lua_getextraspace(L);
}

/* ---- memory ------------------------------------------------------------- */

static bool in_arena(const mig_sandbox *sb, const void *p)
{
    const char *c = p;
    return sb->arena != NULL && c >= sb->arena && c < sb->arena + ARENA_BYTES;
}

/* A state is built, used for a few calls and closed: most of its objects
 * live as long as it does. Bump-allocating them from one block, and freeing
 * them as a no-op, halves the cost of a sandbox (malloc and free of some
 * thousand small objects were a third of it). What is freed early is not
 * reused, so the waste is at most the block; past it, plain malloc. */
static void *arena_take(mig_sandbox *sb, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (sb->arena == NULL || need < n || need > ARENA_BYTES - sb->arena_used)
        return malloc(n);
    void *p = sb->arena + sb->arena_used;
    sb->arena_used += need;
    return p;
}

/* Counts every byte and refuses growth past the limit. It never raises:
 * returning NULL makes Lua raise its own "not enough memory", which the
 * script's pcall may catch; the limit still holds for whatever it does next. */
static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    mig_sandbox *sb = ud;
    size_t old = ptr != NULL ? osize : 0;
    if (nsize == 0) {
        if (!in_arena(sb, ptr))
            free(ptr);
        sb->mem_used -= old;
        return NULL;
    }
    if (nsize > old) {
        size_t limit = sb->mem_limit + sb->headroom;
        if (limit < sb->mem_limit)
            limit = SIZE_MAX;
        if (sb->mem_used > limit || nsize - old > limit - sb->mem_used) {
            sb->limit_hit = true;
            return NULL;
        }
    }
    void *p;
    if (ptr == NULL) {
        p = arena_take(sb, nsize);
    } else if (!in_arena(sb, ptr)) {
        p = realloc(ptr, nsize);
    } else if (nsize <= old) {
        p = ptr; /* shrinks in place */
    } else if ((p = arena_take(sb, nsize)) != NULL) {
        memcpy(p, ptr, old);
    }
    if (p == NULL)
        return nsize <= old ? ptr : NULL; /* Lua requires shrinking to succeed */
    sb->mem_used = sb->mem_used - old + nsize;
    return p;
}

/* ---- time ------------------------------------------------------------------- */

static bool past(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* lua_pushfstring knows no %u: the limit goes through %I. */
static int timed_out_error(lua_State *L)
{
    mig_sandbox *sb = sandbox_of(L);
    return luaL_error(L, "%s timed out after %I ms", sb->phase, (lua_Integer)sb->cfg.timeout_ms);
}

/* Once the deadline has passed, the hook re-arms itself to fire at every
 * instruction: a script that catches the timeout with pcall is interrupted
 * again at its very next instruction, so the error always reaches the top. */
static void sb_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    mig_sandbox *sb = sandbox_of(L);
    if (!sb->timed_out) {
        if (!past(&sb->deadline))
            return;
        sb->timed_out = true;
    }
    lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
    /* In a hook the running Lua function is level 0, not 1: blame it. */
    luaL_where(L, 0);
    lua_pushfstring(L, "%s timed out after %I ms", sb->phase, (lua_Integer)sb->cfg.timeout_ms);
    lua_concat(L, 2);
    lua_error(L);
}

static void arm_deadline(mig_sandbox *sb)
{
    sb->timed_out = false;
    if (sb->cfg.timeout_ms == 0) {
        lua_sethook(sb->L, NULL, 0, 0);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &sb->deadline);
    sb->deadline.tv_sec += sb->cfg.timeout_ms / 1000;
    sb->deadline.tv_nsec += (long)(sb->cfg.timeout_ms % 1000) * 1000000L;
    if (sb->deadline.tv_nsec >= 1000000000L) {
        sb->deadline.tv_sec++;
        sb->deadline.tv_nsec -= 1000000000L;
    }
    lua_sethook(sb->L, sb_hook, LUA_MASKCOUNT, HOOK_EVERY);
}

/* ---- errors -------------------------------------------------------------------- */

/* Message handler: the error with a traceback (file:line of every frame). */
static int sb_msgh(lua_State *L)
{
    sandbox_of(L)->headroom = ERROR_HEADROOM;
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* The message of a failed lua_pcall, as malloc'd text with its cause made
 * plain (timeout, memory limit). */
static char *failure_text(mig_sandbox *sb, int status)
{
    const char *msg = lua_type(sb->L, -1) == LUA_TSTRING ? lua_tostring(sb->L, -1) : NULL;
    char head[160] = "";
    if (sb->timed_out && (msg == NULL || strstr(msg, "timed out after") == NULL))
        snprintf(head, sizeof head, "%s timed out after %u ms: ", sb->phase, sb->cfg.timeout_ms);
    else if (status == LUA_ERRMEM && sb->limit_hit)
        snprintf(head, sizeof head, "memory limit of %zu bytes exceeded: ", sb->mem_limit);
    else if (status == LUA_ERRERR)
        snprintf(head, sizeof head, "error while reporting an error: ");
    if (msg == NULL)
        msg = status == LUA_ERRMEM ? "not enough memory" : "(no error message)";
    size_t n = strlen(head) + strlen(msg) + 1;
    char *text = malloc(n);
    if (text != NULL)
        snprintf(text, n, "%s%s", head, msg);
    return text;
}

/* ---- the environment ------------------------------------------------------------- */

/* load(): text chunks only, whatever mode the caller asks for. */
static int sb_load(lua_State *L)
{
    int n = lua_gettop(L);
    if (n < 3)
        lua_settop(L, 3); /* env (4th) keeps its "absent" meaning */
    if (!lua_isnoneornil(L, 3) && strcmp(luaL_checkstring(L, 3), "t") != 0)
        return luaL_error(L, "load: only text chunks can be loaded (mode \"t\")");
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n < 3 ? 3 : n, LUA_MULTRET);
    return lua_gettop(L);
}

/* collectgarbage(): "count" only; a script has no business steering the
 * collector of a state that lives for one call. */
static int sb_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage: only \"count\" is allowed in a migration");
    lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) +
                          (lua_Number)lua_gc(L, LUA_GCCOUNTB, 0) / 1024);
    return 1;
}

/* setmetatable(): no __gc. A finalizer runs where no hook can interrupt it
 * (also inside lua_close), so a loop there would hang the host. */
static void open_lazy_libraries(lua_State *L);

static int sb_setmetatable(lua_State *L)
{
    lua_settop(L, 2);
    /* The globals' own metatable opens libraries on first use (see
     * open_lazy_libraries); a script's replaces it, so all open first. */
    lua_pushglobaltable(L);
    if (lua_rawequal(L, 1, -1)) {
        open_lazy_libraries(L);
        lua_pushnil(L);
        lua_setmetatable(L, 1);
    }
    lua_settop(L, 2);
    /* Raw, as Lua itself looks __gc up: an __index cannot hide one. */
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc metamethods are not allowed in migrations");
        lua_settop(L, 2);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

/* ---- after a timeout -------------------------------------------------------------
 * An error raised from a hook leaves hooks disabled in its thread until a
 * protected call restores them, and Lua runs two kinds of script code in
 * that window: an xpcall message handler, and the __close handlers of a
 * coroutine that died (run by coroutine.close and coroutine.wrap). A loop
 * there could never be interrupted, so once the deadline has passed none of
 * them runs. */


static int sb_xpcall_handler(lua_State *L)
{
    if (sandbox_of(L)->timed_out)
        return 1; /* the timeout passes through untouched */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int finish_call(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return lua_gettop(L);
}

static int sb_xpcall(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, sb_xpcall_handler, 1);
    lua_replace(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the original xpcall */
    lua_insert(L, 1);
    /* With a continuation, so the protected function may still yield. */
    lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, finish_call);
    return lua_gettop(L);
}

static int sb_coclose(lua_State *L)
{
    if (sandbox_of(L)->timed_out)
        return timed_out_error(L);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the original coroutine.close */
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* coroutine.wrap's function: resume, and on an error close the dead
 * coroutine (unless timed out) and raise the error in the caller. */
static int sb_wrap_call(lua_State *L)
{
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(2)); /* coroutine.resume */
    lua_pushvalue(L, lua_upvalueindex(1)); /* the coroutine */
    lua_rotate(L, 1, 2);
    lua_call(L, n + 1, LUA_MULTRET);
    if (lua_toboolean(L, 1))
        return lua_gettop(L) - 1;
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int status = lua_status(co);
    if (status != LUA_OK && status != LUA_YIELD) {
        if (sandbox_of(L)->timed_out)
            return timed_out_error(L);
        lua_resetthread(co); /* runs its pending __close handlers */
    }
    lua_settop(L, 2);
    if (lua_type(L, 2) == LUA_TSTRING) { /* as the stock wrap: add where */
        luaL_where(L, 1);
        lua_insert(L, 2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

static int sb_cowrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, sb_wrap_call, 2);
    return 1;
}

/* The coroutine library, with close and wrap guarded. */
static int open_coroutine(lua_State *L)
{
    luaopen_coroutine(L);
    lua_getfield(L, -1, "close");
    lua_pushcclosure(L, sb_coclose, 1);
    lua_setfield(L, -2, "close");
    lua_getfield(L, -1, "resume");
    lua_pushcclosure(L, sb_cowrap, 1);
    lua_setfield(L, -2, "wrap");
    return 1;
}

static int sb_log(lua_State *L)
{
    mig_sandbox *sb = sandbox_of(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    if (sb->cfg.log != NULL)
        sb->cfg.log(sb->cfg.log_ud, (int)lua_tointeger(L, lua_upvalueindex(1)), msg, len);
    return 0;
}

static void open_log(lua_State *L)
{
    static const char *const names[] = {"info", "warn", "error"};
    lua_createtable(L, 0, 3);
    for (int level = 0; level < 3; level++) {
        lua_pushinteger(L, level);
        lua_pushcclosure(L, sb_log, 1);
        lua_setfield(L, -2, names[level]);
    }
}

static int readonly_newindex(lua_State *L)
{
    return luaL_error(L, "migration.%s: the migration table is read-only",
                      luaL_optstring(L, 2, "?"));
}

/* The iterator of every __pairs below: C, so a script replacing the global
 * `next` cannot change what pairs() sees. */
static int raw_next(lua_State *L)
{
    lua_settop(L, 2);
    return lua_next(L, 1) ? 2 : 0;
}

/* Returns what pairs() wants for a raw walk of the table at index t. */
static int raw_pairs(lua_State *L, int t)
{
    lua_pushcfunction(L, raw_next);
    lua_pushvalue(L, t);
    lua_pushnil(L);
    return 3;
}

/* Stack: t, mt (its __index set). Completes mt with newindex, pairs and a
 * hidden __metatable, and sets it as t's metatable. */
static void guard_with(lua_State *L, lua_CFunction newindex, lua_CFunction pairs)
{
    lua_pushcfunction(L, newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

/* Iterates the data behind the proxy. */
static int readonly_pairs(lua_State *L)
{
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "__index");
    return raw_pairs(L, lua_gettop(L));
}

/* `migration`: a read-only view of who this script is and what run it is in. */
static void open_migration(lua_State *L, const mig_sandbox *sb)
{
    const mig_entry *e = sb->cfg.entry;
    lua_newtable(L); /* the proxy */
    lua_createtable(L, 0, 4);
    lua_createtable(L, 0, 7);
    lua_pushstring(L, e->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, e->version);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, e->path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, sb->cfg.from);
    lua_setfield(L, -2, "from_version");
    lua_pushstring(L, sb->cfg.to);
    lua_setfield(L, -2, "to_version");
    lua_pushboolean(L, sb->cfg.dry_run);
    lua_setfield(L, -2, "dry_run");
    lua_pushstring(L, sb->fsenv.home);
    lua_setfield(L, -2, "home");
    lua_setfield(L, -2, "__index");
    guard_with(L, readonly_newindex, readonly_pairs);
}

/* ---- require ------------------------------------------------------------------ */

static bool valid_module_name(const char *name)
{
    /* Dotted identifiers only: no "/", no "..", nothing that leaves the two
     * directories require() may read, and no numbered migration. */
    bool start = true;
    for (const char *p = name; *p; p++) {
        if (*p == '.') {
            if (start)
                return false;
            start = true;
        } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                   (!start && ((*p >= '0' && *p <= '9') || *p == '-'))) {
            start = false;
        } else {
            return false;
        }
    }
    return !start;
}

/* Loads dir/rel.lua as text; pushes the chunk and returns LUA_OK, or
 * returns an errno value (ENOENT: not there) with nothing pushed, or raises
 * a syntax error. */
static int load_module_file(lua_State *L, const char *dir, const char *rel)
{
    const char *path = lua_pushfstring(L, "%s/%s.lua", dir, rel);
    char *src = NULL;
    size_t len = 0;
    int e = mig_read_file(path, MAX_MODULE_BYTES, &src, &len);
    if (e != 0) {
        lua_pop(L, 1);
        return e;
    }
    lua_pushfstring(L, "@%s", path); /* may raise: src must not leak */
    int status = luaL_loadbufferx(L, src, len, lua_tostring(L, -1), "t");
    free(src);
    if (status != LUA_OK)
        return lua_error(L);
    lua_replace(L, -3); /* the chunk where the path was */
    lua_pop(L, 1);
    return LUA_OK;
}

static int sb_require(lua_State *L)
{
    mig_sandbox *sb = sandbox_of(L);
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &KEY_LOADED); /* 2 */
    if (lua_getfield(L, 2, name) != LUA_TNIL) {
        if (lua_touserdata(L, -1) == &LOADING)
            return luaL_error(L, "require: module '%s' requires itself (a loop)", name);
        return 1;
    }
    lua_pop(L, 1);
    if (!valid_module_name(name))
        return luaL_error(L, "require: '%s' is not a module name (dotted identifiers only)", name);
    luaL_gsub(L, name, ".", "/"); /* 3 */
    const char *rel = lua_tostring(L, 3);
    const char *lib = lua_pushfstring(L, "%s/lib", sb->cfg.migrations_dir); /* 4 */
    int e = load_module_file(L, sb->cfg.entry->dir, rel);
    if (e == ENOENT)
        e = load_module_file(L, lib, rel);
    if (e != LUA_OK) {
        char buf[128];
        return luaL_error(L, "require: module '%s' not found (%s in %s/%s.lua and %s/%s.lua)",
                          name, mig_strerror(e, buf, sizeof buf), sb->cfg.entry->dir, rel, lib,
                          rel);
    }
    lua_pushlightuserdata(L, (void *)&LOADING);
    lua_setfield(L, 2, name);
    lua_pushvalue(L, 1);
    int status = lua_pcall(L, 1, 1, 0);
    if (status != LUA_OK) {
        lua_pushnil(L);
        lua_setfield(L, 2, name); /* a later require may try again */
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, 2, name);
    return 1;
}

/* ---- building the state ---------------------------------------------------------- */

static void replace_global(lua_State *L, const char *name, lua_CFunction fn, bool wrap_original)
{
    if (wrap_original) {
        lua_getglobal(L, name);
        lua_pushcclosure(L, fn, 1);
    } else {
        lua_pushcfunction(L, fn);
    }
    lua_setglobal(L, name);
}

/* os: only the clock and environment readers; exit/execute/remove/
 * rename/tmpname/setlocale act on the host process or bypass fs. */
static int open_os(lua_State *L)
{
    static const char *const keep[] = {"time", "clock", "date", "difftime", "getenv", NULL};
    luaopen_os(L);
    lua_createtable(L, 0, 5);
    for (const char *const *k = keep; *k != NULL; k++) {
        lua_getfield(L, -2, *k);
        lua_setfield(L, -2, *k);
    }
    return 1;
}

/* ---- libraries opened on first use -------------------------------------------------
 * Registering a library's functions costs about 900 instructions a name
 * (each is interned and inserted), and a sandbox is built for every
 * script; most scripts never touch table, math, utf8, coroutine or os.
 * Those five start out absent from the globals, whose metatable opens one
 * the first time its name is read and stores it there. Assigning the name
 * first (`math = nil` included) settles it for good; pairs(_G) and a
 * script's own setmetatable(_G, ...) open every one still pending, so only
 * raw access to the globals (rawget, rawset, next) before a library's first
 * use can tell. The registry's KEY_LAZY table maps each pending name to its
 * opener. */
static const luaL_Reg lazy_libs[] = {
    {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, open_coroutine},
    {LUA_OSLIBNAME, open_os},        {NULL, NULL},
};

/* Stack: globals, key. Leaves the key's value (nil if not pending) and
 * stores it in the globals. */
static void open_lazy(lua_State *L, int globals, int key)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &KEY_LAZY);
    lua_pushvalue(L, key);
    if (lua_rawget(L, -2) != LUA_TFUNCTION) {
        lua_pop(L, 2);
        lua_pushnil(L);
        return;
    }
    lua_pushvalue(L, key);
    lua_pushnil(L);
    lua_rawset(L, -4); /* no longer pending, whatever the opener does */
    lua_call(L, 0, 1);
    lua_remove(L, -2);
    lua_pushvalue(L, key);
    lua_pushvalue(L, -2);
    lua_rawset(L, globals);
}

static int lazy_index(lua_State *L)
{
    lua_settop(L, 2);
    if (lua_type(L, 2) == LUA_TSTRING)
        open_lazy(L, 1, 2);
    else
        lua_pushnil(L);
    return 1;
}

static int lazy_newindex(lua_State *L)
{
    lua_settop(L, 3);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &KEY_LAZY);
    lua_pushvalue(L, 2);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_rawset(L, 1);
    return 0;
}

/* The `yaml` module opens on first use too (most scripts never touch it).
 * Its opener holds json.decode as the sandbox made it: yaml shares its
 * upvalues (marker metatables, key orders), and a script may have replaced
 * json.decode by the time yaml opens. */
#define LAZY_YAML "yaml"

/* One yaml table per sandbox, whoever asks first (the global or
 * fs.read_yaml): kept in the registry, where scripts cannot replace it. */
static int open_yaml_lazily(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &KEY_YAML) == LUA_TTABLE)
        return 1;
    lua_pop(L, 1);
    mig_open_yaml(L, lua_upvalueindex(1));
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &KEY_YAML);
    return 1;
}

static void open_lazy_libraries(lua_State *L)
{
    int top = lua_gettop(L);
    lua_pushglobaltable(L);
    for (const luaL_Reg *lib = lazy_libs; lib->func != NULL; lib++) {
        lua_pushstring(L, lib->name);
        open_lazy(L, top + 1, top + 2);
        lua_settop(L, top + 1);
    }
    lua_pushliteral(L, LAZY_YAML);
    open_lazy(L, top + 1, top + 2);
    lua_settop(L, top);
}

static int lazy_pairs(lua_State *L)
{
    open_lazy_libraries(L);
    return raw_pairs(L, 1);
}

static void defer_libraries(lua_State *L)
{
    lua_createtable(L, 0, 6);
    for (const luaL_Reg *lib = lazy_libs; lib->func != NULL; lib++) {
        lua_pushcfunction(L, lib->func);
        lua_setfield(L, -2, lib->name);
    }
    lua_pushglobaltable(L);
    lua_pushliteral(L, "json");
    lua_rawget(L, -2);
    lua_getfield(L, -1, "decode");
    lua_pushcclosure(L, open_yaml_lazily, 1);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &KEY_YAML_OPENER);
    lua_setfield(L, -4, LAZY_YAML);
    lua_pop(L, 2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &KEY_LAZY);
    lua_pushglobaltable(L);
    lua_createtable(L, 0, 4);
    lua_pushcfunction(L, lazy_index);
    lua_setfield(L, -2, "__index");
    guard_with(L, lazy_newindex, lazy_pairs);
    lua_pop(L, 1);
}

static void open_base_libraries(lua_State *L)
{
    /* Never luaL_openlibs: it opens io, debug and package (whose loadlib
     * let Redis scripts out, CVE-2022-0543). */
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    lua_pop(L, 2);
    /* dofile/loadfile read any file, bypassing fs confinement. */
    lua_pushnil(L);
    lua_setglobal(L, "dofile");
    lua_pushnil(L);
    lua_setglobal(L, "loadfile");
    replace_global(L, "load", sb_load, true);
    replace_global(L, "collectgarbage", sb_collectgarbage, false);
    replace_global(L, "setmetatable", sb_setmetatable, true);
    replace_global(L, "require", sb_require, false);
    replace_global(L, "xpcall", sb_xpcall, true);
    /* string.dump makes bytecode, the way to forge a malicious binary chunk. */
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    /* The string metatable is shared by every string; hide it. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
}

/* ---- fs helpers written in Lua ---------------------------------------------------
 * Compiling lua/fs.lua was most of the cost of a sandbox, and most scripts
 * never call the helpers it adds (join, read_json, write_json). So `fs`
 * starts with the C primitives and a protected metatable whose first miss,
 * new key or pairs(fs) runs lua/fs.lua, drops the metatable and answers as
 * if the helpers had always been there. */

/* Upvalue 1: the json table. Runs lua/fs.lua with (fs, json, the yaml
 * module's opener) once. */
static void load_fs_helpers(lua_State *L, int fs)
{
    if (!lua_getmetatable(L, fs))
        return; /* already loaded */
    lua_pop(L, 1);
    /* Dropped first: lua/fs.lua's own assignments must land in fs itself. */
    lua_pushnil(L);
    lua_setmetatable(L, fs);
    const mig_embedded *lua_fs = mig_embedded_find("lua/fs.lua");
    if (lua_fs == NULL)
        luaL_error(L, "lua/fs.lua is not embedded in this build");
    if (luaL_loadbufferx(L, lua_fs->data, lua_fs->len, "@lua/fs.lua", "t") != LUA_OK)
        lua_error(L);
    lua_pushvalue(L, fs);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_rawgetp(L, LUA_REGISTRYINDEX, &KEY_YAML_OPENER);
    lua_call(L, 3, 0);
}

static int fs_lazy_index(lua_State *L)
{
    load_fs_helpers(L, 1);
    lua_settop(L, 2);
    lua_rawget(L, 1);
    return 1;
}

/* A script's own fs.join = ... must not be overwritten by a later load. */
static int fs_lazy_newindex(lua_State *L)
{
    load_fs_helpers(L, 1);
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

static int fs_lazy_pairs(lua_State *L)
{
    load_fs_helpers(L, 1);
    return raw_pairs(L, 1);
}

/* Stack: json, fs. */
static void defer_fs_helpers(lua_State *L)
{
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, fs_lazy_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, fs_lazy_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, fs_lazy_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

static void open_modules(lua_State *L, mig_sandbox *sb)
{
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &KEY_LOADED);
    open_log(L);
    /* print and warn write to the host's stdout/stderr; a library must not,
     * so both become log lines. */
    lua_getfield(L, -1, "info");
    lua_setglobal(L, "print");
    lua_getfield(L, -1, "warn");
    lua_setglobal(L, "warn");
    lua_setglobal(L, "log");
    mig_open_semver(L);
    lua_setglobal(L, "semver");
    open_migration(L, sb);
    lua_setglobal(L, "migration");
    mig_open_json(L);
    mig_open_fs(L, &sb->fsenv);
    defer_fs_helpers(L);
    lua_setglobal(L, "fs");
    lua_setglobal(L, "json");
}

/* Finds check() and migrate(): in the table the chunk returned, else among
 * its globals. rawget, so a metatable cannot fake them. */
static void register_functions(lua_State *L, const char *path)
{
    static const struct { const char *name; const char *key; } fns[] = {
        {"check", &KEY_CHECK}, {"migrate", &KEY_MIGRATE}};
    bool returned_table = lua_type(L, -1) == LUA_TTABLE;
    if (!returned_table)
        lua_pushglobaltable(L);
    for (size_t i = 0; i < 2; i++) {
        lua_pushstring(L, fns[i].name);
        if (lua_rawget(L, -2) != LUA_TFUNCTION)
            luaL_error(L, "%s: no %s() function (define a global function %s(), or return a "
                          "table that has one)%s",
                       path, fns[i].name, fns[i].name,
                       returned_table ? "; the script returned a table without it" : "");
        lua_rawsetp(L, LUA_REGISTRYINDEX, fns[i].key);
    }
}

/* Runs in protected mode: builds the environment, loads and runs the
 * script's top level, registers check() and migrate(). */
static int sb_setup(lua_State *L)
{
    mig_sandbox *sb = sandbox_of(L);
    const char *source = lua_touserdata(L, 1);
    size_t len = (size_t)lua_tointeger(L, 2);
    lua_settop(L, 0);
    open_base_libraries(L);
    open_modules(L, sb);
    defer_libraries(L);
    const char *chunkname = lua_pushfstring(L, "@%s", sb->cfg.entry->path);
    if (luaL_loadbufferx(L, source, len, chunkname, "t") != LUA_OK)
        return lua_error(L);
    lua_call(L, 0, 1);
    register_functions(L, sb->cfg.entry->path);
    return 0;
}

int mig_sandbox_new(const mig_sandbox_config *cfg, const char *source, size_t len,
                    mig_sandbox **out, char **message)
{
    *out = NULL;
    *message = NULL;
    MIG_TEST_SEAM("sandbox:new");
    mig_sandbox *sb = calloc(1, sizeof *sb);
    if (sb == NULL)
        return MIGRATE_ENOMEM;
    sb->cfg = *cfg;
    sb->fsenv = cfg->fsenv;
    sb->fsenv.readonly_reason = READONLY_TOP;
    sb->fsenv.closed_reason = CLOSED_TOP;
    sb->mem_limit = cfg->memory_limit ? cfg->memory_limit : SIZE_MAX;
    sb->phase = "the top level";
    sb->arena = ARENA_BYTES > 0 ? malloc(ARENA_BYTES) : NULL; /* NULL: plain malloc */
    sb->L = lua_newstate(sb_alloc, sb);
    if (sb->L == NULL) {
        bool limit = sb->limit_hit;
        free(sb->arena);
        free(sb);
        if (!limit)
            return MIGRATE_ENOMEM;
        *message = strdup("memory_limit is too small to create a Lua state");
        return MIGRATE_EMANIFEST;
    }
    *(mig_sandbox **)lua_getextraspace(sb->L) = sb;
    lua_pushcfunction(sb->L, sb_msgh);
    lua_pushcfunction(sb->L, sb_setup);
    lua_pushlightuserdata(sb->L, (void *)source);
    lua_pushinteger(sb->L, (lua_Integer)len);
    arm_deadline(sb);
    int status = lua_pcall(sb->L, 2, 0, 1);
    sb->headroom = 0;
    if (status != LUA_OK) {
        *message = failure_text(sb, status);
        mig_sandbox_free(sb);
        return MIGRATE_EMANIFEST;
    }
    lua_settop(sb->L, 0);
    *out = sb;
    return MIGRATE_OK;
}

/* ---- calling check() and migrate() ---------------------------------------------- */

/* Runs in protected mode: calls the function and turns what it returned
 * into (kind, message). A non-boolean is a broken contract, most often a
 * forgotten `return`. */
static int sb_invoke(lua_State *L)
{
    mig_sandbox *sb = sandbox_of(L);
    const void *key = lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_rawgetp(L, LUA_REGISTRYINDEX, key);
    lua_call(L, 0, 2);
    if (lua_type(L, 1) != LUA_TBOOLEAN) {
        const char *got = lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER
                              ? lua_pushfstring(L, "%s %s", luaL_typename(L, 1),
                                                luaL_tolstring(L, 1, NULL))
                              : luaL_typename(L, 1);
        lua_pushinteger(L, MIG_CALL_ERROR);
        lua_pushfstring(L, "%s returned %s; it must return %s (a forgotten `return`?)",
                        sb->phase, got,
                        key == &KEY_CHECK ? "true or false" : "true, or false and a reason");
        return 2;
    }
    bool ok = lua_toboolean(L, 1);
    lua_pushinteger(L, ok ? MIG_CALL_TRUE : MIG_CALL_FALSE);
    if (!ok && !lua_isnil(L, 2))
        luaL_tolstring(L, 2, NULL);
    else
        lua_pushnil(L);
    return 2;
}

mig_call_result mig_sandbox_call(mig_sandbox *sb, const char *fn, const char *readonly_reason,
                                 char **message)
{
    lua_State *L = sb->L;
    bool check = strcmp(fn, "check") == 0;
    *message = NULL;
    sb->phase = check ? "check()" : "migrate()";
    sb->fsenv.readonly_reason = check ? READONLY_CHECK : readonly_reason;
    sb->fsenv.closed_reason = NULL;
    sb->limit_hit = false;
    lua_settop(L, 0);
    lua_pushcfunction(L, sb_msgh);
    lua_pushcfunction(L, sb_invoke);
    lua_pushlightuserdata(L, (void *)(check ? &KEY_CHECK : &KEY_MIGRATE));
    arm_deadline(sb);
    int status = lua_pcall(L, 1, 2, 1);
    lua_sethook(L, NULL, 0, 0);
    sb->headroom = 0;
    if (status != LUA_OK) {
        *message = failure_text(sb, status);
        lua_settop(L, 0);
        return MIG_CALL_ERROR;
    }
    mig_call_result kind = (mig_call_result)lua_tointeger(L, -2);
    if (lua_type(L, -1) == LUA_TSTRING)
        *message = strdup(lua_tostring(L, -1));
    lua_settop(L, 0);
    return kind;
}

size_t mig_sandbox_footprint(const mig_sandbox *sb)
{
    return sizeof *sb + (sb->arena != NULL ? ARENA_BYTES : 0) + sb->mem_used;
}

void mig_sandbox_free(mig_sandbox *sb)
{
    if (sb == NULL)
        return;
    if (sb->L != NULL)
        lua_close(sb->L);
    free(sb->arena);
    free(sb);
}
