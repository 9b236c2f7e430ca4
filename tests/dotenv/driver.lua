-- driver.lua - reads a JSON array of jobs on stdin, writes a JSON array of
-- results: {op="decode", text} -> {ok, value | err};
-- {op="edit", text, method, args} -> {ok, value = text | err, text} through
-- a document (dotenv.edit): the splicer and the document layer's checks.
local jobs = json.decode(io.read("a"))
local out = json.array({})
for i, job in ipairs(jobs) do
    local ok, res
    if job.op == "decode" then
        ok, res = pcall(dotenv.decode, job.text)
        out[i] = ok and json.object({ ok = true, value = res }) or json.object({ ok = false, err = tostring(res) })
    else
        local args = job.args or {}
        local d = dotenv.edit(job.text)
        ok, res = pcall(d[job.method], d, args[1], args[2], args[3])
        out[i] = json.object({ ok = ok, value = d:text(), err = not ok and tostring(res) or nil })
    end
end
io.write(json.encode(out))
