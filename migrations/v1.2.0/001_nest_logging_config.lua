-- v1.2.0 groups logging settings: the top-level `log_level: debug` of
-- config.yml becomes `level: debug` in the `logging:` section, with the
-- comments the user wrote above it.
local teleclaude = require("teleclaude")

local OLD, NEW = "log_level", "logging.level"

local function plan(doc)
  return doc and teleclaude.plan_move(doc, OLD, NEW) or "done"
end

function check()
  local doc = teleclaude.config_doc()
  return teleclaude.check_plan(plan(doc), doc, teleclaude.CONFIG, OLD, NEW)
end

function migrate()
  local ok, why = true, nil
  fs.edit(teleclaude.CONFIG, function(doc)
    local p = plan(doc)
    if p == "drop_old" then
      doc:delete(OLD)
      log.info(OLD .. " repeated " .. NEW .. "; removed the old key")
    elseif p == "move" and not doc:has("logging") then
      -- No section yet: the entry becomes the section, so its comments and
      -- its place in the file stay.
      local level = doc:get(OLD)
      doc:rename(OLD, "logging")
      doc:set("logging", { level = level })
      log.info("moved log_level into a new logging: section")
    elseif p == "move" and type(doc:get("logging")) ~= "table" then
      ok, why = false, ("%s: logging is %s, not a section; make it a section that holds"
        .. " level: %s, and run the upgrade again"):format(teleclaude.CONFIG, tostring(doc:get("logging")),
        tostring(doc:get(OLD)))
    elseif p == "move" then
      doc:move(OLD, NEW)
      log.info("moved log_level into the logging: section")
    end
  end)
  return ok, why
end
