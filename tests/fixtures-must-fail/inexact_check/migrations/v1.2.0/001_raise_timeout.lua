-- v1.2.0 raises a timeout of 30 seconds to 60.
local CONFIG = "~/.teleclaude/config.json"

function check()
  local timeout = fs.read_json(CONFIG).timeout
  return timeout == nil or timeout >= 60
end

function migrate()
  local config = fs.read_json(CONFIG)
  config.timeout = 60
  fs.write_json(CONFIG, config)
  return true
end
