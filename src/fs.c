/* fs.c - the `fs` module: how a migration script touches the user's files
 * (SPEC §5).
 *
 * Every path is resolved here the way the kernel would resolve it (symlinks
 * of existing components followed, ".." taken after them), then confined to
 * the allowed roots; the system call then acts on the resolved path. Errors
 * are raised, never returned: a migration must not carry on after a lost
 * write. No Lua function is called while a file descriptor, DIR* or malloc'd
 * block is held, since a Lua error would longjmp past its release. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

#define MAX_LINKS 40          /* as the kernel: more is ELOOP */
#define MAX_TREE_DEPTH 256    /* remove_tree holds one directory open per level */
#define MAX_PASSES 8          /* remove_tree re-reads a directory that filled up again */
#define READ_ATTEMPTS 24      /* fs.read retries a file that grows while read */
#define LIST_ATTEMPTS 8       /* fs.list retries a directory that grows while read */
#define COPY_BUFFER (64 * 1024)

/* Error codes of our own beside errno values, for path_error(). */
enum { RELATIVE_PATH = -1, NOT_REGULAR = -2, NUL_IN_PATH = -3 };

typedef enum link_mode {
    FOLLOW,     /* the final component is followed if it is a link */
    KEEP_FINAL  /* the final component names the link itself */
} link_mode;

/* Scratch space of one resolution. Lua memory (a userdata), so it counts
 * against the script's limit and is collected if an error unwinds. */
typedef struct resolver {
    char out[PATH_MAX];  /* resolved so far; "" stands for "/" */
    size_t out_len;
    char rest[PATH_MAX]; /* components still to resolve */
    char link[PATH_MAX]; /* a link's target, spliced in front of rest */
    int missing;         /* trailing components of out that do not exist */
    int links;
} resolver;

static mig_fsenv *fs_env(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* ---- Errors -------------------------------------------------------------- */

static const char *error_text(int err, char *buf, size_t len)
{
    switch (err) {
    case RELATIVE_PATH: return "relative paths are not allowed (use \"~/...\" or an absolute path)";
    case NOT_REGULAR: return "not a regular file";
    case NUL_IN_PATH: return "path contains a NUL byte";
    default: return mig_strerror(err, buf, len);
    }
}

/* Raises `fs.<fn>: "<path as given>": <reason>`. */
static int path_error(lua_State *L, const char *fn, int arg, int err)
{
    char buf[128];
    return luaL_error(L, "fs.%s: \"%s\": %s", fn, lua_tostring(L, arg),
                      error_text(err, buf, sizeof buf));
}

static int stage_error(lua_State *L, const char *fn, int arg, const char *stage, int err)
{
    if (strcmp(stage, "open") == 0)
        return path_error(L, fn, arg, err);
    char buf[128];
    return luaL_error(L, "fs.%s: \"%s\": %s: %s", fn, lua_tostring(L, arg), stage,
                      error_text(err, buf, sizeof buf));
}

/* ---- Path resolution ------------------------------------------------------- */

/* "~" or "~/..." becomes home + rest; absolute paths are copied. */
static int expand_into(const mig_fsenv *env, const char *path, char dst[PATH_MAX])
{
    const char *prefix = "";
    if (path[0] == '~' && (path[1] == '\0' || path[1] == '/')) {
        prefix = env->home;
        path++;
    } else if (path[0] != '/') {
        return RELATIVE_PATH;
    }
    int n = snprintf(dst, PATH_MAX, "%s%s", prefix, path);
    return n < 0 || n >= PATH_MAX ? ENAMETOOLONG : 0;
}

/* The next component of r->rest at *pos; false when none is left. */
static bool next_component(const char *rest, size_t *pos, const char **name, size_t *len)
{
    while (rest[*pos] == '/')
        (*pos)++;
    if (rest[*pos] == '\0')
        return false;
    *name = rest + *pos;
    *len = strcspn(*name, "/");
    *pos += *len;
    return true;
}

static void pop_component(resolver *r)
{
    while (r->out_len > 0 && r->out[r->out_len - 1] != '/')
        r->out_len--;
    if (r->out_len > 0)
        r->out_len--;
    r->out[r->out_len] = '\0';
}

static int push_component(resolver *r, const char *name, size_t len)
{
    if (r->out_len + 1 + len >= PATH_MAX)
        return ENAMETOOLONG;
    r->out[r->out_len++] = '/';
    memcpy(r->out + r->out_len, name, len);
    r->out_len += len;
    r->out[r->out_len] = '\0';
    return 0;
}

/* Replaces the link just pushed onto out by its target, which continues
 * with what is left of rest after *pos. */
static int splice_link(resolver *r, size_t *pos)
{
    if (++r->links > MAX_LINKS)
        return ELOOP;
    ssize_t n = readlink(r->out, r->link, PATH_MAX);
    if (n < 0)
        return errno;
    if (n >= PATH_MAX || (size_t)n + 1 + strlen(r->rest + *pos) >= PATH_MAX)
        return ENAMETOOLONG;
    r->link[n] = '/';
    strcpy(r->link + n + 1, r->rest + *pos);
    strcpy(r->rest, r->link);
    *pos = 0;
    pop_component(r); /* a relative target is relative to the link's directory */
    if (r->link[0] == '/') {
        r->out_len = 0;
        r->out[0] = '\0';
    }
    return 0;
}

/* Resolves r->rest (absolute) into r->out. Components past the first one
 * that does not exist are taken as they are; a ".." among them pops one,
 * and a ".." back into existing directories resumes the resolution (else
 * "~/nope/../link/x" would reach through link unchecked). */
static int resolve(resolver *r, link_mode how)
{
    r->out_len = 0;
    r->out[0] = '\0';
    r->missing = 0;
    r->links = 0;
    size_t pos = 0, len;
    const char *name;
    while (next_component(r->rest, &pos, &name, &len)) {
        bool last = r->rest[pos + strspn(r->rest + pos, "/")] == '\0';
        if (len == 1 && name[0] == '.')
            continue;
        if (len == 2 && name[0] == '.' && name[1] == '.') {
            pop_component(r);
            if (r->missing > 0)
                r->missing--;
            continue;
        }
        int err = push_component(r, name, len);
        if (err != 0)
            return err;
        if (r->missing > 0) {
            r->missing++;
            continue;
        }
        if (last && how == KEEP_FINAL)
            break;
        struct stat st;
        if (lstat(r->out, &st) != 0) {
            if (errno != ENOENT && errno != ENOTDIR)
                return errno;
            r->missing = 1;
        } else if (S_ISLNK(st.st_mode) && (err = splice_link(r, &pos)) != 0) {
            return err;
        }
    }
    if (r->out_len == 0)
        strcpy(r->out, "/");
    return 0;
}

static bool under_root(const char *path, const char *root)
{
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    if (n == 1 && root[0] == '/')
        return true;
    return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool inside_roots(const mig_fsenv *env, const char *path)
{
    for (const char *const *root = env->roots; root != NULL && *root != NULL; root++)
        if (under_root(path, *root))
            return true;
    return false;
}

/* Whether path is ".<base of protected>.tmp-..." beside protected: the temp
 * file of a state write in progress. */
static bool is_temp_of(const char *path, const char *protected_path)
{
    const char *slash = strrchr(path, '/'), *pslash = strrchr(protected_path, '/');
    if (slash == NULL || pslash == NULL || slash - path != pslash - protected_path ||
        strncmp(path, protected_path, (size_t)(slash - path)) != 0)
        return false;
    const char *name = slash + 1, *base = pslash + 1;
    size_t base_len = strlen(base);
    return name[0] == '.' && strncmp(name + 1, base, base_len) == 0 &&
           strncmp(name + 1 + base_len, ".tmp-", 5) == 0;
}

static bool is_protected(const mig_fsenv *env, const char *path)
{
    const char *const *p = env->protected_paths;
    size_t len = strlen(path);
    for (; p != NULL && *p != NULL; p++) {
        bool ancestor = strcmp(path, "/") == 0 ||
                        (strncmp(*p, path, len) == 0 && (*p)[len] == '/');
        if (strcmp(path, *p) == 0 || ancestor || is_temp_of(path, *p))
            return true;
    }
    return false;
}

/* Resolves argument arg for fs.<fn> and checks it lies inside the roots.
 * The result lives in a userdata left on the stack. */
static const char *check_path(lua_State *L, int arg, const char *fn, link_mode how)
{
    const char *closed = fs_env(L)->closed_reason;
    if (closed != NULL)
        luaL_error(L, "fs.%s: not allowed: %s", fn, closed);
    size_t len;
    const char *given = luaL_checklstring(L, arg, &len);
    resolver *r = lua_newuserdatauv(L, sizeof *r, 0);
    int err = strlen(given) != len ? NUL_IN_PATH : expand_into(fs_env(L), given, r->rest);
    if (err == 0)
        err = resolve(r, how);
    if (err != 0)
        path_error(L, fn, arg, err);
    if (!inside_roots(fs_env(L), r->out))
        luaL_error(L, "fs.%s: \"%s\": outside allowed roots", fn, given);
    return r->out;
}

/* check_path() for a path fs.<fn> is about to change. */
static const char *check_target(lua_State *L, int arg, const char *fn, link_mode how)
{
    const char *path = check_path(L, arg, fn, how);
    if (is_protected(fs_env(L), path))
        luaL_error(L, "fs.%s: \"%s\": the migration state is not writable from a script", fn,
                   lua_tostring(L, arg));
    return path;
}

/* Read at call time: the sandbox sets it around check() and clears it for
 * migrate(). */
static void check_writable(lua_State *L, const char *fn)
{
    const char *reason = fs_env(L)->readonly_reason;
    if (reason != NULL)
        luaL_error(L, "fs.%s: not allowed: %s", fn, reason);
}

/* ---- Arguments ----------------------------------------------------------- */

static lua_Integer parse_octal(const char *text, size_t len)
{
    if (len == 0 || len > 6)
        return -1;
    lua_Integer mode = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '7')
            return -1;
        mode = mode * 8 + (text[i] - '0');
    }
    return mode;
}

/* A mode as an octal string ("0644") or an integer (420): Lua has no
 * octal literals, so a script writing 0644 would mean 644. */
static mode_t check_mode(lua_State *L, int arg)
{
    lua_Integer mode = -1;
    if (lua_type(L, arg) == LUA_TSTRING) {
        size_t len;
        const char *text = lua_tolstring(L, arg, &len);
        mode = parse_octal(text, len);
    } else if (lua_type(L, arg) == LUA_TNUMBER) {
        int is_integer;
        mode = lua_tointegerx(L, arg, &is_integer);
        if (!is_integer)
            mode = -1;
        else if (mode > 07777)
            luaL_argerror(L, arg, "mode has bits beyond 07777");
    }
    if (mode < 0 || mode > 07777)
        luaL_argerror(L, arg, "mode must be an octal string like \"0644\" or an integer");
    return (mode_t)mode;
}

static int opt_mode(lua_State *L, int arg, int fallback)
{
    return lua_isnoneornil(L, arg) ? fallback : (int)check_mode(L, arg);
}

/* ---- Plain file work (no Lua in here) ---------------------------------- */

/* Reads the regular file path into buf (room bytes). *got == room means it
 * did not fit; *size is then what fstat says it holds now. */
static int read_into(const char *path, char *buf, size_t room, size_t *got, off_t *size)
{
    *got = 0;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errno;
    struct stat st;
    int err = fstat(fd, &st) != 0 ? errno : 0;
    if (err == 0 && !S_ISREG(st.st_mode))
        err = S_ISDIR(st.st_mode) ? EISDIR : NOT_REGULAR;
    if (err == 0)
        *size = st.st_size;
    if (err == 0 && (uintmax_t)st.st_size >= room)
        *got = room;
    while (err == 0 && *got < room) {
        ssize_t n = read(fd, buf + *got, room - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? errno : 0;
            break;
        }
        *got += (size_t)n;
    }
    close(fd);
    return err;
}

/* Names in a directory, in a userdata: count pointers, then the bytes. */
typedef struct listing {
    char **names;   /* NULL: only count */
    char *bytes;
    size_t max_names, max_bytes;
    size_t count, used;
    bool overflow;
} listing;

static int read_names(const char *path, listing *ls)
{
    DIR *dir = opendir(path);
    if (dir == NULL)
        return errno;
    ls->count = ls->used = 0;
    ls->overflow = false;
    int err = 0;
    for (;;) {
        errno = 0;
        struct dirent *entry = readdir(dir);
        if (entry == NULL) {
            err = errno;
            break;
        }
        const char *name = entry->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        size_t size = strlen(name) + 1;
        if (ls->names != NULL) {
            if (ls->count == ls->max_names || size > ls->max_bytes - ls->used) {
                ls->overflow = true;
                break;
            }
            ls->names[ls->count] = memcpy(ls->bytes + ls->used, name, size);
        }
        ls->count++;
        ls->used += size;
    }
    closedir(dir);
    return err;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b); /* bytewise: unsigned char */
}

static int remove_entry(int dirfd, const char *name, int depth);

/* Removes everything in the directory open as fd (consumed). Entries are
 * read again until none is left: removing while reading may skip some. */
static int empty_dir(int fd, int depth)
{
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        int err = errno;
        close(fd);
        return err;
    }
    int err = 0;
    bool removed = true;
    for (int pass = 0; err == 0 && removed && pass < MAX_PASSES; pass++) {
        removed = false;
        rewinddir(dir);
        struct dirent *entry;
        while (err == 0 && (errno = 0, entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
                continue;
            err = remove_entry(dirfd(dir), entry->d_name, depth);
            removed = true;
        }
        if (err == 0 && errno != 0)
            err = errno;
    }
    closedir(dir);
    return err;
}

/* Removes dirfd/name, a directory with its content; never follows a link:
 * a directory swapped for a link after fstatat fails O_NOFOLLOW. */
static int remove_entry(int dirfd, const char *name, int depth)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : errno;
    if (S_ISDIR(st.st_mode)) {
        if (depth >= MAX_TREE_DEPTH)
            return ENAMETOOLONG;
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return errno;
        int err = empty_dir(fd, depth + 1);
        if (err != 0)
            return err;
    }
    if (unlinkat(dirfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT)
        return errno;
    return 0;
}

/* In-kernel copy where the file systems allow it (also reflinks), else
 * read/write through buf; either way continues at the current offsets.
 * The end is always confirmed by read(): copy_file_range() reports 0 bytes
 * for files whose size the kernel does not know, such as those in /proc. */
static int copy_data(int in, int out, char *buf, size_t size)
{
    bool in_kernel = true;
    for (;;) {
        ssize_t n;
        if (in_kernel) {
            n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
            if (n == 0 || (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                                     errno == EOPNOTSUPP))) {
                in_kernel = false;
                continue;
            }
        } else {
            n = read(in, buf, size);
            int err = n > 0 ? mig_write_all(out, buf, (size_t)n) : 0;
            if (err != 0)
                return err;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : 0;
    }
}

typedef struct copy_source {
    int in;
    char *buf;
} copy_source;

static int fill_copy(int out, void *ctx)
{
    const copy_source *src = ctx;
    return copy_data(src->in, out, src->buf, COPY_BUFFER);
}

/* Copies src over dst atomically; *side is the argument (1 for src, 2 for
 * dst) the failure is about. buf is caller-provided Lua memory. */
static int copy_file(const char *src, const char *dst, char *buf, const char **stage, int *side)
{
    *stage = "open";
    *side = 1;
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (in < 0)
        return errno;
    struct stat st;
    int err = fstat(in, &st) != 0 ? errno : 0;
    if (err == 0 && !S_ISREG(st.st_mode))
        err = S_ISDIR(st.st_mode) ? EISDIR : NOT_REGULAR;
    if (err == 0) {
        *side = 2;
        copy_source from = {in, buf};
        err = mig_replace_atomic(dst, fill_copy, &from, (int)(st.st_mode & 07777), true, stage);
    }
    close(in);
    return err;
}

/* The directory part of resolved path into dir (PATH_MAX bytes). */
static void dir_part(const char *path, char *dir)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    memcpy(dir, path, len);
    dir[len] = '\0';
}

void mig_path_normalize(const char *path, char *out)
{
    size_t len = 0, pos = 0, n;
    const char *name;
    while (next_component(path, &pos, &name, &n)) {
        if (n == 1 && name[0] == '.')
            continue;
        if (n == 2 && name[0] == '.' && name[1] == '.') {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            continue;
        }
        out[len++] = '/';
        memcpy(out + len, name, n);
        len += n;
    }
    if (len == 0)
        out[len++] = '/';
    out[len] = '\0';
}

/* ---- The functions scripts call ------------------------------------------ */

static int fs_read(lua_State *L)
{
    const char *path = check_path(L, 1, "read", FOLLOW);
    struct stat st;
    if (stat(path, &st) != 0)
        return path_error(L, "read", 1, errno);
    size_t room = (size_t)st.st_size + 1;
    for (int attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
        char *buf = lua_newuserdatauv(L, room, 0);
        size_t got;
        off_t size;
        int err = read_into(path, buf, room, &got, &size);
        if (err != 0)
            return path_error(L, "read", 1, err);
        if (got < room) {
            lua_pushlstring(L, buf, got);
            return 1;
        }
        lua_pop(L, 1);
        /* It grew, or stat undercounts it (as /proc does): make room. */
        if (room > SIZE_MAX / 4)
            return path_error(L, "read", 1, EFBIG);
        room = (size_t)size + 1 > 2 * room ? (size_t)size + 1 : 2 * room + 4096;
    }
    return path_error(L, "read", 1, EAGAIN);
}

static int fs_write(lua_State *L)
{
    check_writable(L, "write");
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    int mode = opt_mode(L, 3, -1);
    const char *path = check_target(L, 1, "write", FOLLOW);
    const char *stage;
    int err = mig_write_atomic(path, data, len, mode, &stage);
    if (err != 0)
        return stage_error(L, "write", 1, stage, err);
    return 0;
}

static int fs_exists(lua_State *L)
{
    const char *path = check_path(L, 1, "exists", KEEP_FINAL);
    struct stat st;
    bool found = lstat(path, &st) == 0;
    if (!found && errno != ENOENT && errno != ENOTDIR)
        return path_error(L, "exists", 1, errno);
    lua_pushboolean(L, found);
    return 1;
}

/* is_file and is_dir: stat() through links; false when missing. */
static int file_type_is(lua_State *L, const char *fn, mode_t type)
{
    const char *path = check_path(L, 1, fn, FOLLOW);
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            return path_error(L, fn, 1, errno);
        st.st_mode = 0;
    }
    lua_pushboolean(L, (st.st_mode & S_IFMT) == type);
    return 1;
}

static int fs_is_file(lua_State *L)
{
    return file_type_is(L, "is_file", S_IFREG);
}

static int fs_is_dir(lua_State *L)
{
    return file_type_is(L, "is_dir", S_IFDIR);
}

static int fs_stat(lua_State *L)
{
    const char *path = check_path(L, 1, "stat", KEEP_FINAL);
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            return path_error(L, "stat", 1, errno);
        lua_pushnil(L);
        return 1;
    }
    const char *type = S_ISREG(st.st_mode)   ? "file"
                       : S_ISDIR(st.st_mode) ? "dir"
                       : S_ISLNK(st.st_mode) ? "link"
                                             : "other";
    lua_createtable(L, 0, 4);
    lua_pushstring(L, type);
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushinteger(L, (lua_Integer)st.st_mtime);
    lua_setfield(L, -2, "mtime");
    return 1;
}

/* Counts the entries, allocates for them (with room for a few more), reads
 * them again; a directory that grew in between is read once more. */
static int fs_list(lua_State *L)
{
    const char *path = check_path(L, 1, "list", FOLLOW);
    listing ls = {0};
    for (int attempt = 0; attempt < LIST_ATTEMPTS; attempt++) {
        ls.names = NULL;
        int err = read_names(path, &ls);
        if (err != 0)
            return path_error(L, "list", 1, err);
        ls.max_names = ls.count + ls.count / 8 + 16;
        ls.max_bytes = ls.used + ls.used / 8 + 1024;
        if (ls.max_names > (SIZE_MAX - ls.max_bytes) / sizeof(char *))
            return path_error(L, "list", 1, ENOMEM);
        ls.names = lua_newuserdatauv(L, ls.max_names * sizeof(char *) + ls.max_bytes, 0);
        ls.bytes = (char *)(ls.names + ls.max_names);
        if ((err = read_names(path, &ls)) != 0)
            return path_error(L, "list", 1, err);
        if (!ls.overflow)
            break;
        lua_pop(L, 1);
    }
    if (ls.overflow)
        return path_error(L, "list", 1, EAGAIN);
    qsort(ls.names, ls.count, sizeof(char *), compare_names);
    lua_createtable(L, (int)(ls.count < INT_MAX ? ls.count : INT_MAX), 0);
    for (size_t i = 0; i < ls.count; i++) {
        lua_pushstring(L, ls.names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int fs_mkdir(lua_State *L)
{
    check_writable(L, "mkdir");
    int mode = opt_mode(L, 2, 0755);
    const char *path = check_target(L, 1, "mkdir", FOLLOW);
    int err = mig_mkdir_parents(path, (mode_t)mode);
    if (err != 0)
        return path_error(L, "mkdir", 1, err);
    return 0;
}

/* fs.remove and fs.remove_tree: a missing path is no error; a directory
 * must be empty for fs.remove, and fs.remove_tree empties it first. */
static int remove_path(lua_State *L, const char *fn, bool tree)
{
    check_writable(L, fn);
    const char *path = check_target(L, 1, fn, KEEP_FINAL);
    struct stat st;
    int err = 0;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return path_error(L, fn, 1, errno);
    }
    if (S_ISDIR(st.st_mode)) {
        if (tree) {
            int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            err = fd < 0 ? errno : empty_dir(fd, 0);
        }
        if (err == 0 && rmdir(path) != 0)
            err = errno;
    } else if (unlink(path) != 0) {
        err = errno;
    }
    if (err != 0)
        return path_error(L, fn, 1, err);
    if ((err = mig_fsync_parent(path)) != 0)
        return stage_error(L, fn, 1, "fsync dir", err);
    return 0;
}

static int fs_remove(lua_State *L)
{
    return remove_path(L, "remove", false);
}

static int fs_remove_tree(lua_State *L)
{
    return remove_path(L, "remove_tree", true);
}

static int fs_rename(lua_State *L)
{
    check_writable(L, "rename");
    const char *src = check_target(L, 1, "rename", KEEP_FINAL);
    const char *dst = check_target(L, 2, "rename", KEEP_FINAL);
    int err = rename(src, dst) != 0 ? errno : 0;
    /* Both directories changed; sync both so the move survives a crash. */
    if (err == 0 && (err = mig_fsync_parent(dst)) == 0)
        err = mig_fsync_parent(src);
    if (err == EXDEV)
        return luaL_error(L, "fs.rename: \"%s\" -> \"%s\": the paths are on different file "
                             "systems (use fs.copy, then fs.remove)",
                          lua_tostring(L, 1), lua_tostring(L, 2));
    if (err != 0) {
        char buf[128];
        return luaL_error(L, "fs.rename: \"%s\" -> \"%s\": %s", lua_tostring(L, 1),
                          lua_tostring(L, 2), mig_strerror(err, buf, sizeof buf));
    }
    return 0;
}

static int fs_copy(lua_State *L)
{
    check_writable(L, "copy");
    const char *src = check_path(L, 1, "copy", FOLLOW);
    const char *dst = check_target(L, 2, "copy", FOLLOW);
    char *buf = lua_newuserdatauv(L, COPY_BUFFER, 0);
    const char *stage;
    int side;
    int err = copy_file(src, dst, buf, &stage, &side);
    if (err != 0)
        return stage_error(L, "copy", side, stage, err);
    return 0;
}

static int fs_symlink(lua_State *L)
{
    check_writable(L, "symlink");
    size_t len;
    const char *target = luaL_checklstring(L, 1, &len);
    const char *link = check_target(L, 2, "symlink", KEEP_FINAL);
    resolver *r = lua_newuserdatauv(L, sizeof *r, 0);
    /* Where the link will point, as the kernel will read it: a relative
     * target is relative to the link's directory. */
    int err = strlen(target) != len ? NUL_IN_PATH : 0;
    if (err == 0) {
        dir_part(link, r->link);
        int n = target[0] == '/' ? snprintf(r->rest, PATH_MAX, "%s", target)
                                 : snprintf(r->rest, PATH_MAX, "%s/%s", r->link, target);
        err = n < 0 || n >= PATH_MAX ? ENAMETOOLONG : 0;
    }
    if (err == 0)
        err = resolve(r, FOLLOW);
    if (err != 0)
        return path_error(L, "symlink", 1, err);
    if (!inside_roots(fs_env(L), r->out))
        return luaL_error(L, "fs.symlink: \"%s\": outside allowed roots", target);
    if (symlink(target, link) != 0)
        return path_error(L, "symlink", 2, errno);
    if ((err = mig_fsync_parent(link)) != 0)
        return stage_error(L, "symlink", 2, "fsync dir", err);
    return 0;
}

static int fs_readlink(lua_State *L)
{
    const char *path = check_path(L, 1, "readlink", KEEP_FINAL);
    char *target = lua_newuserdatauv(L, PATH_MAX, 0);
    ssize_t n = readlink(path, target, PATH_MAX);
    if (n < 0 && (errno == EINVAL || errno == ENOENT || errno == ENOTDIR)) {
        lua_pushnil(L);
        return 1;
    }
    if (n < 0 || n >= PATH_MAX)
        return path_error(L, "readlink", 1, n < 0 ? errno : ENAMETOOLONG);
    lua_pushlstring(L, target, (size_t)n);
    return 1;
}

static int fs_chmod(lua_State *L)
{
    check_writable(L, "chmod");
    mode_t mode = check_mode(L, 2);
    const char *path = check_target(L, 1, "chmod", FOLLOW);
    if (chmod(path, mode) != 0)
        return path_error(L, "chmod", 1, errno);
    return 0;
}

/* Only lexical: "~" expanded, ".", ".." and "//" folded. No symlink is
 * resolved and the result is not confined to the roots (nothing is
 * touched); "~/link/.." may name a different directory than the kernel
 * would reach. */
static int fs_expand(lua_State *L)
{
    size_t len;
    const char *given = luaL_checklstring(L, 1, &len);
    resolver *r = lua_newuserdatauv(L, sizeof *r, 0);
    int err = strlen(given) != len ? NUL_IN_PATH : expand_into(fs_env(L), given, r->rest);
    if (err != 0)
        return path_error(L, "expand", 1, err);
    mig_path_normalize(r->rest, r->out);
    lua_pushstring(L, r->out);
    return 1;
}

static const luaL_Reg fs_functions[] = {
    {"read", fs_read},
    {"write", fs_write},
    {"exists", fs_exists},
    {"is_file", fs_is_file},
    {"is_dir", fs_is_dir},
    {"stat", fs_stat},
    {"list", fs_list},
    {"mkdir", fs_mkdir},
    {"remove", fs_remove},
    {"remove_tree", fs_remove_tree},
    {"rename", fs_rename},
    {"copy", fs_copy},
    {"symlink", fs_symlink},
    {"readlink", fs_readlink},
    {"chmod", fs_chmod},
    {"expand", fs_expand},
    {NULL, NULL},
};

void mig_open_fs(lua_State *L, mig_fsenv *env)
{
    lua_createtable(L, 0, (int)(sizeof fs_functions / sizeof fs_functions[0] - 1));
    lua_pushlightuserdata(L, env);
    luaL_setfuncs(L, fs_functions, 1);
}
