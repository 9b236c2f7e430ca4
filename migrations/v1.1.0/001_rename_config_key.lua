-- v1.1.0 renamed telegram.api_url to telegram.api_endpoint in config.yml.
-- Only the key changes: its value, the comments around it and every other
-- line stay exactly as the user wrote them.
local teleclaude = require("teleclaude")

local OLD, NEW = "telegram.api_url", "telegram.api_endpoint"

local function plan(doc)
  return doc and teleclaude.plan_move(doc, OLD, NEW) or "done"
end

function check()
  local doc = teleclaude.config_doc()
  return teleclaude.check_plan(plan(doc), doc, teleclaude.CONFIG, OLD, NEW)
end

function migrate()
  fs.edit(teleclaude.CONFIG, function(doc)
    local p = plan(doc)
    if p == "move" then
      doc:rename(OLD, "api_endpoint")
      log.info("renamed " .. OLD .. " to " .. NEW .. " in " .. teleclaude.CONFIG)
    elseif p == "drop_old" then
      -- Both set to the same value: the old key can go, nothing is lost.
      doc:delete(OLD)
      log.info(OLD .. " repeated " .. NEW .. "; removed the old key from " .. teleclaude.CONFIG)
    end
  end)
  return true
end
