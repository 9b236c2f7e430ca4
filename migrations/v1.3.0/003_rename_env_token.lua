-- v1.3.0 names the bot's token TELEGRAM_BOT_TOKEN in ~/.teleclaude/.env
-- (it was TELEGRAM_TOKEN), and config.yml's telegram.bot_token refers to it
-- as ${TELEGRAM_BOT_TOKEN}.
--
-- Order matters for a resumable migration: the config's reference changes
-- first, then the .env. Killed in between, the .env still has the old key,
-- check() is still false, and the next run finishes the job. A reference to
-- ${TELEGRAM_TOKEN} with no such key in the .env is left alone: the token
-- then comes from the daemon's real environment, which no migration sees.
local teleclaude = require("teleclaude")

local OLD, NEW = "TELEGRAM_TOKEN", "TELEGRAM_BOT_TOKEN"
local REF = "telegram.bot_token"

local function plan(env)
  return env and teleclaude.plan_move(env, OLD, NEW) or "done"
end

function check()
  local env = teleclaude.env_doc()
  return teleclaude.check_plan(plan(env), env, teleclaude.ENV, OLD, NEW, true)
end

function migrate()
  if fs.exists(teleclaude.CONFIG) then
    fs.edit(teleclaude.CONFIG, function(doc)
      if doc:get(REF) == "${" .. OLD .. "}" then
        doc:set(REF, "${" .. NEW .. "}")
        log.info("config.yml: " .. REF .. " now refers to ${" .. NEW .. "}")
      end
    end)
  end
  fs.edit(teleclaude.ENV, function(env)
    local p = plan(env)
    if p == "move" then
      env:rename(OLD, NEW)
      log.info(".env: renamed " .. OLD .. " to " .. NEW)
    elseif p == "drop_old" then
      env:delete(OLD)
      log.info(".env: " .. OLD .. " repeated " .. NEW .. "; removed the old key")
    end
  end)
  return true
end
