-- v1.1.0 renamed the config key "api_url" to "api_endpoint".
-- Every other key, value and their order stay exactly as the user left them.
local teleclaude = require("teleclaude")

function check()
  local config = teleclaude.read_config()
  return config == nil or config.api_url == nil
end

function migrate()
  local config = teleclaude.read_config()
  if config.api_endpoint ~= nil then
    -- Someone already set the new key by hand: it wins, the old one goes.
    log.warn("both api_url and api_endpoint are set; keeping api_endpoint")
    config.api_url = nil
  else
    json.rename(config, "api_url", "api_endpoint")
  end
  teleclaude.write_config(config)
  log.info("renamed api_url to api_endpoint in " .. teleclaude.CONFIG)
  return true
end
