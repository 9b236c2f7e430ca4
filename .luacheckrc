-- luacheck configuration: the globals a migration script really has.
--
-- The standard below is the sandbox's allow-list (src/sandbox.c), written
-- out name by name instead of starting from luacheck's "lua54" and taking
-- away: a name that is not listed here is not there at run time either, so
-- luacheck flags `io.open`, `os.exit`, `string.dump` or `dofile` as the
-- undefined names they are inside the runner. Keep it in step with
-- open_base_libraries() and open_modules() in src/sandbox.c and with
-- lua/meta/migrate.lua.

local base = {
    "assert", "collectgarbage", "error", "getmetatable", "ipairs", "load",
    "next", "pairs", "pcall", "print", "rawequal", "rawget", "rawlen",
    "rawset", "require", "select", "setmetatable", "tonumber", "tostring",
    "type", "warn", "xpcall", "_G", "_VERSION",
    -- absent on purpose: dofile, loadfile (read any file, bypassing fs)
}

local libraries = {
    string = { fields = {
        "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower",
        "match", "pack", "packsize", "rep", "reverse", "sub", "unpack", "upper",
        -- absent on purpose: dump (forges binary chunks)
    } },
    table = { fields = { "concat", "insert", "move", "pack", "remove", "sort", "unpack" } },
    math = { fields = {
        "abs", "acos", "asin", "atan", "ceil", "cos", "deg", "exp", "floor",
        "fmod", "huge", "log", "max", "maxinteger", "min", "mininteger", "modf",
        "pi", "rad", "random", "randomseed", "sin", "sqrt", "tan", "tointeger",
        "type", "ult",
    } },
    utf8 = { fields = { "char", "charpattern", "codepoint", "codes", "len", "offset" } },
    coroutine = { fields = {
        "close", "create", "isyieldable", "resume", "running", "status", "wrap", "yield",
    } },
    -- only the clock and environment readers: exit, execute, remove, rename,
    -- tmpname and setlocale act on the host process or bypass fs
    os = { fields = { "clock", "date", "difftime", "getenv", "time" } },
    -- absent on purpose: io, debug, package (package.loadlib: CVE-2022-0543)
}

local modules = {
    fs = { fields = {
        "read", "write", "exists", "is_file", "is_dir", "stat", "list", "mkdir",
        "remove", "remove_tree", "rename", "copy", "symlink", "readlink", "chmod",
        "expand", "join", "read_json", "write_json", "read_yaml", "write_yaml", "edit",
    } },
    json = { fields = { "decode", "encode", "null", "array", "object", "rename", "edit" } },
    yaml = { fields = { "decode", "encode", "null", "edit" } },
    dotenv = { fields = { "decode", "edit" } },
    log = { fields = { "info", "warn", "error" } },
    semver = { fields = { "compare", "parse", "in_range" } },
    migration = { fields = {
        "id", "version", "path", "from_version", "to_version", "dry_run", "home",
    } },
}

local function merge(...)
    local out = {}
    for _, t in ipairs({ ... }) do
        for k, v in pairs(t) do
            if type(k) == "number" then
                out[#out + 1] = v
            else
                out[k] = v
            end
        end
    end
    return out
end

-- What every chunk the runner loads can read.
stds.migration_env = { read_globals = merge(base, libraries, modules) }
-- What a migration script may define: its two entry points.
stds.migration_script = { globals = { "check", "migrate" } }

std = "migration_env+migration_script"

-- Shared modules are required, not run: they must not define check() or
-- migrate() as globals (they would overwrite the requiring script's own).
files["migrations/lib"] = { std = "migration_env" }
-- The embedded helpers run in the same sandbox with no entry points.
files["lua"] = { std = "migration_env" }
-- The annotation file declares every global of the environment, with empty
-- bodies whose parameters exist only to carry their annotations. It is
-- linted for syntax and stray globals, not for what its stubs leave unused.
files["lua/meta"] = {
    std = "migration_env",
    globals = { "check", "migrate", "print", "warn", "fs", "json", "yaml", "dotenv", "log",
                "semver", "migration" },
    -- unused argument; a class table that only carries method annotations
    ignore = { "212", "241" },
}
