-- v1.2.0 groups logging settings: "log_level": "debug" becomes
-- "logging": {"level": "debug"}.
local teleclaude = require("teleclaude")

function check()
  local config = teleclaude.read_config()
  return config == nil or config.log_level == nil
end

function migrate()
  local config = teleclaude.read_config()
  local logging = config.logging or json.object()
  if logging.level == nil then
    logging.level = config.log_level
  end
  config.logging = logging
  config.log_level = nil
  teleclaude.write_config(config)
  log.info("moved log_level " .. tostring(logging.level) .. " into logging.level")
  return true
end
