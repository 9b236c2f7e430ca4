-- Shared knowledge about the daemon's files, for every migration.
local M = {}

M.CONFIG = "~/.teleclaude/config.json"

--- The parsed config, or nil when the daemon has never written one.
function M.read_config()
  if not fs.exists(M.CONFIG) then
    return nil
  end
  return fs.read_json(M.CONFIG)
end

--- Writes the config back atomically, keeping its key order and its mode.
function M.write_config(config)
  fs.write_json(M.CONFIG, config)
end

return M
