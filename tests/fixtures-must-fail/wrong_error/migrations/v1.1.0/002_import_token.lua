-- v1.1.0 keeps the API token in the config instead of ~/.teleclaude/token.txt.
-- Without the file there is nothing to import, and guessing would lock the
-- user out: fail with a reason the user can act on.
local CONFIG = "~/.teleclaude/config.json"
local TOKEN = "~/.teleclaude/token.txt"

function check()
  return fs.read_json(CONFIG).token ~= nil
end

function migrate()
  if not fs.exists(TOKEN) then
    return false, "no " .. TOKEN .. " to import: put the API token there and upgrade again"
  end
  local config = fs.read_json(CONFIG)
  config.token = (fs.read(TOKEN):gsub("%s+$", ""))
  fs.write_json(CONFIG, config)
  fs.remove(TOKEN)
  log.info("imported the API token into " .. CONFIG)
  return true
end
