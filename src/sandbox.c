/* sandbox.c - a fresh, locked-down Lua state per migration script (SPEC §3).
 *
 * What a script can reach is an explicit allow-list; each exclusion below
 * says why. Every call into Lua that can allocate runs inside lua_pcall, so
 * no error ever reaches the panic handler (which would abort the host). */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The timeout is checked every this many VM instructions: often enough to
 * stop within microseconds, rarely enough to cost nothing measurable. */
#define HOOK_EVERY 1000
/* The call hook reads the clock every this many calls (a power of two). */
#define CLOCK_EVERY 256u
/* C stack a call may use below the frame that started it. The library's
 * MIGRATE_MIN_STACK leaves room past it for the host's and the library's
 * own frames, the last C function's frame and the error path (traceback). */
#define SCRIPT_STACK (MIGRATE_MIN_STACK / 2)
#ifdef MIGRATE_TEST_SEAMS
/* At MIGRATE_MIN_STACK, Lua's own limit of 200 nested C calls comes first
 * (about 420 KiB of the 512 here): test_deadline lowers this to reach the
 * guard. */
size_t mig_test_script_stack = SCRIPT_STACK;
#define SCRIPT_BUDGET mig_test_script_stack
#else
#define SCRIPT_BUDGET SCRIPT_STACK
#endif
/* Free stack migrate_run() insists on: the minimum less what a thread's
 * own use (TLS, the host's frames above the call) may take of it. */
#define STACK_NEEDED (MIGRATE_MIN_STACK - MIGRATE_MIN_STACK / 8)
/* coroutine.close inside __close handlers inside coroutine.close...: stock
 * Lua 5.4.4 does not count these nested C calls and overflows the C stack
 * near 10,000 (the C-stack guard would stop it; this bound says why). */
#define MAX_CLOSE_NESTING 64
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
    const char *fatal; /* NULL, FATAL_TIMEOUT, FATAL_CANCEL or FATAL_STACK: see sb_hook() */
    unsigned calls;    /* calls seen by the hook, all threads together */
    const char *stack_base; /* the C stack where the call began */
    int close_depth;   /* coroutine.close calls nested in __close handlers */
    const char *phase; /* "check", "migrate", "top level": for messages */
};

/* Registry keys (their addresses are unique, their values irrelevant). */
static const char KEY_CHECK = 'c', KEY_MIGRATE = 'm', KEY_LOADED = 'l', LOADING = 'L',
                  KEY_LAZY = 'z', KEY_YAML = 'y', KEY_YAML_OPENER = 'Y', KEY_JSON = 'j';

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

static const char FATAL_TIMEOUT[] = "timed out";
static const char FATAL_CANCEL[] =
    "cancelled: the host's event callback asked the run to stop";
static const char FATAL_STACK[] =
    "C stack overflow: calls nested through C functions (gsub callbacks, sort comparators, "
    "metamethods, coroutines) deeper than a migration may";

static void sb_hook(lua_State *L, lua_Debug *ar);

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

/* ---- the deadline and the C-stack guard ------------------------------------------
 * One deadline per call, on the wall clock, shared by every thread of the
 * state (SPEC §3). Lua's hooks are per thread and a count hook counts each
 * thread's instructions apart, so a script whose coroutines each run a few
 * hundred instructions would never be interrupted; the call hook therefore
 * counts calls for the whole sandbox and reads the clock every CLOCK_EVERY
 * of them, and every coroutine gets the hook when it is made or resumed.
 *
 * A cancel (cfg.cancel set by the host's event callback) is read at the
 * same points and takes the same path as the deadline.
 *
 * Once the deadline has passed, the run is cancelled, or the C stack is
 * spent, the failure is *fatal*: sticky for the rest of the call. The hook re-arms itself at
 * every instruction, every function that catches an error (pcall, xpcall,
 * coroutine.resume/close/wrap, load's reader) raises it again on return,
 * none of the script's error handlers or __close handlers of dead
 * coroutines runs, and the call fails even if the script swallowed it and
 * returned true. */

static bool past(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static bool deadline_passed(mig_sandbox *sb)
{
    return sb->cfg.timeout_ms != 0 && past(&sb->deadline);
}

/* The fatal error the call must stop with now, or NULL. */
static const char *stop_reason(mig_sandbox *sb)
{
    if (sb->cfg.cancel != NULL && *sb->cfg.cancel)
        return FATAL_CANCEL;
    return deadline_passed(sb) ? FATAL_TIMEOUT : NULL;
}

/* Bytes of C stack used since the call began. Coroutines run on the C
 * stack of whoever resumes them, so one measure covers every thread. The
 * stack grows down on every platform the library is built for. */
static size_t stack_used(const mig_sandbox *sb)
{
    const char *here = __builtin_frame_address(0);
    return here < sb->stack_base ? (size_t)(sb->stack_base - here) : 0;
}

static void arm_thread(lua_State *L)
{
    int count = sandbox_of(L)->fatal != NULL ? 1 : HOOK_EVERY;
    lua_sethook(L, sb_hook, LUA_MASKCOUNT | LUA_MASKCALL, count);
}

/* Raises the fatal error in L, blaming the script's function at `level`. */
static int raise_fatal(lua_State *L, int level)
{
    mig_sandbox *sb = sandbox_of(L);
    arm_thread(L);
    luaL_where(L, level);
    if (sb->fatal == FATAL_TIMEOUT)
        lua_pushfstring(L, "%s timed out after %I ms", sb->phase,
                        (lua_Integer)sb->cfg.timeout_ms); /* no %u in pushfstring */
    else
        lua_pushfstring(L, "%s: %s", sb->phase, sb->fatal);
    lua_concat(L, 2);
    return lua_error(L);
}

/* Raises the fatal error if there is one, the deadline has just passed or
 * the run was just cancelled. */
static void check_fatal(lua_State *L, int level)
{
    mig_sandbox *sb = sandbox_of(L);
    if (sb->fatal == NULL)
        sb->fatal = stop_reason(sb);
    if (sb->fatal != NULL)
        raise_fatal(L, level);
}

static void sb_hook(lua_State *L, lua_Debug *ar)
{
    mig_sandbox *sb = sandbox_of(L);
    int level = 0; /* in a count hook the running function is level 0 */
    if (sb->fatal == NULL && ar->event != LUA_HOOKCOUNT) {
        /* A call: the only way C-stack use grows, a C function calling back
         * into Lua (gsub, sort, metamethods, __close) being a call too. */
        level = 1;
        if (stack_used(sb) > SCRIPT_BUDGET)
            sb->fatal = FATAL_STACK;
        else if ((++sb->calls & (CLOCK_EVERY - 1)) != 0)
            return;
    }
    if (sb->fatal == NULL && (sb->fatal = stop_reason(sb)) == NULL)
        return;
    raise_fatal(L, level);
}

void mig_deadline_poll(lua_State *L)
{
    void *ud;
    /* Only a sandbox's states use sb_alloc: the test says whose L this is
     * without trusting the extra space of a foreign state. */
    if (lua_getallocf(L, &ud) != sb_alloc)
        return;
    check_fatal(L, 1);
}

/* Starts a call: the deadline, the stack base and the hook. Hooks stay on
 * without a timeout, for the C-stack guard. */
static void arm_deadline(mig_sandbox *sb)
{
    sb->fatal = NULL;
    sb->close_depth = 0;
    sb->stack_base = __builtin_frame_address(0);
    clock_gettime(CLOCK_MONOTONIC, &sb->deadline);
    sb->deadline.tv_sec += sb->cfg.timeout_ms / 1000;
    sb->deadline.tv_nsec += (long)(sb->cfg.timeout_ms % 1000) * 1000000L;
    if (sb->deadline.tv_nsec >= 1000000000L) {
        sb->deadline.tv_sec++;
        sb->deadline.tv_nsec -= 1000000000L;
    }
    arm_thread(sb->L);
}

/* ---- errors -------------------------------------------------------------------- */

/* Message handler: the error with a traceback (file:line of every frame). */
static int sb_msgh(lua_State *L)
{
    sandbox_of(L)->headroom = ERROR_HEADROOM;
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        /* Once fatal, no script code runs: not even an error's __tostring. */
        if (sandbox_of(L)->fatal == NULL && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
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
    if (sb->fatal == FATAL_TIMEOUT && (msg == NULL || strstr(msg, "timed out after") == NULL))
        snprintf(head, sizeof head, "%s timed out after %u ms: ", sb->phase, sb->cfg.timeout_ms);
    else if (sb->fatal == FATAL_CANCEL && (msg == NULL || strstr(msg, FATAL_CANCEL) == NULL))
        snprintf(head, sizeof head, "%s %s: ", sb->phase, FATAL_CANCEL);
    else if (sb->fatal == FATAL_STACK && (msg == NULL || strstr(msg, FATAL_STACK) == NULL))
        snprintf(head, sizeof head, "%s: %s: ", sb->phase, FATAL_STACK);
    else if (status == LUA_ERRMEM && sb->limit_hit)
        snprintf(head, sizeof head, "memory limit of %zu bytes exceeded: ", sb->mem_limit);
    else if (status == LUA_ERRERR)
        snprintf(head, sizeof head, "error while reporting an error: ");
    if (msg == NULL)
        msg = status == LUA_ERRMEM ? "not enough memory" : "(no error message)";
    char *cut = mig_strdup_cut(msg); /* the script chose its length */
    if (cut == NULL)
        return NULL;
    size_t n = strlen(head) + strlen(cut) + 1;
    char *text = malloc(n);
    if (text != NULL)
        snprintf(text, n, "%s%s", head, cut);
    free(cut);
    return text;
}

/* A call that ended normally after a fatal error: the script caught it in
 * a way no wrapper saw (none is known; this is the last line of defence). */
static char *swallowed_text(const mig_sandbox *sb)
{
    char text[256];
    if (sb->fatal == FATAL_TIMEOUT)
        snprintf(text, sizeof text, "%s timed out after %u ms (the script caught the timeout)",
                 sb->phase, sb->cfg.timeout_ms);
    else if (sb->fatal == FATAL_CANCEL) /* see cancelled_during() */
        snprintf(text, sizeof text, "%s %s", sb->phase, FATAL_CANCEL);
    else
        snprintf(text, sizeof text, "%s: %s (the script caught the error)", sb->phase, sb->fatal);
    return strdup(text);
}

/* A call during which the run was cancelled fails even if it reached no
 * hook after the cancel: the runner must not take its answer and go on
 * (with migrate(), say) as if nothing had happened. */
static void cancelled_during(mig_sandbox *sb, int status)
{
    if (status == LUA_OK && sb->fatal == NULL && sb->cfg.cancel != NULL && *sb->cfg.cancel)
        sb->fatal = FATAL_CANCEL;
}

/* ---- the environment ------------------------------------------------------------- */

static int call_original_checked(lua_State *L);

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
    lua_settop(L, n < 3 ? 3 : n);
    /* A reader function runs protected: load returns its errors. */
    return call_original_checked(L);
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

/* setmetatable(): no __gc, no __mode. A finalizer runs where no hook can interrupt it
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
        /* Weak tables: the collector clears them in atomic steps no hook
         * interrupts, and a long chain of weak-keyed entries (ephemerons)
         * makes that convergence quadratic: minutes, past any deadline. */
        lua_pushliteral(L, "__mode");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: weak tables (__mode) are not allowed in "
                                 "migrations");
        lua_settop(L, 2);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

/* ---- the functions that catch errors ----------------------------------------------
 * Each is the stock function called from a wrapper that first checks the
 * deadline (a chain of short coroutines reaches the clock here) and, once
 * the stock function returns, raises a fatal error it may have swallowed.
 * An error raised from a hook also leaves hooks off in its thread until a
 * protected call restores them, and Lua runs two kinds of script code in
 * that window: an xpcall message handler and the __close handlers of a
 * coroutine that died (run by coroutine.close and coroutine.wrap). Neither
 * runs once the failure is fatal. */

static int finish_call(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    check_fatal(L, 1);
    return lua_gettop(L);
}

/* Calls upvalue 1 with the whole stack as arguments, with a continuation
 * (the protected function may yield), and checks on return. */
static int call_original_checked(lua_State *L)
{
    check_fatal(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, finish_call);
    return finish_call(L, LUA_OK, 0);
}

static int sb_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    return call_original_checked(L);
}

static int sb_xpcall_handler(lua_State *L)
{
    if (sandbox_of(L)->fatal != NULL)
        return 1; /* the fatal error passes through untouched */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int sb_xpcall(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, sb_xpcall_handler, 1);
    lua_replace(L, 2);
    return call_original_checked(L);
}

/* A coroutine made in an earlier call, or by a thread whose hook a fatal
 * error re-armed, gets this call's hook before it runs. */
static void arm_argument(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    if (co != NULL)
        arm_thread(co);
}

/* A new thread for the function at 1, armed with the deadline, pushed. */
static void push_armed_thread(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    check_fatal(L, 1);
    lua_State *co = lua_newthread(L);
    arm_thread(co);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
}

static int sb_cocreate(lua_State *L)
{
    push_armed_thread(L);
    return 1;
}

static int sb_coresume(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTHREAD);
    check_fatal(L, 1);
    arm_argument(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    check_fatal(L, 1);
    return lua_gettop(L);
}

static int close_nested_error(lua_State *L)
{
    return luaL_error(L, "coroutine.close: nested too deeply (more than %d closes inside "
                         "__close handlers)",
                      MAX_CLOSE_NESTING);
}

static int sb_coclose(lua_State *L)
{
    mig_sandbox *sb = sandbox_of(L);
    luaL_checktype(L, 1, LUA_TTHREAD);
    check_fatal(L, 1);
    if (sb->close_depth >= MAX_CLOSE_NESTING)
        return close_nested_error(L);
    arm_argument(L);
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the original coroutine.close */
    lua_insert(L, 1);
    /* Protected, so the depth count comes back down also when it raises
     * ("cannot close a running coroutine"). */
    sb->close_depth++;
    int status = lua_pcall(L, 1, LUA_MULTRET, 0);
    sb->close_depth--;
    check_fatal(L, 1);
    if (status != LUA_OK)
        return lua_error(L);
    return lua_gettop(L);
}

/* coroutine.wrap's function: resume, and on an error close the dead
 * coroutine (unless fatal) and raise the error in the caller. */
static int sb_wrap_call(lua_State *L)
{
    mig_sandbox *sb = sandbox_of(L);
    check_fatal(L, 1);
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    arm_thread(co);
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(2)); /* coroutine.resume */
    lua_pushvalue(L, lua_upvalueindex(1)); /* the coroutine */
    lua_rotate(L, 1, 2);
    lua_call(L, n + 1, LUA_MULTRET);
    check_fatal(L, 1);
    if (lua_toboolean(L, 1))
        return lua_gettop(L) - 1;
    int status = lua_status(co);
    if (status != LUA_OK && status != LUA_YIELD) {
        if (sb->close_depth >= MAX_CLOSE_NESTING)
            return close_nested_error(L);
        sb->close_depth++;
        lua_resetthread(co); /* runs its pending __close handlers; never raises */
        sb->close_depth--;
        check_fatal(L, 1);
    }
    lua_settop(L, 2);
    return mig_raise_at_caller(L); /* as the stock wrap: add where */
}

static int sb_cowrap(lua_State *L)
{
    push_armed_thread(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, sb_wrap_call, 2);
    return 1;
}

/* The coroutine library, with create, resume, close and wrap guarded. */
static int open_coroutine(lua_State *L)
{
    luaopen_coroutine(L);
    lua_pushcfunction(L, sb_cocreate);
    lua_setfield(L, -2, "create");
    lua_getfield(L, -1, "close");
    lua_pushcclosure(L, sb_coclose, 1);
    lua_setfield(L, -2, "close");
    lua_getfield(L, -1, "resume");
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, sb_cowrap, 1);
    lua_setfield(L, -3, "wrap");
    lua_pushcclosure(L, sb_coresume, 1);
    lua_setfield(L, -2, "resume");
    return 1;
}

/* ---- C work bounded by the deadline ----------------------------------------------
 * These stock functions loop in C without calling Lua, so no hook runs
 * there: string.rep('', math.maxinteger) or table.move({}, 1, 1 << 60, 1)
 * would run for ever. Each is replaced by one that does the same work and
 * polls the deadline (the pattern functions are in pattern.c). */

/* Work between two looks at the clock: some microseconds. */
#define POLL_ITEMS 4096u
#define POLL_BYTES (1u << 20)

static int sb_rep(lua_State *L)
{
    mig_sandbox *sb = sandbox_of(L);
    size_t l, lsep;
    const char *s = luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    const char *sep = luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || l + lsep == 0) { /* "" however many times: no loop at all */
        lua_pushliteral(L, "");
        return 1;
    }
    size_t unit = l + lsep;
    if (unit < l || (uint64_t)n > SIZE_MAX / unit)
        return luaL_error(L, "resulting string too large");
    size_t total = (size_t)n * unit - lsep;
    /* Refused before a byte is allocated: the allocator would refuse it
     * too, but only after Lua has tried an emergency collection. */
    if (total > sb->mem_limit)
        return luaL_error(L, "string.rep: the result would be %I bytes, more than memory_limit "
                             "(%I bytes)",
                          (lua_Integer)total, (lua_Integer)sb->mem_limit);
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, total);
    size_t since_poll = 0;
    for (lua_Integer i = 0; i < n; i++) {
        memcpy(p, s, l);
        p += l;
        if (lsep > 0 && i + 1 < n) {
            memcpy(p, sep, lsep);
            p += lsep;
        }
        since_poll += unit + 64; /* + 64: a copy of a few bytes still costs */
        if (since_poll >= POLL_BYTES) {
            since_poll = 0;
            mig_deadline_poll(L);
        }
    }
    luaL_pushresultsize(&b, total);
    return 1;
}

/* table.move in slices of POLL_ITEMS moved by the stock function (which
 * keeps its argument checks and metamethod semantics), in the order that
 * is right for overlapping ranges. Upvalue 1: the stock table.move. */
static void move_slice(lua_State *L, int dest, lua_Integer f, lua_Integer e, lua_Integer t)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushinteger(L, f);
    lua_pushinteger(L, e);
    lua_pushinteger(L, t);
    lua_pushvalue(L, dest);
    lua_call(L, 5, 0);
    mig_deadline_poll(L);
}

static int sb_tmove(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2);
    lua_Integer e = luaL_checkinteger(L, 3);
    lua_Integer t = luaL_checkinteger(L, 4);
    int dest = !lua_isnoneornil(L, 5) ? 5 : 1;
    if (e < f || e - f < (lua_Integer)POLL_ITEMS) { /* small: the stock function at once */
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_insert(L, 1);
        lua_call(L, lua_gettop(L) - 1, 1);
        return 1;
    }
    luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
    lua_Integer n = e - f + 1;
    luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
    lua_settop(L, 5);
    bool backward = !(t > e || t <= f || (dest != 1 && !lua_compare(L, 1, dest, LUA_OPEQ)));
    if (!backward) {
        for (lua_Integer i = 0; i < n; i += (lua_Integer)POLL_ITEMS) {
            lua_Integer m = n - i < (lua_Integer)POLL_ITEMS ? n - i : (lua_Integer)POLL_ITEMS;
            move_slice(L, dest, f + i, f + i + m - 1, t + i);
        }
    } else {
        for (lua_Integer i = n; i > 0;) {
            lua_Integer m = i < (lua_Integer)POLL_ITEMS ? i : (lua_Integer)POLL_ITEMS;
            i -= m;
            move_slice(L, dest, f + i, f + i + m - 1, t + i);
        }
    }
    lua_pushvalue(L, dest);
    return 1;
}

/* table.concat as the stock one, polling. */
static int sb_tconcat(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TTABLE && !luaL_getmetafield(L, 1, "__index"))
        luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 4);
    size_t lsep;
    const char *sep = luaL_optlstring(L, 2, "", &lsep);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    lua_Integer last = lua_isnoneornil(L, 4) ? luaL_len(L, 1) : luaL_checkinteger(L, 4);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (unsigned k = 1; i <= last; i++, k++) {
        lua_geti(L, 1, i);
        if (!lua_isstring(L, -1))
            return luaL_error(L, "invalid value (at index %I) in table for 'concat'", i);
        luaL_addvalue(&b);
        if (i == last)
            break; /* before i++ could overflow at math.maxinteger */
        luaL_addlstring(&b, sep, lsep);
        if (k % POLL_ITEMS == 0)
            mig_deadline_poll(L);
    }
    luaL_pushresult(&b);
    return 1;
}

/* The comparator table.sort gets when the script gives none: Lua's own <,
 * but as a function call, which the call hook counts and times. */
static int sort_less(lua_State *L)
{
    lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
    return 1;
}

static int sb_tsort(lua_State *L)
{
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_pushcfunction(L, sort_less);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 0);
    return 0;
}

static void replace_field(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_getfield(L, -1, name);
    lua_pushcclosure(L, fn, 1);
    lua_setfield(L, -2, name);
}

static int open_table(lua_State *L)
{
    luaopen_table(L);
    replace_field(L, "move", sb_tmove);
    replace_field(L, "concat", sb_tconcat);
    replace_field(L, "sort", sb_tsort);
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
    /* The host's callback may just have cancelled the run: stop here, not
     * at the next hook, so that not one more statement runs. */
    check_fatal(L, 1);
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

/* `migration`: a read-only view of who this script is and what run it is in.
 * The proxy is a userdata, not a table: rawset() on a table proxy would
 * store a field that shadows __index (rawset(migration, 'home', '/')). */
static void open_migration(lua_State *L, const mig_sandbox *sb)
{
    const mig_entry *e = sb->cfg.entry;
    lua_newuserdatauv(L, 0, 0); /* the proxy */
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
    /* Everything that may raise (at the memory limit, any allocation may)
     * happens before src is read: between the read and the free nothing
     * can unwind past it. luaL_loadbufferx reports errors, never raises. */
    const char *chunkname = lua_pushfstring(L, "@%s", path);
    char *src = NULL;
    size_t len = 0;
    int e = mig_read_file(path, MAX_MODULE_BYTES, &src, &len);
    if (e != 0) {
        lua_pop(L, 2);
        return e;
    }
    int status = luaL_loadbufferx(L, src, len, chunkname, "t");
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
/* dotenv is ours but opens the same way: compiling lua/dotenv.lua would
 * cost every sandbox, and few scripts touch a .env file. It builds on the
 * sandbox's own json table (the registry's KEY_JSON), not the global a
 * script may have replaced. */
static int open_dotenv(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &KEY_JSON);
    mig_open_dotenv(L, false);
    return 1;
}

static const luaL_Reg lazy_libs[] = {
    {LUA_TABLIBNAME, open_table}, {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, open_coroutine},
    {LUA_OSLIBNAME, open_os},        {"dotenv", open_dotenv},
    {NULL, NULL},
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
    replace_global(L, "pcall", sb_pcall, true);
    /* string.dump makes bytecode, the way to forge a malicious binary chunk. */
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pushcfunction(L, sb_rep);
    lua_setfield(L, -2, "rep");
    /* The stock pattern functions run in C out of the hook's reach; ours
     * poll the deadline. The string metatable's __index is this table, so
     * s:find() reaches them too. */
    mig_open_patterns(L, -1);
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
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &KEY_JSON);
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
    cancelled_during(sb, status);
    if (status != LUA_OK || sb->fatal != NULL) {
        *message = status != LUA_OK ? failure_text(sb, status) : swallowed_text(sb);
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
    cancelled_during(sb, status);
    if (status != LUA_OK || sb->fatal != NULL) {
        *message = status != LUA_OK ? failure_text(sb, status) : swallowed_text(sb);
        lua_settop(L, 0);
        return MIG_CALL_ERROR;
    }
    mig_call_result kind = (mig_call_result)lua_tointeger(L, -2);
    if (lua_type(L, -1) == LUA_TSTRING)
        *message = mig_strdup_cut(lua_tostring(L, -1));
    lua_settop(L, 0);
    return kind;
}

/* The free stack below the caller, down from here.
 * - Another thread: what pthread_getattr_np says its stack spans.
 * - The main thread: RLIMIT_STACK below its top. Its stack is the one the
 *   kernel grows on demand up to that limit, and the kernel keeps other
 *   mappings out of that range; glibc's own answer for it is a guess from
 *   /proc/self/maps (the gap down to the next mapping), which valgrind
 *   defeats: it grows the stack by mapping new pieces, each looks like a
 *   neighbour, and a forked child's second run under helgrind was told
 *   2 KiB were left of an 8 MiB stack. */
int mig_stack_check(char *err)
{
    pthread_attr_t attr;
    void *low;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return MIGRATE_OK; /* cannot tell: trust the documented requirement */
    int e = pthread_attr_getstack(&attr, &low, &size);
    pthread_attr_destroy(&attr);
    if (e != 0)
        return MIGRATE_OK;
    const char *here = __builtin_frame_address(0);
    const char *top = (const char *)low + size;
    /* A range that does not hold this very frame is no measurement (seen
     * under valgrind in a forked child, which reports a stack elsewhere):
     * trust the documented requirement rather than refuse a good thread. */
    if (here <= (const char *)low || here > top)
        return MIGRATE_OK;
    size_t free_bytes = (size_t)(here - (const char *)low);
    bool main_thread = gettid() == getpid();
    struct rlimit limit;
    if (main_thread && getrlimit(RLIMIT_STACK, &limit) == 0) {
        if (limit.rlim_cur == RLIM_INFINITY)
            return MIGRATE_OK;
        size_t used = (size_t)(top - here);
        free_bytes = limit.rlim_cur > used ? (size_t)limit.rlim_cur - used : 0;
    }
    if (free_bytes >= STACK_NEEDED)
        return MIGRATE_OK;
    return mig_errf(err, MIGRATE_EINVAL,
                    "the calling thread has %zu KiB of stack free; migrate_run() needs %zu KiB "
                    "(give the thread a stack of at least MIGRATE_MIN_STACK, %u KiB%s)",
                    free_bytes >> 10, (size_t)STACK_NEEDED >> 10, MIGRATE_MIN_STACK >> 10,
                    main_thread ? ": this is the main thread, raise RLIMIT_STACK" : "");
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
