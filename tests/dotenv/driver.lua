-- driver.lua - reads a JSON array of jobs on stdin, writes a JSON array of
-- results: {op="decode", text} -> {ok, value | err};
-- {op="edit", text, method, args} -> {ok, text | err} through the .env
-- backend's splicer (dotenv_backend), as the document layer calls it.
local jobs = json.decode(io.read("a"))
local out = json.array({})
for i, job in ipairs(jobs) do
    local ok, res
    if job.op == "decode" then
        ok, res = pcall(dotenv.decode, job.text)
    else
        local args = job.args or {}
        ok, res = pcall(dotenv_backend[job.method], job.text, args[1], args[2], args[3])
    end
    if ok then
        out[i] = json.object({ ok = true, value = res })
    else
        out[i] = json.object({ ok = false, err = tostring(res) })
    end
end
io.write(json.encode(out))
