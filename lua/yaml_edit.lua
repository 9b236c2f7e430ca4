-- lua/yaml_edit.lua - the YAML backend of the document layer (SPEC §5.1).
--
-- Run with (scan, encode): scan is the C primitive of src/yaml_doc.c (byte
-- ranges of the nodes along a path), encode is yaml.encode. Returns the
-- splicers lua/doc.lua calls. Each one rewrites only the lines (or bytes)
-- of the entry it changes and keeps everything else, byte for byte; what
-- it cannot splice safely it refuses with error(reason, 0), and doc.lua
-- names the method and path. doc.lua re-decodes every result and compares
-- it with the intended value, so a splice that went wrong cannot land.
local scan, encode = ...

local byte, find, rep, sub, gsub = string.byte, string.find, string.rep, string.sub, string.gsub
local type, ipairs, error, tostring, math_type = type, ipairs, error, tostring, math.type

local function fail(reason)
    error(reason, 0)
end

local function splice(text, a, b, new) -- bytes a..b become new
    return sub(text, 1, a - 1) .. new .. sub(text, b + 1)
end

---------------------------------------------------------------- lines

local function eol_of(text)
    local nl = find(text, "\n", 1, true)
    if nl and nl > 1 and byte(text, nl - 1) == 13 then
        return "\r\n"
    end
    return "\n"
end

local function line_start(text, pos)
    local i = pos - 1
    while i > 0 and byte(text, i) ~= 10 do
        i = i - 1
    end
    return i + 1
end

local function line_after(text, pos) -- first byte past pos's line break
    local nl = find(text, "\n", pos, true)
    return nl and nl + 1 or #text + 1
end

local function content_end(text, pos) -- last byte of pos's line, before its break
    local nl = find(text, "\n", pos, true)
    if not nl then
        return #text
    end
    return (nl > 1 and byte(text, nl - 1) == 13) and nl - 2 or nl - 1
end

-- A block scalar's range runs over the line breaks and blank lines after
-- it; the last byte that matters is its last non-blank one.
local function trim_back(text, pos)
    while pos > 1 do
        local b = byte(text, pos)
        if b ~= 10 and b ~= 13 and b ~= 32 and b ~= 9 then
            break
        end
        pos = pos - 1
    end
    return pos
end

local function col_of(text, pos)
    return pos - line_start(text, pos)
end

local function alone_on_line(text, pos) -- only spaces before pos on its line
    return find(sub(text, line_start(text, pos), pos - 1), "^ *$") ~= nil
end

local function is_blank_line(text, pos)
    return pos <= #text and find(sub(text, pos, content_end(text, pos)), "^[ ]*$") ~= nil
end

-- The comment lines directly above the line starting at `first` (a blank
-- line ends them: a comment block further up belongs to no one entry).
local function comments_above(text, first)
    while first > 1 do
        local prev = line_start(text, first - 1)
        if not find(sub(text, prev, first - 1), "^[ ]*#") then
            break
        end
        first = prev
    end
    return first
end

local function split_lines(s)
    local out, at = {}, 1
    while true do
        local nl = find(s, "\n", at, true)
        if not nl then
            out[#out + 1] = sub(s, at)
            return out
        end
        local line = sub(s, at, nl - 1)
        out[#out + 1] = gsub(line, "\r$", "")
        at = nl + 1
    end
end

local function join(lines, eol)
    local s = ""
    for i, line in ipairs(lines) do
        s = s .. (i > 1 and eol or "") .. line
    end
    return s
end

-- Inserts whole lines at `pos`, the start of a line or the end of the
-- text; a text without a final line break keeps having none.
local function insert_lines(text, pos, lines)
    local eol = eol_of(text)
    if pos > #text and #text > 0 and byte(text, #text) ~= 10 then
        return text .. eol .. join(lines, eol)
    end
    return splice(text, pos, pos - 1, join(lines, eol) .. eol)
end

-- Removes the lines a..b (b is the last byte, the line break included);
-- at the end of a text without a final line break, the break before a.
local function remove_lines(text, a, b)
    if b >= #text and byte(text, #text) ~= 10 and a > 1 then
        a = a - 1
        if a > 1 and byte(text, a - 1) == 13 then
            a = a - 1
        end
    end
    return splice(text, a, b, "")
end

-- An entry set apart by blank lines leaves one blank line, not two.
local function remove_entry(text, a, b)
    local before_blank = a == 1 or is_blank_line(text, line_start(text, a - 1))
    if before_blank and b < #text and is_blank_line(text, b + 1) then
        b = line_after(text, b + 1) - 1
    end
    return remove_lines(text, a, b)
end

---------------------------------------------------------------- the file's style

-- The indentation step: the first indented content line's indentation.
local function indent_step(text)
    local _, _, spaces = find(text, "\n( +)[^ #\r\n]")
    return spaces and #spaces or 2
end

-- Whether block sequences under a key are indented ("key:\n  - a") or
-- flush with it ("key:\n- a"), after the first one the file has.
-- The pattern, tried at every byte of the text, took five decodes' time
-- on a 1 MB file whose sequences follow a comment line: only the line
-- before each "- " item line is tried, with the same pattern, and only
-- when it ends with a colon.
local FLUSH = "\n?( *)[^ #\r\n][^\r\n]*:[ ]*\r?\n( *)%- "
local function sequences_flush(text)
    local at = 1
    while true do
        local dash_at = find(text, "- ", at, true)
        if not dash_at then
            return false
        end
        -- only a line's first "- " can start an item: the next line next
        at = line_after(text, dash_at)
        local item = line_start(text, dash_at)
        -- the line before must end with ":" (then blanks, a CR): most
        -- lines before an item (a comment, a value) fail that cheaply
        local e = item - 2
        if e > 0 and byte(text, e) == 13 then
            e = e - 1
        end
        while e > 0 and byte(text, e) == 32 do
            e = e - 1
        end
        if e > 0 and byte(text, e) == 58 and find(text, "[^ ]", item) == dash_at then
            local from = line_start(text, item - 1)
            local _, _, key, dash = find(sub(text, from > 1 and from - 1 or from, dash_at + 1), FLUSH)
            if key then
                return #dash <= #key
            end
        end
    end
end

---------------------------------------------------------------- values

-- yaml.encode's text of a value, as lines, without document markers.
local function encoded(value)
    local s = encode(value)
    s = gsub(s, "\n%.%.%.\n?$", "\n")
    s = gsub(s, "^%-%-%-[ \n]", "")
    s = gsub(s, "\n+$", "")
    return split_lines(s)
end

-- r.block: a block collection, written on the lines below its key.
local function render(value)
    local lines = encoded(value)
    local first = lines[1] or ""
    local block = type(value) == "table" and not find(first, "^[%[{]")
    return { lines = lines, block = block, seq = block and find(first, "^%-[ \r\n]") ~= nil, value = value }
end

-- A string double-quoted, on one line.
local function double_quoted(s)
    return '"' .. gsub(s, '[%c"\\]', function(c)
        local named = { ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r", ['"'] = '\\"', ["\\"] = "\\\\" }
        return named[c] or string.format("\\x%02X", byte(c))
    end) .. '"'
end

-- yaml.encode writes for block context, where a plain scalar may hold
-- ,[]{} ("${TOKEN}"); inside a flow collection those end it, so a string
-- written plain there is quoted when it holds one.
local function for_flow(line, value)
    if type(value) == "string" and not find(line, "^[\"']") and find(line, "[,%[%]{}]") then
        return double_quoted(value)
    end
    return line
end

local function key_text(key, flow)
    if type(key) ~= "string" then
        fail("a new key must be a string, not " .. (math_type(key) or type(key)))
    end
    local lines = encoded(key)
    if #lines ~= 1 or find(lines[1], "^[|>]") then
        return double_quoted(key)
    end
    return flow and for_flow(lines[1], key) or lines[1]
end

-- A renamed key keeps its quotes.
local function key_in_style(key, style, flow)
    if style == "single" and not find(key, "[%c]") then
        return "'" .. gsub(key, "'", "''") .. "'"
    elseif style == "double" then
        local t = key_text(key)
        if byte(t) == 34 then
            return t
        end
        return '"' .. gsub(key, '["\\]', "\\%0") .. '"'
    end
    return key_text(key, flow)
end

local function indent_lines(lines, first, col, from)
    local out, pad = {}, rep(" ", col)
    for i = from or 1, #lines do
        out[#out + 1] = lines[i] == "" and "" or pad .. lines[i]
    end
    if first then
        table.insert(out, 1, first)
    end
    return out
end

-- The lines of `key: value` at column col.
local function entry_lines(key, value, col, style)
    local r = render(value)
    local head = rep(" ", col) .. key_text(key) .. ":"
    if r.block then
        return indent_lines(r.lines, head, (r.seq and style.flush) and col or col + style.step)
    end
    local out = indent_lines(r.lines, nil, col + style.step, 2)
    table.insert(out, 1, head .. " " .. r.lines[1])
    return out
end

-- The lines of missing parents keys[i..] holding the lines `inner`
-- (already at the right column) or, at the innermost level, value.
local function nested_lines(keys, i, value, col, style)
    if math_type(keys[i]) == "integer" then
        fail("the sequence item " .. keys[i] .. " does not exist")
    end
    if i == #keys then
        return entry_lines(keys[i], value, col, style)
    end
    local out = { rep(" ", col) .. key_text(keys[i]) .. ":" }
    for _, line in ipairs(nested_lines(keys, i + 1, value, col + style.step, style)) do
        out[#out + 1] = line
    end
    return out
end

---------------------------------------------------------------- the path

local STRINGLESS = {
    [""] = true, ["~"] = true, null = true, Null = true, NULL = true,
    yes = true, Yes = true, YES = true, no = true, No = true, NO = true,
    ["true"] = true, True = true, TRUE = true, ["false"] = true, False = true, FALSE = true,
    on = true, On = true, ON = true, off = true, Off = true, OFF = true,
    ["="] = true, ["<<"] = true,
}
local NUMBERS = {
    "^[-+]?0b[01_]+$", "^[-+]?0x[0-9a-fA-F_]+$", "^[-+]?[0-9][0-9_]*$",
    "^[-+]?[0-9][0-9_]*:[0-9:._]*$", "^[-+]?[0-9][0-9_]*%.[0-9_]*$",
    "^[-+]?[0-9][0-9_]*%.[0-9_]*[eE][-+][0-9]+$", "^%.[0-9_]+$", "^%.[0-9_]+[eE][-+][0-9]+$",
    "^[-+]?%.inf$", "^[-+]?%.Inf$", "^[-+]?%.INF$", "^%.nan$", "^%.NaN$", "^%.NAN$",
    "^[0-9][0-9][0-9][0-9]%-[0-9][0-9]?%-[0-9][0-9]?",
}

-- Does PyYAML read this plain scalar as a string? (YAML 1.1 resolution;
-- when in doubt, no: a refusal is safe, a wrong key is not.)
local function plain_is_string(s)
    if STRINGLESS[s] then
        return false
    end
    for _, pattern in ipairs(NUMBERS) do
        if find(s, pattern) then
            return false
        end
    end
    return true
end

local function check_key(k)
    if k.kind ~= "scalar" then
        fail("a key that is not a string")
    end
    if k.anchor then
        fail("an anchored key (&" .. k.anchor .. ")")
    end
    if k.style == "plain" then
        if k.value == "<<" then
            fail("a merge key (<<) in the mapping")
        end
        if k.tag and k.tag ~= "tag:yaml.org,2002:str" and k.tag ~= "!!str" then
            fail("the key " .. k.value .. " has a tag")
        end
        if not k.tag and not plain_is_string(k.value) then
            fail("the key " .. (k.value == "" and '""' or k.value) .. " is not a string once resolved")
        end
    end
end

local function check_mapping(m)
    local seen = {}
    for _, entry in ipairs(m.entries) do
        local k = entry.key
        if k.kind == "scalar" and k.style == "plain" and k.value == "<<" then
            fail("a merge key (<<) in the mapping")
        end
        if k.kind == "scalar" then
            if seen[k.value] then
                fail("a duplicate key (" .. k.value .. ")")
            end
            seen[k.value] = true
        end
    end
end

local function check_node(n, what)
    if n.kind == "alias" then
        fail(what .. " is an alias (*" .. n.anchor .. ")")
    end
    if n.anchor then
        fail(what .. " has an anchor (&" .. n.anchor .. ")")
    end
end

-- Scans text along path and checks every container on it. Returns the
-- scan and the depth of the deepest node that exists.
local function walk(text, path)
    local info = scan(text, path)
    if info.tabs then
        fail("tab indentation")
    end
    if info.documents > 1 then
        fail("a file of several YAML documents")
    end
    local nodes, depth = info.nodes, 0
    if nodes[0] == nil then
        return info, -1
    end
    while nodes[depth + 1] ~= nil do
        local n = nodes[depth]
        check_node(n, "the path")
        if n.kind == "map" then
            check_mapping(n)
        end
        depth = depth + 1
    end
    local n = nodes[depth]
    if depth < #path then
        check_node(n, "the path")
        if n.kind == "map" then
            check_mapping(n)
        end
    end
    -- the mapping the edit changes: every key in it must read as a string
    local m = nodes[math.min(depth, #path - 1)]
    if m ~= nil and m.kind == "map" then
        for _, entry in ipairs(m.entries) do
            check_key(entry.key)
        end
    end
    return info, depth
end

local function entry_of(m, key)
    for i, entry in ipairs(m.entries) do
        if entry.key.value == key then
            return entry, i
        end
    end
end

local function last_of(text, n)
    return trim_back(text, n.last)
end

-- Where an entry's key column and dash or colon are. For a mapping entry:
-- the colon after its key; for a sequence item: its dash.
local function indicator(text, parent, child)
    if parent.kind == "map" then
        local _, colon = find(text, "^[ ]*:", child.key.e + 1)
        if not colon then
            fail("an explicit (?) key")
        end
        return colon, col_of(text, child.key.s), child.key.s
    end
    local i = child.s - 1
    while i > 0 and find(sub(text, i, i), "^[ \r\n]") do
        i = i - 1
    end
    if byte(text, i) ~= 45 then
        fail("a comment between a sequence item's dash and its value")
    end
    return i, col_of(text, i), i
end

---------------------------------------------------------------- replacing a value

local function style_of(text)
    return { step = indent_step(text), flush = sequences_flush(text), eol = eol_of(text) }
end

-- Replaces the value node v, child of parent (its entry, if a mapping),
-- by r (from render()).
local function replace_value(text, parent, child, v, r, style)
    local ind, col = indicator(text, parent, child)
    local empty = v.kind == "scalar" and v.s > v.e
    local last = empty and v.e or last_of(text, v)
    -- on one line with its key or dash (a block collection never is)
    local single = empty or not find(sub(text, ind, last), "\n", 1, true)
    local eol = style.eol
    local in_seq = parent.kind == "seq"
    local cont = in_seq and col + 2 or col + style.step
    if in_seq or not r.block then
        -- first line after the key or dash, the others below it
        local new = r.lines[1]
        local rest = indent_lines(r.lines, nil, cont, 2)
        if #rest > 0 then
            new = new .. eol .. join(rest, eol)
        end
        if empty then
            return splice(text, v.s, v.s - 1, " " .. new)
        elseif single then
            return splice(text, v.s, last, new)
        end
        return splice(text, ind + 1, content_end(text, last), " " .. new)
    end
    local block = join(indent_lines(r.lines, nil, (r.seq and style.flush) and col or cont), eol)
    if single then
        -- a comment after the old value stays on the key's line
        local tail = sub(text, last + 1, content_end(text, last))
        if find(tail, "^[ ]*$") then
            tail = ""
        end
        return splice(text, ind + 1, content_end(text, last), tail .. eol .. block)
    end
    return splice(text, ind + 1, content_end(text, last), eol .. block)
end

local function child_at(parent, key)
    if parent.kind == "map" then
        local entry = entry_of(parent, key)
        return entry, entry and entry.value
    end
    local item = parent.items[key]
    return item, item
end

local function replace_at(text, info, path, depth, r, style)
    local parent = info.nodes[depth - 1]
    local child, v = child_at(parent, path[depth])
    check_node(v, "the value")
    if parent.flow and (r.block or #r.lines > 1 or v.kind ~= "scalar") then
        fail("inside a flow " .. (parent.kind == "map" and "mapping" or "sequence"))
    end
    if parent.flow then -- a scalar for a scalar, in place
        if v.s > v.e then
            fail("an empty value inside a flow collection")
        end
        return splice(text, v.s, v.e, for_flow(r.lines[1], r.value))
    end
    return replace_value(text, parent, child, v, r, style)
end

-- Where new entries of block mapping m go and at which column, as
-- (text, pos, col, spaced): m nil is an empty document; an empty flow
-- mapping ("key: {}") becomes a block one, its "{}" taken out of the text.
local function mapping_end(text, m, style)
    if m == nil then
        return text, #text + 1, 0, false
    end
    if m.kind ~= "map" then
        fail("not a mapping")
    end
    if m.flow and #m.entries == 0 and not m.anchor and not m.tag then
        local head = sub(text, line_start(text, m.s), m.s - 1)
        local _, key_end, indent = find(head, "^( *)[^ -][^\r\n]*:[ ]*$")
        if key_end then
            local cut = line_start(text, m.s) + #gsub(head, " +$", "") - 1
            local rest = splice(text, cut + 1, m.e, "")
            return rest, line_after(rest, cut), #indent + style.step, false
        end
    end
    if m.flow then
        fail("inside a flow mapping")
    end
    local entries = m.entries
    local last = entries[#entries]
    -- siblings set apart by blank lines: a new one is set apart too
    local above = comments_above(text, line_start(text, last.key.s))
    local spaced = #entries > 1 and above > 1 and is_blank_line(text, line_start(text, above - 1))
    return text, line_after(text, last_of(text, last.value)), col_of(text, entries[1].key.s), spaced
end

-- Lines preceded by a blank one when `spaced`.
local function spaced_lines(lines, spaced)
    if spaced then
        table.insert(lines, 1, "")
    end
    return lines
end

local function comment_lines(comment, col)
    local out = {}
    if comment ~= nil then
        for _, line in ipairs(split_lines(tostring(comment))) do
            out[#out + 1] = rep(" ", col) .. (line == "" and "#" or "# " .. line)
        end
    end
    return out
end

---------------------------------------------------------------- the splicers

local backend = { name = "yaml" }

function backend.set(text, path, value)
    local info, depth = walk(text, path)
    local style = style_of(text)
    if depth == #path and depth > 0 then
        if info.nodes[depth - 1].kind == "map" then
            check_key(entry_of(info.nodes[depth - 1], path[depth]).key)
        end
        return replace_at(text, info, path, depth, render(value), style)
    end
    if depth == 0 and #path == 0 then
        fail("cannot replace the whole document")
    end
    local m = depth >= 0 and info.nodes[depth] or nil
    local tail = {}
    for i = depth + 1, #path do
        tail[#tail + 1] = path[i]
    end
    local out, pos, col, spaced = mapping_end(text, m, style)
    return insert_lines(out, pos, spaced_lines(nested_lines(tail, 1, value, col, style), spaced))
end

-- With blank lines around the sibling, the new entry gets them too.
function backend.insert(text, path, value, opts)
    opts = opts or {}
    local n = #path
    local info, depth = walk(text, { table.unpack(path, 1, n - 1) })
    if depth < n - 1 and not (depth == -1 and n == 1) then
        fail("the mapping to insert into does not exist")
    end
    local m = depth >= 0 and info.nodes[n - 1] or nil
    local style = style_of(text)
    local out, pos, col, spaced = mapping_end(text, m, style)
    local sibling = opts.after or opts.before
    local lines = spaced_lines(comment_lines(opts.comment, col), spaced and sibling == nil)
    for _, line in ipairs(entry_lines(path[n], value, col, style)) do
        lines[#lines + 1] = line
    end
    if sibling ~= nil then
        local entry = m and entry_of(m, sibling)
        if entry == nil then
            fail("no key " .. tostring(sibling) .. " to insert " .. (opts.after and "after" or "before"))
        end
        if opts.after then
            pos = line_after(text, last_of(text, entry.value))
            if is_blank_line(text, pos) then
                local after = pos
                while is_blank_line(text, after) do
                    after = line_after(text, after)
                end
                if after <= #text then
                    lines[#lines + 1] = ""
                    pos = after
                end
            end
        else
            if not alone_on_line(text, entry.key.s) then
                fail("the key " .. sibling .. " is the first of a compact sequence item")
            end
            pos = comments_above(text, line_start(text, entry.key.s))
            if pos > 1 and is_blank_line(text, line_start(text, pos - 1)) then
                lines[#lines + 1] = ""
            end
        end
    end
    return insert_lines(out, pos, lines)
end

-- The span of the entry at path with the comment lines directly above
-- it: first byte, last byte (its line break included), the child and
-- its parent. Refuses what cannot be removed by whole lines.
local function entry_span(text, info, path)
    local n = #path
    local parent = info.nodes[n - 1]
    local child, v = child_at(parent, path[n])
    if parent.flow then
        fail("inside a flow " .. (parent.kind == "map" and "mapping" or "sequence"))
    end
    check_node(v, "the value")
    local _, _, start = indicator(text, parent, child)
    if not alone_on_line(text, start) then
        fail("the first entry of a compact sequence item (- key: ...)")
    end
    local first = comments_above(text, line_start(text, start))
    -- comment lines right after it, indented deeper than its key, are its
    -- own (a commented-out option): they go with it
    local stop, key_col = line_after(text, last_of(text, v)), col_of(text, start)
    while stop <= #text do
        local _, _, spaces = find(sub(text, stop, content_end(text, stop)), "^( *)#")
        if spaces == nil or #spaces <= key_col then
            break
        end
        stop = line_after(text, stop)
    end
    return first, stop - 1, child, parent, start
end

local function count(parent)
    return #(parent.kind == "map" and parent.entries or parent.items)
end

-- The only entry of a block collection: the collection becomes {} or [].
local function empty_collection(text, info, path, style)
    local n = #path
    if n == 1 then
        fail("the only entry of the document")
    end
    local parent = info.nodes[n - 1]
    local r = { lines = { parent.kind == "map" and "{}" or "[]" }, block = false }
    return replace_at(text, info, { table.unpack(path, 1, n - 1) }, n - 1, r, style)
end

function backend.delete(text, path)
    local info = walk(text, path)
    local first, last, _, parent = entry_span(text, info, path)
    if count(parent) == 1 then
        return empty_collection(text, info, path, style_of(text))
    end
    return remove_entry(text, first, last)
end

function backend.rename(text, path, new_key)
    local info = walk(text, path)
    local parent = info.nodes[#path - 1]
    if parent.kind ~= "map" then
        fail("not a mapping key")
    end
    local k = entry_of(parent, path[#path]).key
    check_key(k)
    if k.tag then
        fail("the key has a tag")
    end
    return splice(text, k.s, k.e, key_in_style(new_key, k.style, parent.flow))
end

-- Lines re-indented by delta columns (negative: fewer, as far as a line
-- has leading spaces).
local function reindent(lines, delta)
    local out = {}
    for i, line in ipairs(lines) do
        if delta >= 0 then
            out[i] = line == "" and "" or rep(" ", delta) .. line
        else
            local _, spaces = find(line, "^ *")
            out[i] = sub(line, math.min(spaces, -delta) + 1)
        end
    end
    return out
end

function backend.move(text, from, to)
    local info = walk(text, from)
    local first, last, child, parent, start = entry_span(text, info, from)
    if parent.kind ~= "map" then
        fail("only a mapping entry can be moved")
    end
    local src_col = col_of(text, start)
    local k = child.key
    -- the entry's own lines, its key renamed when `to` names another
    local key = to[#to] == k.value and sub(text, k.s, k.e) or key_in_style(to[#to], k.style)
    local region = sub(text, first, k.s - 1) .. key .. sub(text, k.e + 1, last)
    local lines = split_lines(gsub(region, "\r?\n$", ""))
    local style = style_of(text)
    local rest
    if count(parent) == 1 then
        rest = empty_collection(text, info, from, style)
    else
        rest = remove_entry(text, first, last)
    end
    local parent_path = { table.unpack(to, 1, #to - 1) }
    local tinfo, depth = walk(rest, parent_path)
    local m = depth >= 0 and tinfo.nodes[depth] or nil
    local pos, col, spaced
    rest, pos, col, spaced = mapping_end(rest, m, style)
    local header = spaced_lines({}, spaced)
    for i = depth + 1, #parent_path do
        if math_type(parent_path[i]) == "integer" then
            fail("the sequence item " .. parent_path[i] .. " does not exist")
        end
        header[#header + 1] = rep(" ", col) .. key_text(parent_path[i]) .. ":"
        col = col + style.step
    end
    for _, line in ipairs(reindent(lines, col - src_col)) do
        header[#header + 1] = line
    end
    return insert_lines(rest, pos, header)
end

function backend.append(text, path, value)
    local info, depth = walk(text, path)
    local seq = info.nodes[#path]
    if depth < #path or seq.kind ~= "seq" then
        fail("not a sequence")
    end
    check_node(seq, "the sequence")
    if seq.flow then
        fail("inside a flow sequence")
    end
    local dash = col_of(text, seq.s)
    -- the items' own spacing after the dash ("-   path: x" in 4-space files)
    local first = seq.items[1]
    local gap = 1
    if first.s <= content_end(text, seq.s) and first.s - seq.s - 1 >= 1 then
        gap = first.s - seq.s - 1
    end
    local r = render(value)
    local lines = indent_lines(r.lines, rep(" ", dash) .. "-" .. rep(" ", gap) .. r.lines[1],
                               dash + 1 + gap, 2)
    return insert_lines(text, line_after(text, last_of(text, seq)), lines)
end

return backend
