-- fs helpers written in Lua over the C primitives of src/fs.c.
-- The sandbox runs this chunk with (fs, json, yaml_module) and it adds to
-- fs; yaml_module() returns the yaml table (opened on first use).
-- Errors are raised with level 2 so that the script's line is blamed.
local fs, json, yaml_module = ...

local function check_string(fn, i, value)
    if type(value) ~= "string" then
        error(("bad argument #%d to '%s' (string expected, got %s)"):format(i, fn, type(value)), 3)
    end
end

-- Re-raises the error of a C primitive called through pcall under the name
-- of the helper, so "fs.write: ..." reads "fs.write_json: ...". Anything
-- else (out of memory, a runner's sentinel) passes through untouched.
local function rethrow(err, from, to)
    if type(err) == "string" and err:sub(1, #from + 1) == from .. ":" then
        error(to .. err:sub(#from + 1), 3)
    end
    error(err, 0)
end

local function is_absolute(part)
    return part:sub(1, 1) == "/" or part == "~" or part:sub(1, 2) == "~/"
end

-- fs.join("~", "a", "b.json") --> "~/a/b.json": exactly one "/" between
-- parts. Only the first part may be absolute ("/..." or "~/..."): a later
-- absolute part would silently discard what came before it.
function fs.join(...)
    local n = select("#", ...)
    if n == 0 then
        error("bad argument #1 to 'join' (string expected, got no value)", 2)
    end
    local parts = { ... }
    for i = 1, n do
        if type(parts[i]) ~= "string" then
            error(("bad argument #%d to 'join' (string expected, got %s)"):format(i, type(parts[i])), 2)
        end
        if i > 1 and is_absolute(parts[i]) then
            error(('fs.join: part %d ("%s") is absolute; only the first part may be'):format(i, parts[i]), 2)
        end
    end
    local path = parts[1]
    for i = 2, n do
        if parts[i] ~= "" then
            path = path == "" and parts[i] or path:gsub("/+$", "") .. "/" .. parts[i]
        end
    end
    return path
end

function fs.read_json(p)
    check_string("read_json", 1, p)
    local read, text = pcall(fs.read, p)
    if not read then
        rethrow(text, "fs.read", "fs.read_json")
    end
    local decoded, value = pcall(json.decode, text)
    if not decoded then
        if type(value) ~= "string" then
            error(value, 0)
        end
        error(('fs.read_json: "%s": %s'):format(p, value), 2)
    end
    return value
end

-- Pretty-printed with a final newline, as people keep config files; written
-- through fs.write, so atomically and keeping the file's mode.
function fs.write_json(p, value)
    check_string("write_json", 1, p)
    local encoded, text = pcall(json.encode, value, { indent = 2 })
    if not encoded then
        if type(text) ~= "string" then
            error(text, 0)
        end
        error(('fs.write_json: "%s": %s'):format(p, text), 2)
    end
    local written, err = pcall(fs.write, p, text .. "\n")
    if not written then
        rethrow(err, "fs.write", "fs.write_json")
    end
end

function fs.read_yaml(p)
    check_string("read_yaml", 1, p)
    local read, text = pcall(fs.read, p)
    if not read then
        rethrow(text, "fs.read", "fs.read_yaml")
    end
    local decoded, value = pcall(yaml_module().decode, text)
    if not decoded then
        if type(value) ~= "string" then
            error(value, 0)
        end
        error(('fs.read_yaml: "%s": %s'):format(p, value), 2)
    end
    return value
end

-- Block style, as people keep config files (comments are not kept: to
-- change a commented file in place, use fs.edit); written through
-- fs.write, so atomically and keeping the file's mode.
function fs.write_yaml(p, value)
    check_string("write_yaml", 1, p)
    local encoded, text = pcall(yaml_module().encode, value)
    if not encoded then
        if type(text) ~= "string" then
            error(text, 0)
        end
        error(('fs.write_yaml: "%s": %s'):format(p, text), 2)
    end
    local written, err = pcall(fs.write, p, text)
    if not written then
        rethrow(err, "fs.write", "fs.write_yaml")
    end
end

-- The editor for each format, looked up when fs.edit runs: yaml and dotenv
-- may be modules a build or a later branch adds.
local editors = {
    json = function() return json.edit end,
    yaml = function() return type(yaml) == "table" and yaml.edit or nil end,
    dotenv = function() return type(dotenv) == "table" and dotenv.edit or nil end,
}

-- .json, .yml/.yaml, and .env files (".env" itself, "prod.env").
local function format_of(p)
    local name = p:match("[^/]*$")
    if name:match("%.json$") then
        return "json"
    elseif name:match("%.ya?ml$") then
        return "yaml"
    elseif name:match("%.env$") or name == ".env" then
        return "dotenv"
    end
    return nil
end

-- fs.edit(path, fn [, format]): fn edits a document of the file; the text
-- is written back (atomically, keeping the mode) only if it changed.
function fs.edit(p, fn, format)
    check_string("edit", 1, p)
    if type(fn) ~= "function" then
        error(("bad argument #2 to 'edit' (function expected, got %s)"):format(type(fn)), 2)
    end
    if format ~= nil and editors[format] == nil then
        error(('fs.edit: "%s": unknown format "%s" (json, yaml or dotenv)'):format(p, tostring(format)), 2)
    end
    -- A mutation, refused in check() before fn runs, even when fn would
    -- change nothing: fs.write raises its "not allowed" before it looks at
    -- its arguments, so calling it with none asks without writing.
    local _, probe = pcall(fs.write)
    if type(probe) == "string" and probe:find("^fs%.write: not allowed") then
        error("fs.edit" .. probe:sub(#"fs.write" + 1), 2)
    end
    format = format or format_of(p)
    if format == nil then
        error(('fs.edit: "%s": cannot tell the format from the name; pass "json", "yaml" or "dotenv"'):format(p), 2)
    end
    local edit = editors[format]()
    if type(edit) ~= "function" then
        error(('fs.edit: "%s": %s documents are not available in this build'):format(p, format), 2)
    end
    local read, text = pcall(fs.read, p)
    if not read then
        rethrow(text, "fs.read", "fs.edit")
    end
    local opened, doc = pcall(edit, text)
    if not opened then
        if type(doc) ~= "string" then
            error(doc, 0)
        end
        error(('fs.edit: "%s": %s'):format(p, doc), 2)
    end
    local ran, failure = pcall(fn, doc)
    if not ran then
        if type(failure) ~= "string" then
            error(failure, 0)
        end
        -- the message keeps the script's line; the file is added to it
        error(('%s (editing "%s"; nothing was written)'):format(failure, p), 0)
    end
    if not doc:changed() then
        return false
    end
    local written, err = pcall(fs.write, p, doc:text())
    if not written then
        rethrow(err, "fs.write", "fs.edit")
    end
    return true
end
