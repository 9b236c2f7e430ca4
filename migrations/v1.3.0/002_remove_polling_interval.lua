-- v1.3.0 no longer reads telegram.polling_interval (it uses long polling,
-- whose interval the server sets). The key is removed where it still holds
-- the old default, 2: nothing the user chose is lost. A value the user
-- changed stays in the file, unused, and is logged, so they can decide.
local teleclaude = require("teleclaude")

local KEY = "telegram.polling_interval"
local OLD_DEFAULT = 2

function check()
  local doc = teleclaude.config_doc()
  if doc == nil or not doc:has(KEY) then
    return true
  end
  local value = doc:get(KEY)
  if value ~= OLD_DEFAULT then
    log.warn(("%s: %s is %s; the daemon no longer reads it (kept: remove it by hand)"):format(
      teleclaude.CONFIG, KEY, tostring(value)))
    return true
  end
  return false
end

function migrate()
  fs.edit(teleclaude.CONFIG, function(doc)
    if doc:get(KEY) == OLD_DEFAULT then
      doc:delete(KEY)
      log.info("removed " .. KEY .. " (it held the old default, " .. OLD_DEFAULT .. ")")
    end
  end)
  return true
end
