-- v1.1.0 adds a "timeout" setting, 30 seconds.
-- The bug this fixture exists for: check() asks for the value 30, not for
-- the key. Once v1.2.0 raises the timeout to 60, this check() says "not
-- done" on a home where it was done, and migrate() would run again.
local CONFIG = "~/.teleclaude/config.json"

function check()
  return fs.read_json(CONFIG).timeout == 30
end

function migrate()
  local config = fs.read_json(CONFIG)
  config.timeout = 30
  fs.write_json(CONFIG, config)
  return true
end
