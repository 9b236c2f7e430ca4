-- The JSON backend of documents (SPEC §5.1): splicers over the text that
-- keep the file's own layout. cJSON reports no byte offsets, so this walks
-- the text itself; but only the containers on an edit's path, member by
-- member: every other value is skipped whole by json's C skip(), so an
-- edit costs about one scan of the text, not a parse into Lua.
--
-- Loaded by src/doc.c with json's internals; returns the backend table.
-- doc.lua has checked what exists before a splicer runs, and checks the
-- result after it.
local internal = ...

local error, type = error, type
local skip, decode, encode = internal.skip, internal.decode, internal.encode

-- ---- scanning ---------------------------------------------------------------

local function ws(text, pos)
    return text:find("[^ \t\r\n]", pos) or #text + 1
end

local function root_start(text)
    return ws(text, text:sub(1, 3) == "\239\187\191" and 4 or 1)
end

-- The container at `pos` ('{' or '['): its members in order, each
-- { kstart, kend, key, vstart, vend } (ends exclusive; no key in arrays),
-- and where it closes. With `upto`, an array's scan stops after that many
-- members (no `close` then): a set of item 500 of 5,000 need not visit
-- the other 4,500.
local function scan_container(text, pos, upto)
    local object = text:byte(pos) == 123 -- "{"
    local members = {}
    local i = ws(text, pos + 1)
    local close_byte = object and 125 or 93
    if text:byte(i) == close_byte then
        return { open = pos, close = i, members = members, object = object }
    end
    while true do
        local m = {}
        if object then
            m.kstart = i
            m.kend = skip(text, i)
            m.key = decode(text:sub(m.kstart, m.kend - 1))
            i = ws(text, ws(text, m.kend) + 1) -- past ':'
        end
        m.vstart = i
        m.vend = skip(text, i)
        members[#members + 1] = m
        if not object and #members == upto then
            return { open = pos, members = members, object = false, partial = true }
        end
        i = ws(text, m.vend)
        if text:byte(i) ~= 44 then -- ","
            break
        end
        i = ws(text, i + 1)
    end
    return { open = pos, close = i, members = members, object = object }
end

local function find_member(container, element)
    local members = container.members
    if container.object then
        -- every member is looked at: a key the object holds twice is
        -- refused, since decoding keeps the last and a splice would change
        -- the first
        local found
        for j = 1, #members do
            if members[j].key == element then
                if found then
                    error(("the key %q is in the object more than once"):format(element), 0)
                end
                found = j
            end
        end
        return found
    end
    if type(element) == "number" and members[element] then
        return element
    end
    return nil
end

-- Follows path[1..n]; returns the member at path[n] and its container (or,
-- for n == 0, nil and the root value's start).
local function locate(text, path, n)
    local pos = root_start(text)
    local container, member, index
    for i = 1, n do
        local c = text:byte(pos)
        if c ~= 123 and c ~= 91 then
            error("the path goes through a value that is not a container", 0)
        end
        container = scan_container(text, pos)
        index = find_member(container, path[i])
        if not index then
            error("the path does not exist", 0)
        end
        member = container.members[index]
        pos = member.vstart
    end
    return member, container, index, pos
end

-- ---- layout -------------------------------------------------------------------

local function newline_of(text)
    return text:find("\r\n", 1, true) and "\r\n" or "\n"
end

-- The indentation of the line holding pos.
local function line_indent(text, pos)
    local line_start = pos
    while line_start > 1 do
        local b = text:byte(line_start - 1)
        if b == 10 or b == 13 then
            break
        end
        line_start = line_start - 1
    end
    return text:match("^[ \t]*", line_start)
end

-- Whether the member starts its own line. Walks back from pos over blanks
-- only: a pattern anchored at the end would be tried at every byte before
-- pos, which made an edit near the end of a large file cost several decodes.
local function on_own_line(text, pos)
    local i = pos - 1
    local b = text:byte(i)
    while b == 32 or b == 9 do
        i = i - 1
        b = text:byte(i)
    end
    return b == 10 or b == 13
end

-- The file's indentation step: the first indented line's whitespace
-- (the first line of a pretty-printed file at depth 1), or nil for a file
-- without line breaks (which then stays on one line).
local function indent_unit(text)
    -- line by line: an unanchored pattern starting with "\n" would be tried
    -- at every byte of a file without line breaks
    local nl = text:find("\n", 1, true)
    if not nl then
        return nil
    end
    while nl do
        local unit = text:match("^([ \t]+)[^ \t\r\n]", nl + 1)
        if unit then
            return unit
        end
        nl = text:find("\n", nl + 1, true)
    end
    return "  "
end

-- What stands between a key and its value in this file (": " or ":").
local function colon_of(text, container)
    local m = container and container.members[1]
    if m and m.kend then
        return text:sub(m.kend, m.vstart - 1)
    end
    local root = root_start(text)
    if text:byte(root) == 123 then
        local c = scan_container(text, root)
        if c.members[1] then
            return text:sub(c.members[1].kend, c.members[1].vstart - 1)
        end
    end
    return indent_unit(text) and ": " or ":"
end

-- The value as JSON: on one line for one-line containers, else indented
-- like the file, its lines starting at `indent`.
local function encode_at(text, value, indent, multiline)
    local unit = indent_unit(text)
    if not multiline or not unit then
        return encode(value)
    end
    local out = encode(value, { indent = 1 })
    local nl = newline_of(text)
    return (out:gsub("\n( *)", function(spaces)
        return nl .. indent .. unit:rep(#spaces)
    end))
end

local function splice(text, from, to, insert)
    return text:sub(1, from - 1) .. insert .. text:sub(to)
end

-- ---- adding a member --------------------------------------------------------------

-- Adds `member_text` (a key and value, or an item; built by `make` from the
-- indentation it will have and whether it is on its own line) to the
-- container as member number `index` (#members + 1: last).
local function add_member(text, container, index, make)
    local members = container.members
    local nl = newline_of(text)
    if #members == 0 then
        local base = line_indent(text, container.open)
        local unit = indent_unit(text)
        if not unit then
            return splice(text, container.open + 1, container.close, make("", false))
        end
        local inner = base .. unit
        return splice(text, container.open + 1, container.close,
            nl .. inner .. make(inner, true) .. nl .. base)
    end
    local first = members[1]
    local first_start = first.kstart or first.vstart
    local multiline = on_own_line(text, first_start)
    local indent = multiline and line_indent(text, first_start) or ""
    local entry = make(indent, multiline)
    local separator
    if multiline then
        separator = "," .. nl .. indent
    elseif #members >= 2 then
        separator = text:sub(members[1].vend, (members[2].kstart or members[2].vstart) - 1)
    else
        separator = colon_of(text, container):find(" ") and ", " or ","
    end
    if index > #members then
        local last = members[#members]
        return splice(text, last.vend, last.vend, separator .. entry)
    end
    local at = members[index].kstart or members[index].vstart
    return splice(text, at, at, entry .. separator)
end

local function keyed(text, container, key, value)
    local colon = colon_of(text, container)
    return function(indent, multiline)
        return encode(key) .. colon .. encode_at(text, value, indent, multiline)
    end
end

-- The nested objects a set creates for path[from + 1..n] around value.
local function nested(path, from, value)
    for i = #path, from + 1, -1 do
        local m = internal.object({})
        m[path[i]] = value
        value = m
    end
    return value
end

-- ---- splicers ------------------------------------------------------------------------

local backend = { name = "json", decode = decode }

function backend.set(text, path, value)
    local n = #path
    -- the deepest part of the path that exists
    local found = 0
    local pos = root_start(text)
    local member, container
    for i = 1, n do
        local c = text:byte(pos)
        if c ~= 123 and c ~= 91 then
            break
        end
        local element = path[i]
        local scanned = scan_container(text, pos, type(element) == "number" and element or nil)
        local index = find_member(scanned, element)
        if not index then
            container = scanned
            break
        end
        container, member = scanned, scanned.members[index]
        found, pos = i, member.vstart
    end
    if found == n then
        local start = member.kstart or member.vstart
        local multiline = on_own_line(text, start)
        local indent = line_indent(text, start)
        local nested_multiline = multiline or text:sub(member.vstart, member.vend - 1):find("\n") ~= nil
        return splice(text, member.vstart, member.vend, encode_at(text, value, indent, nested_multiline))
    end
    local key = path[found + 1]
    return add_member(text, container, #container.members + 1,
        keyed(text, container, key, nested(path, found + 1, value)))
end

function backend.insert(text, path, value, opts)
    if opts and opts.comment then
        error("JSON has no comments (comment is for YAML and .env documents)", 0)
    end
    local n = #path
    local _, _, _, pos = locate(text, path, n - 1)
    local container = scan_container(text, pos)
    local index = #container.members + 1
    local anchor = opts and (opts.after or opts.before)
    if anchor then
        index = find_member(container, anchor)
        if opts.after then
            index = index + 1
        end
    end
    return add_member(text, container, index, keyed(text, container, path[n], value))
end

-- Removes member `index` of the container, with its separator.
local function remove_member(text, container, index)
    local members = container.members
    local m = members[index]
    local start = m.kstart or m.vstart
    if #members == 1 then
        return splice(text, container.open + 1, container.close, "")
    end
    if index < #members then
        local next_member = members[index + 1]
        return splice(text, start, next_member.kstart or next_member.vstart, "")
    end
    return splice(text, members[index - 1].vend, m.vend, "")
end

function backend.delete(text, path)
    local _, container, index = locate(text, path, #path)
    return remove_member(text, container, index)
end

function backend.rename(text, path, new_key)
    local member = locate(text, path, #path)
    return splice(text, member.kstart, member.kend, encode(new_key))
end

-- The member's value text, re-indented from `old` to `new` indentation.
local function reindent(value_text, old, new)
    local ok = true
    local out = value_text:gsub("(\r?\n)([ \t]*)", function(nl, spaces)
        if spaces:sub(1, #old) ~= old then
            ok = false
            return nil
        end
        return nl .. new .. spaces:sub(#old + 1)
    end)
    return ok and out or nil
end

function backend.move(text, from, to)
    local member, container, index = locate(text, from, #from)
    local start = member.kstart or member.vstart
    local old_indent = line_indent(text, start)
    local value_text = text:sub(member.vstart, member.vend - 1)
    local value = decode(value_text)
    local removed = remove_member(text, container, index)
    local n = #to
    local _, _, _, pos = locate(removed, to, n - 1)
    local target = scan_container(removed, pos)
    local colon = colon_of(removed, target)
    return add_member(removed, target, #target.members + 1, function(indent, multiline)
        local moved = multiline and reindent(value_text, old_indent, indent)
        return encode(to[n]) .. colon .. (moved or encode_at(removed, value, indent, multiline))
    end)
end

function backend.append(text, path, value)
    local _, _, _, pos = locate(text, path, #path)
    local container = scan_container(text, pos)
    return add_member(text, container, #container.members + 1, function(indent, multiline)
        return encode_at(text, value, indent, multiline)
    end)
end

return backend
