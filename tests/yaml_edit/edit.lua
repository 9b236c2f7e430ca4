-- edit.lua FILE SPEC OUT: applies one splicer (SPEC is JSON: {"method":
-- ..., "args": [...]}) to FILE's text; writes the result to OUT, or the
-- reason it refused to OUT.err.
local text = read(arg[1])
local spec = json.decode(arg[2])
local ok, result = pcall(backend[spec.method], text, table.unpack(spec.args, 1, #spec.args))
if ok then
    write(arg[3], result)
else
    write(arg[3] .. ".err", tostring(result))
end
