-- v1.3.0 reads its update channel from a new `deployment:` section of
-- config.yml (`channel: stable | beta | alpha`, default alpha for this
-- release train). The old top-level `update_channel` key is gone: a value
-- the user set there is carried into the new section, never replaced.
local teleclaude = require("teleclaude")

local OLD, NEW = "update_channel", "deployment.channel"
local DEFAULT = "alpha"
local COMMENT = "Where updates come from: stable, beta or alpha (the daemon checks daily)."

local function plan(doc)
  if doc == nil then
    return "done" -- no config yet: the daemon writes its own on first start
  end
  local p = teleclaude.plan_move(doc, OLD, NEW)
  if p == "done" and not doc:has(NEW) then
    return "add"
  end
  return p
end

function check()
  local doc = teleclaude.config_doc()
  return teleclaude.check_plan(plan(doc), doc, teleclaude.CONFIG, OLD, NEW)
end

-- The section goes after `computer:` when there is one, else at the end.
local function add_section(doc, channel)
  if doc:has("deployment") then
    doc:set(NEW, channel)
  else
    doc:insert("deployment", { channel = channel },
      { after = doc:has("computer") and "computer" or nil, comment = COMMENT })
  end
end

function migrate()
  local ok, why = true, nil
  fs.edit(teleclaude.CONFIG, function(doc)
    local p = plan(doc)
    if doc:has("deployment") and type(doc:get("deployment")) ~= "table" then
      ok, why = false, ("%s: deployment is %s, not a section; make it a section that holds"
        .. " channel: <stable|beta|alpha>, and run the upgrade again"):format(
        teleclaude.CONFIG, tostring(doc:get("deployment")))
    elseif p == "add" then
      add_section(doc, DEFAULT)
      log.info("added the deployment: section (channel: " .. DEFAULT .. ")")
    elseif p == "move" then
      local channel = doc:get(OLD)
      add_section(doc, channel)
      doc:delete(OLD)
      log.info(("moved update_channel (%s) into the deployment: section"):format(tostring(channel)))
    elseif p == "drop_old" then
      doc:delete(OLD)
      log.info("update_channel repeated deployment.channel; removed the old key")
    end
  end)
  return ok, why
end
