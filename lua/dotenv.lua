-- dotenv: .env files read exactly as python-dotenv 0.21 reads them with
-- dotenv_values(stream=io.StringIO(text), interpolate=False), and the
-- splicing backend of .env documents (SPEC §5.1, lua/doc.lua).
-- src/dotenv.c runs this chunk with (json, utf8, doc_new) and it returns the
-- module and the backend (for tests; scripts reach it through edit only).
--
-- The scanner mirrors python-dotenv's parser.py step by step (its regexes
-- over Python str, i.e. Unicode code points, with Unicode whitespace for
-- \s), and records the byte spans of every binding so the editor can
-- splice a value, a key or a whole entry without touching any other byte.
local json, utf8, doc_new = ...
local byte, sub, find = string.byte, string.sub, string.find

local M = {}

-- ---- characters -------------------------------------------------------------

-- Byte length of the Unicode whitespace character at i (Python's \s and
-- str.isspace: \t-\r, \x1c-\x1f, space, U+0085, U+00A0, U+1680,
-- U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000), or 0.
local function ws_len(s, i)
    local b = byte(s, i)
    if b == nil then return 0 end
    if b == 32 or (b >= 9 and b <= 13) or (b >= 0x1c and b <= 0x1f) then return 1 end
    if b < 0xc2 then return 0 end
    local c, d = byte(s, i + 1, i + 2)
    if b == 0xc2 then return (c == 0x85 or c == 0xa0) and 2 or 0 end
    if b == 0xe1 then return (c == 0x9a and d == 0x80) and 3 or 0 end
    if b == 0xe2 then
        if c == 0x80 and ((d >= 0x80 and d <= 0x8a) or d == 0xa8 or d == 0xa9 or d == 0xaf) then
            return 3
        end
        return (c == 0x81 and d == 0x9f) and 3 or 0
    end
    if b == 0xe3 then return (c == 0x80 and d == 0x80) and 3 or 0 end
    return 0
end

-- Whitespace other than \r and \n: python-dotenv's [^\S\r\n].
local function hws_len(s, i)
    local b = byte(s, i)
    if b == 10 or b == 13 then return 0 end
    return ws_len(s, i)
end

local function skip(s, i, len_of)
    while true do
        local n = len_of(s, i)
        if n == 0 then return i end
        i = i + n
    end
end

-- End (exclusive) of the line's content: the first \r or \n, or #s + 1.
local function line_end(s, i)
    return find(s, "[\r\n]", i) or #s + 1
end

-- ---- the scanner ---------------------------------------------------------------

local double_escapes = {
    ["\\"] = "\\", ["'"] = "'", ['"'] = '"', a = "\a", b = "\b", f = "\f",
    n = "\n", r = "\r", t = "\t", v = "\v",
}
local single_escapes = { ["\\"] = "\\", ["'"] = "'" }

-- A quoted value opening at i with quote byte q: python-dotenv's
-- '((?:\\'|[^'])*)' (the double-quoted one alike). A quote preceded by a
-- backslash is taken as escaped; when no unescaped quote follows, the
-- regex backtracks to the last escaped one. Returns the closing quote's
-- position, or nil (no match).
local function closing_quote(s, i, q)
    local last_escaped
    local at = i + 1
    while true do
        local j = find(s, q, at, true)
        if j == nil then return last_escaped end
        if byte(s, j - 1) ~= 92 then return j end
        last_escaped, at = j, j + 1
    end
end

local function unescape(raw, escapes)
    return (raw:gsub("\\(.)", function(c)
        local e = escapes[c]
        if e == nil then return nil end
        return e
    end))
end

-- python-dotenv's unquoted value: the rest of the line, cut at the first
-- whitespace run followed by '#', then right-stripped. Returns the value
-- and the end (exclusive) of its bytes in s.
local function unquoted_value(s, i, stop)
    local run, last = nil, i -- run: start of the current whitespace run
    local j = i
    while j < stop do
        local n = ws_len(s, j)
        if n > 0 then
            run = run or j
            j = j + n
        else
            if byte(s, j) == 35 and run ~= nil then break end
            run = nil
            j = j + 1
            last = j
        end
    end
    return sub(s, i, last - 1), last
end

-- Parses the binding starting at p. Returns a record and the next position.
-- Record: start (where the binding's leading whitespace began), head (its
-- first non-blank byte), stop (after its line ending), key, value (nil for
-- a key without '='), err, comment (a comment line), and for editing:
-- kstart/kstop (the key's bytes, quotes included), vstart/vstop (the value
-- token's bytes), quote (the value's quote byte or nil), export, eol (the
-- position of its line ending).
local function parse_binding(s, p)
    local r = { start = p }
    p = skip(s, p, ws_len)
    r.head = p
    if p > #s then
        r.stop = p
        return r, p
    end
    local function fail()
        -- python-dotenv skips the rest of the line from where it got to
        local e = line_end(s, p)
        if e <= #s then e = e + 1 end -- one \r or \n, \r first as it does
        r.key, r.value, r.err, r.stop = nil, nil, true, e
        return r, e
    end
    if sub(s, p, p + 5) == "export" then
        local q = skip(s, p + 6, hws_len)
        if q > p + 6 then r.export, p = true, q end
    end
    local c = byte(s, p)
    r.kstart = p
    if c == 35 then
        r.comment = true
    elseif c == 39 then
        local e = find(s, "'", p + 1, true)
        if e == nil or e == p + 1 then return fail() end
        r.key, p = sub(s, p + 1, e - 1), e + 1
    else
        local q = p
        while q <= #s do
            local b = byte(s, q)
            if b == 61 or b == 35 or ws_len(s, q) > 0 then break end
            q = q + 1
        end
        if q == p then return fail() end
        r.key, p = sub(s, p, q - 1), q
    end
    r.kstop = p
    p = skip(s, p, hws_len)
    if byte(s, p) == 61 and not r.comment then
        p = skip(s, p + 1, hws_len)
        r.vstart = p
        c = byte(s, p)
        if c == 39 or c == 34 then
            local e = closing_quote(s, p, c == 39 and "'" or '"')
            if e == nil then return fail() end
            r.value = unescape(sub(s, p + 1, e - 1), c == 39 and single_escapes or double_escapes)
            r.quote, p = c, e + 1
            r.vstop = p
        elseif c == nil or c == 10 or c == 13 then
            r.value, r.vstop = "", p
        else
            local e = line_end(s, p)
            r.value, r.vstop = unquoted_value(s, p, e)
            p = e
        end
    end
    local q = skip(s, p, hws_len)
    if byte(s, q) == 35 then q = line_end(s, q) end
    c = byte(s, q)
    r.eol = q
    if c == 13 then
        p = byte(s, q + 1) == 10 and q + 2 or q + 1
    elseif c == 10 then
        p = q + 1
    elseif c == nil then
        p = q
    else
        return fail()
    end
    r.stop = p
    return r, p
end

local function check_utf8(s, who)
    local ok, bad = utf8.len(s)
    if ok == nil then
        error(("%s: invalid UTF-8 at byte %d"):format(who, bad), 0)
    end
end

-- Every binding of the text, in order.
local function scan(s, who)
    check_utf8(s, who)
    local list, p = {}, 1
    while p <= #s do
        local r
        r, p = parse_binding(s, p)
        list[#list + 1] = r
    end
    return list
end

-- The decoded table: key -> string, json.null for a key without '=',
-- keys in the order python-dotenv's dict keeps (first definition), values
-- from the last one.
local function decode(text)
    local out = json.object()
    for _, r in ipairs(scan(text, "dotenv.decode")) do
        if r.key ~= nil then
            local v = r.value
            if v == nil then v = json.null end
            out[r.key] = v
        end
    end
    return out
end

function M.decode(text)
    if type(text) ~= "string" then
        error(("bad argument #1 to 'decode' (string expected, got %s)"):format(type(text)), 2)
    end
    local ok, v = pcall(decode, text)
    if not ok then error(v, 2) end
    return v
end

-- ---- the editor's backend ----------------------------------------------------------

local function file_eol(s)
    local i = find(s, "[\r\n]")
    if i == nil then return "\n" end
    if byte(s, i) == 13 then
        return byte(s, i + 1) == 10 and "\r\n" or "\r"
    end
    return "\n"
end

local function only_key(path)
    if #path ~= 1 or type(path[1]) ~= "string" then
        error("a .env file is flat: a path is one key (write {\"A.B\"} for a key with dots)", 0)
    end
    return path[1]
end

-- The one binding defining key, or nil; refuses a key defined twice, since
-- an edit of one definition would be contradicted by the other.
local function find_key(list, key)
    local found
    for _, r in ipairs(list) do
        if r.key == key then
            if found ~= nil then
                error(("the key is defined more than once (lines of the same key disagree on " ..
                    "which one counts)"), 0)
            end
            found = r
        end
    end
    return found
end

-- New keys: what python-dotenv reads unquoted and a shell would accept.
local function check_new_key(key)
    if type(key) ~= "string" or not key:find("^[%a_][%w_.%-]*$") then
        error(("key %q is not a plain .env key (letters, digits, '_', '.', '-'; not " ..
            "starting with a digit)"):format(tostring(key)), 0)
    end
end

local function has_ws(v)
    for i = 1, #v do
        if ws_len(v, i) > 0 then return true end
    end
    return false
end

-- Unquoted only when every reader agrees: no whitespace, quotes,
-- backslashes, '#', '$' or other shell syntax; non-ASCII letters are fine.
local function safe_unquoted(v)
    return v ~= "" and not v:find("[^%w_./:@%%+,=~%-\128-\255]") and not has_ws(v)
end

-- The value written in the quoting q ("'" or '"'), or nil if it cannot be.
-- multiline: the old value spread over lines, so literal newlines keep
-- its style.
local function quoted(v, q, multiline)
    if q == "'" then
        if v:find("['\\]") or (not multiline and v:find("[\r\n]")) then return nil end
        return "'" .. v .. "'"
    end
    local body = v:gsub('[\\"]', "\\%0")
    if not multiline then
        body = body:gsub("\n", "\\n"):gsub("\r", "\\r")
    end
    return '"' .. body .. '"'
end

-- How a value is written: the old quoting when it still works, else
-- unquoted when safe, else single quotes, else double quotes.
local function encode_value(v, style, multiline)
    if type(v) ~= "string" then
        error(("a .env value must be a string, not a %s"):format(
            v == json.null and "null" or type(v)), 0)
    end
    if v:find("${", 1, true) then
        error("the value contains \"${\", which python-dotenv would expand", 0)
    end
    if v:sub(-1) == "\\" then
        error("the value ends in a backslash, which python-dotenv cannot read back quoted", 0)
    end
    check_utf8(v, "value")
    if style == "" and (safe_unquoted(v) or v == "") then return v end
    if style == "'" or style == '"' then
        local w = quoted(v, style, multiline)
        if w then return w end
    end
    if safe_unquoted(v) then return v end
    return quoted(v, "'", false) or quoted(v, '"', false)
end

-- The style new entries follow: `export ` and the quote every entry of the
-- file shares, if they all share one.
local function file_style(list)
    local export, quote, any = true, nil, false
    for _, r in ipairs(list) do
        if r.key ~= nil then
            any = true
            export = export and r.export == true
            local q = r.quote and string.char(r.quote) or ""
            if quote == nil then quote = q elseif quote ~= q then quote = false end
        end
    end
    if not any then return "", nil end
    return export and "export " or "", quote or nil
end

local function new_line(list, key, value)
    check_new_key(key)
    local export, quote = file_style(list)
    return export .. key .. "=" .. encode_value(value, quote or "", false)
end

-- Start of the line holding position i.
local function line_start(s, i)
    while i > 1 do
        local b = byte(s, i - 1)
        if b == 10 or b == 13 then break end
        i = i - 1
    end
    return i
end

-- Where the entry r begins with the comment lines directly above it (no
-- blank line between): index of r in list, start byte.
local function entry_start(s, list, r)
    local idx
    for i, x in ipairs(list) do
        if x == r then idx = i end
    end
    local first = r
    local i = idx - 1
    while i >= 1 and list[i].comment and not find(sub(s, first.start, first.head - 1), "[\r\n]") do
        first = list[i]
        i = i - 1
    end
    return line_start(s, first.head)
end

-- Text with `line` added at byte position at (a line start or #s + 1).
local function insert_line(s, at, line)
    local eol = file_eol(s)
    if at > #s then
        if s == "" then return line .. eol end
        local last = byte(s, #s)
        if last == 10 or last == 13 then return s .. line .. eol end
        return s .. eol .. line -- a missing final newline stays missing
    end
    return sub(s, 1, at - 1) .. line .. eol .. sub(s, at)
end

local backend = { name = "dotenv", decode = decode }

function backend.set(text, path, value)
    local key = only_key(path)
    local list = scan(text, "dotenv.edit")
    local r = find_key(list, key)
    if r == nil then
        return insert_line(text, #text + 1, new_line(list, key, value))
    end
    if r.vstart == nil then -- KEY without '=': add one
        return sub(text, 1, r.kstop - 1) .. "=" .. encode_value(value, "", false) .. sub(text, r.kstop)
    end
    local style = r.quote and string.char(r.quote) or ""
    local old = sub(text, r.vstart, r.vstop - 1)
    local w = encode_value(value, style, find(old, "[\r\n]") ~= nil)
    if w == "" and style == "" and r.vstop < r.eol then
        w = "''" -- KEY= # c would read "# c"
    end
    return sub(text, 1, r.vstart - 1) .. w .. sub(text, r.vstop)
end

function backend.insert(text, path, value, opts)
    local key = only_key(path)
    opts = opts or {}
    local list = scan(text, "dotenv.edit")
    local line = new_line(list, key, value)
    if opts.comment ~= nil then
        local c = tostring(opts.comment)
        if find(c, "[\r\n]") then error("the comment has a line break", 0) end
        line = "# " .. c .. file_eol(text) .. line
    end
    local at = #text + 1
    if opts.after ~= nil then
        local r = find_key(list, opts.after)
        if r == nil then error(("no key %q to insert after"):format(tostring(opts.after)), 0) end
        at = r.stop
        if at > #text then return insert_line(text, at, line) end
        local b = byte(text, at - 1)
        if b ~= 10 and b ~= 13 then -- an error-free entry always ends its line
            error("the entry to insert after does not end its line", 0)
        end
    elseif opts.before ~= nil then
        local r = find_key(list, opts.before)
        if r == nil then error(("no key %q to insert before"):format(tostring(opts.before)), 0) end
        at = entry_start(text, list, r)
    end
    return insert_line(text, at, line)
end

function backend.delete(text, path)
    local key = only_key(path)
    local list = scan(text, "dotenv.edit")
    local r = find_key(list, key)
    if r == nil then return text end
    local from, to = entry_start(text, list, r), r.stop
    if to > #text and byte(text, to - 1) ~= 10 and byte(text, to - 1) ~= 13 and from > 1 then
        -- the last line had no newline: take the one before it instead
        from = from - 1
        if from > 1 and byte(text, from) == 10 and byte(text, from - 1) == 13 then from = from - 1 end
    end
    return sub(text, 1, from - 1) .. sub(text, to)
end

function backend.rename(text, path, new_key)
    local key = only_key(path)
    check_new_key(new_key)
    local list = scan(text, "dotenv.edit")
    local r = find_key(list, key)
    if r == nil then error("no such key", 0) end
    if find_key(list, new_key) ~= nil then error(("key %q exists already"):format(new_key), 0) end
    local a, b = r.kstart, r.kstop
    if byte(text, a) == 39 then a, b = a + 1, b - 1 end -- keep the key's quotes
    return sub(text, 1, a - 1) .. new_key .. sub(text, b)
end

function backend.move()
    error("a .env file is flat, so there is nowhere to move an entry: use rename", 0)
end

function backend.append()
    error("a .env file has no sequences to append to", 0)
end

-- dotenv.edit(text): a document (SPEC §5.1) over a .env text. A tail call,
-- so that doc.new's errors (level 2) name the script's line, not this one.
function M.edit(text)
    return doc_new()(backend, text)
end

return M, backend
