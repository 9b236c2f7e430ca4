-- The document layer (SPEC §5.1): what json.edit, yaml.edit and dotenv.edit
-- share. A backend splices text; this file does everything else: paths,
-- reading, the checks every method makes before it edits, and the check
-- after it: the new text must decode to the old value with exactly the
-- intended change (key order included), or the edit raises and the
-- document keeps its text.
--
-- Loaded by src/doc.c with json's internals; returns { new = ... }.
local internal = ...

local type, error, pcall, tostring, rawequal, setmetatable, getmetatable, math_type =
    type, error, pcall, tostring, rawequal, setmetatable, getmetatable, math.type
local ordered_keys, kind, new_object, rename_key = internal.keys, internal.kind, internal.object, internal.rename

-- ---- errors --------------------------------------------------------------

-- Raised inside a method, turned into a plain message at the script's level
-- by the method's wrapper; anything else (out of memory, the runner's
-- sentinels) passes through as it is.
local Failure = {}

local function fail(message)
    error(setmetatable({ message = message }, Failure), 0)
end

-- ---- paths ----------------------------------------------------------------

local function is_simple_key(key)
    return key ~= "" and not key:find("[^%w_%-]")
end

-- {"a", 2, "b.c"} --> a[2]["b.c"]
local function path_text(path, n)
    local parts = {}
    for i = 1, n or #path do
        local element = path[i]
        if type(element) == "number" then
            parts[#parts + 1] = "[" .. element .. "]"
        elseif is_simple_key(element) then
            parts[#parts + 1] = (i > 1 and "." or "") .. element
        else
            parts[#parts + 1] = ('[%q]'):format(element)
        end
    end
    local text = ""
    for i = 1, #parts do
        text = text .. parts[i]
    end
    return text
end

-- An array of string keys and 1-based integer indices, or "a.b.c". Returns
-- a fresh array (the caller's table is never kept) or raises.
local function normalize_path(path, what)
    local out = {}
    if type(path) == "string" then
        if path == "" then
            fail(what .. " is empty")
        end
        local start = 1
        while true do
            local dot = path:find(".", start, true)
            local key = path:sub(start, (dot or 0) - 1)
            if key == "" then
                fail(('%s "%s" has an empty key'):format(what, path))
            end
            out[#out + 1] = key
            if not dot then
                break
            end
            start = dot + 1
        end
        return out
    end
    if type(path) ~= "table" then
        fail(("%s must be a string or an array of keys and indices (got %s)"):format(what, type(path)))
    end
    local n = #path
    if n == 0 then
        fail(what .. " is empty")
    end
    for i = 1, n do
        local element = path[i]
        if type(element) == "string" then
            out[i] = element
        elseif math_type(element) == "integer" and element >= 1 then
            out[i] = element
        else
            fail(("%s element %d must be a string key or an index >= 1 (got %s)"):format(
                what, i, type(element) == "number" and tostring(element) or type(element)))
        end
    end
    return out
end

-- ---- values ---------------------------------------------------------------

local function is_sequence(t)
    local k = kind(t)
    if k then
        return k == "array"
    end
    return t[1] ~= nil
end

-- Keys of a mapping in file order (plain tables: sorted, as encode writes).
local function keys_of(t)
    return ordered_keys(t)
end

-- Whether a value the script gave (`want`) is what decoding gave (`got`):
-- key order counts where `want` has one (decoded or json.object tables); a
-- plain table has none, so only its contents count. In C (json.c), as the
-- check after an edit visits the whole document.
local same = internal.same

-- A copy keeping kinds and key order, so a script changing what get()
-- returned cannot change the document's own value.
local function copy(value)
    if type(value) ~= "table" then
        return value
    end
    if is_sequence(value) then
        local out = internal.array({})
        for i = 1, #value do
            out[i] = copy(value[i])
        end
        return out
    end
    local out = new_object({})
    local keys = keys_of(value)
    for i = 1, #keys do
        out[keys[i]] = copy(value[keys[i]])
    end
    return out
end

-- A shallow copy of a container, keeping its kind and key order.
local function shallow(value)
    if is_sequence(value) then
        local out = internal.array({})
        for i = 1, #value do
            out[i] = value[i]
        end
        return out
    end
    local out = new_object({})
    local keys = keys_of(value)
    for i = 1, #keys do
        out[keys[i]] = value[keys[i]]
    end
    return out
end

-- ---- the document ----------------------------------------------------------

-- A document keeps its fields under this key: a table no script can name.
-- (Not a weak side table: the sandbox refuses weak tables, whose ephemeron
-- chains make the collector quadratic, and a document may hold script values.)
local FIELDS = {}
local Document = {}
Document.__index = Document
Document.__metatable = "document"

-- Walks `path` in `value`: returns the value there (nil if absent), how
-- many elements exist, and the deepest node reached.
local function walk(value, path, n)
    n = n or #path
    local node = value
    for i = 1, n do
        local element, child = path[i], nil
        if type(node) == "table" then
            if is_sequence(node) then
                if type(element) == "number" then
                    child = node[element]
                end
            elseif type(element) == "string" then
                child = node[element]
            end
        end
        if child == nil then
            return nil, i - 1, node
        end
        node = child
    end
    return node, n, node
end

local function container_must_be(self, path, n, want_sequence)
    local node, found = walk(rawget(self, FIELDS).value, path, n)
    local where = n == 0 and "the document" or path_text(path, n)
    if found < n then
        fail(where .. " does not exist")
    end
    if type(node) ~= "table" or is_sequence(node) ~= want_sequence or (want_sequence and kind(node) == "object") then
        fail(("%s is not a %s"):format(where, want_sequence and "sequence" or "mapping"))
    end
    return node
end

-- The expected value: `value` with copies of the containers along path[1..n]
-- (each container copied once per expectation: `copied` remembers them).
local function copy_along(root, path, n, copied)
    if not copied[root] then
        local c = shallow(root)
        copied[c] = true
        root = c
    end
    local node = root
    for i = 1, n do
        local child = node[path[i]]
        if not copied[child] then
            child = shallow(child)
            copied[child] = true
            node[path[i]] = child
        end
        node = child
    end
    return root, node
end

-- Runs the backend's splicer and the check after it; commits on success.
local function splice(self, method, _, expect, ...)
    local st = rawget(self, FIELDS)
    local ok, text = pcall(st.backend[method], st.text, ...)
    if not ok then
        if type(text) ~= "string" then
            error(text, 0)
        end
        fail(text)
    end
    if type(text) ~= "string" then
        fail("the " .. st.backend.name .. " editor returned no text")
    end
    if text == st.text then
        -- an unchanged text is right only if the value was already as meant
        if not same(expect, st.value) then
            fail("the edit would change nothing in the text, yet the value differs (the edit was not applied)")
        end
        return
    end
    local decoded_ok, value = pcall(st.backend.decode, text)
    if not decoded_ok then
        if type(value) ~= "string" then
            error(value, 0)
        end
        fail("the edited text does not parse (" .. value .. ")")
    end
    if not same(expect, value) then
        fail("the edited text does not decode to the intended value (the edit was not applied)")
    end
    st.text, st.value, st.changed = text, value, true
end

local function check_value(value)
    local t = type(value)
    if t == "nil" or t == "function" or t == "thread" or (t == "userdata" and not rawequal(value, internal.null)) then
        fail("a value must be a string, number, boolean, table or null (got " .. t .. ")")
    end
end

-- Every method: errors become "<name>.edit: <method> <path>: <reason>"
-- raised at the caller's line. `path_arg` is the argument number of the
-- path, for messages.
local function method(name, impl)
    return function(self, ...)
        local st = rawget(self, FIELDS)
        if st == nil then
            error(("bad argument #1 to '%s' (document expected, got %s)"):format(name, type(self)), 2)
        end
        local context = { path = nil }
        local ok, result = pcall(impl, self, context, ...)
        if ok then
            return result
        end
        if getmetatable(result) == Failure then
            local where = context.path and context.path ~= "" and (" " .. context.path) or ""
            error(("%s.edit: %s%s: %s"):format(st.backend.name, name, where, result.message), 2)
        end
        error(result, 0)
    end
end

local function take_path(context, path, what)
    context.path = type(path) == "string" and path ~= "" and path or nil
    local p = normalize_path(path, what or "path")
    context.path = path_text(p)
    return p
end

Document.get = method("get", function(self, context, path)
    local p = take_path(context, path)
    local value = walk(rawget(self, FIELDS).value, p)
    return copy(value)
end)

Document.has = method("has", function(self, context, path)
    local p = take_path(context, path)
    local _, found = walk(rawget(self, FIELDS).value, p)
    return found == #p
end)

Document.keys = method("keys", function(self, context, path)
    local node
    if path == nil then
        node = rawget(self, FIELDS).value
        if type(node) ~= "table" or is_sequence(node) then
            fail("the document is not a mapping")
        end
    else
        local p = take_path(context, path)
        node = container_must_be(self, p, #p, false)
    end
    local keys, out = keys_of(node), {}
    for i = 1, #keys do
        out[i] = keys[i]
    end
    return out
end)

-- The nested mappings a set creates for the missing part path[from..n].
local function nested(path, from, value)
    for i = #path, from + 1, -1 do
        local m = new_object({})
        m[path[i]] = value
        value = m
    end
    return value
end

Document.set = method("set", function(self, context, path, value)
    local p = take_path(context, path)
    check_value(value)
    local st = rawget(self, FIELDS)
    local n = #p
    local current, found, deepest = walk(st.value, p)
    if found == n then
        if same(value, current) then
            return nil -- an equal value: nothing changes
        end
    else
        local element, where = p[found + 1], found == 0 and "the document" or path_text(p, found)
        if type(deepest) ~= "table" then
            fail(where .. " is not a mapping")
        end
        if type(element) == "number" then
            if is_sequence(deepest) then
                fail(("index %d of %s is out of range (use append)"):format(element, where))
            end
            fail(where .. " is not a sequence")
        end
        if is_sequence(deepest) then
            fail(where .. " is not a mapping")
        end
        for i = found + 2, n do
            if type(p[i]) == "number" then
                fail(path_text(p, i - 1) .. " does not exist and cannot be created as a sequence")
            end
        end
    end
    local depth = found == n and n - 1 or found
    local root, node = copy_along(st.value, p, depth, {})
    node[p[depth + 1]] = nested(p, depth + 1, value)
    splice(self, "set", p, root, p, value)
    return nil
end)

Document.insert = method("insert", function(self, context, path, value, opts)
    local p = take_path(context, path)
    check_value(value)
    local st = rawget(self, FIELDS)
    local n = #p
    if type(p[n]) ~= "string" then
        fail("the last element must be a key (use append for sequences)")
    end
    if opts ~= nil and type(opts) ~= "table" then
        fail("options must be a table (got " .. type(opts) .. ")")
    end
    opts = opts or {}
    local parent = container_must_be(self, p, n - 1, false)
    if parent[p[n]] ~= nil then
        fail("the key exists already (use set)")
    end
    if opts.after ~= nil and opts.before ~= nil then
        fail("give after or before, not both")
    end
    local anchor = opts.after or opts.before
    if anchor ~= nil and (type(anchor) ~= "string" or parent[anchor] == nil) then
        fail(("%s names no key of %s"):format(opts.after and "after" or "before",
            n == 1 and "the document" or path_text(p, n - 1)))
    end
    if opts.comment ~= nil and type(opts.comment) ~= "string" then
        fail("comment must be a string")
    end
    local root, node = copy_along(st.value, p, n - 1, {})
    -- the parent again, with the new key in its place
    local keys = keys_of(node)
    local rebuilt = new_object({})
    for i = 1, #keys do
        if keys[i] == opts.before then
            rebuilt[p[n]] = value
        end
        rebuilt[keys[i]] = node[keys[i]]
        if keys[i] == opts.after then
            rebuilt[p[n]] = value
        end
    end
    if anchor == nil then
        rebuilt[p[n]] = value
    end
    if n == 1 then
        root = rebuilt
    else
        local holder = root
        for i = 1, n - 2 do
            holder = holder[p[i]]
        end
        holder[p[n - 1]] = rebuilt
    end
    splice(self, "insert", p, root, p, value, { after = opts.after, before = opts.before, comment = opts.comment })
    return nil
end)

-- Removes key or index `last` from the container `node` (a copy).
local function remove_from(node, last)
    if type(last) == "number" then
        local len = #node
        for i = last, len - 1 do
            node[i] = node[i + 1]
        end
        node[len] = nil
    else
        node[last] = nil
    end
end

Document.delete = method("delete", function(self, context, path)
    local p = take_path(context, path)
    local st = rawget(self, FIELDS)
    local n = #p
    local _, found = walk(st.value, p)
    if found < n then
        return false
    end
    local root, node = copy_along(st.value, p, n - 1, {})
    remove_from(node, p[n])
    splice(self, "delete", p, root, p)
    return true
end)

Document.rename = method("rename", function(self, context, path, new_key)
    local p = take_path(context, path)
    local st = rawget(self, FIELDS)
    local n = #p
    if type(new_key) ~= "string" or new_key == "" then
        fail("the new key must be a non-empty string")
    end
    if type(p[n]) ~= "string" then
        fail("the last element must be a key")
    end
    local parent = container_must_be(self, p, n - 1, false)
    if parent[p[n]] == nil then
        fail("the key does not exist")
    end
    if new_key == p[n] then
        return nil
    end
    if parent[new_key] ~= nil then
        fail(('the key "%s" exists already'):format(new_key))
    end
    local root, node = copy_along(st.value, p, n - 1, {})
    rename_key(node, p[n], new_key)
    splice(self, "rename", p, root, p, new_key)
    return nil
end)

Document.move = method("move", function(self, context, from, to)
    local f = take_path(context, from, "from")
    local t = normalize_path(to, "to")
    context.path = path_text(f) .. " to " .. path_text(t)
    local st = rawget(self, FIELDS)
    local nf, nt = #f, #t
    if type(f[nf]) ~= "string" or type(t[nt]) ~= "string" then
        fail("both paths must end with a key")
    end
    local value, found = walk(st.value, f)
    if found < nf then
        fail(path_text(f) .. " does not exist")
    end
    -- `to` inside `from` would move an entry into itself
    local inside = nt >= nf
    for i = 1, nf do
        inside = inside and t[i] == f[i]
    end
    if inside then
        fail("cannot move an entry into itself")
    end
    local target = container_must_be(self, t, nt - 1, false)
    if target[t[nt]] ~= nil then
        fail(path_text(t) .. " exists already")
    end
    local copied = {}
    local root, node = copy_along(st.value, f, nf - 1, copied)
    copied[root] = true
    remove_from(node, f[nf])
    local _, dest = copy_along(root, t, nt - 1, copied)
    dest[t[nt]] = value
    splice(self, "move", f, root, f, t)
    return nil
end)

Document.append = method("append", function(self, context, path, value)
    local p = take_path(context, path)
    check_value(value)
    local st = rawget(self, FIELDS)
    local node = container_must_be(self, p, #p, true)
    local root, copy_node = copy_along(st.value, p, #p, {})
    copy_node[#node + 1] = value
    splice(self, "append", p, root, p, value)
    return nil
end)

Document.text = method("text", function(self)
    return rawget(self, FIELDS).text
end)

Document.changed = method("changed", function(self)
    return rawget(self, FIELDS).changed
end)

Document.__tostring = function(self)
    return rawget(self, FIELDS).text
end

local function new(backend, text)
    if type(backend) ~= "table" or type(backend.name) ~= "string" or type(backend.decode) ~= "function" then
        error("doc.new: the backend must be a table with name and decode", 2)
    end
    if type(text) ~= "string" then
        error(("bad argument #1 to '%s.edit' (string expected, got %s)"):format(backend.name, type(text)), 2)
    end
    local ok, value = pcall(backend.decode, text)
    if not ok then
        if type(value) ~= "string" then
            error(value, 0)
        end
        error(("%s.edit: %s"):format(backend.name, value), 2)
    end
    local doc = setmetatable({ [FIELDS] = { backend = backend, text = text, value = value,
                                            changed = false } }, Document)
    return doc
end

return {
    new = new,
    normalize_path = function(path)
        local ok, p = pcall(normalize_path, path, "path")
        if ok then
            return p
        end
        if getmetatable(p) == Failure then
            error(p.message, 2)
        end
        error(p, 0)
    end,
    path_text = path_text,
    same = same,
}
