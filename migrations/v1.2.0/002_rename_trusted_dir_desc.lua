-- v1.2.0 renamed the `desc` of each computer.trusted_dirs item to
-- `description`. Items are renamed one by one; an item that has both keys
-- with different values keeps both (the user must choose) and is logged.
local teleclaude = require("teleclaude")

-- The plan of every item: a list of {old path, new path, plan}.
local function plans(doc)
  local out = {}
  local dirs = doc and doc:get("computer.trusted_dirs")
  if type(dirs) ~= "table" then
    return out
  end
  for i, item in ipairs(dirs) do
    if type(item) == "table" then
      local old = { "computer", "trusted_dirs", i, "desc" }
      local new = { "computer", "trusted_dirs", i, "description" }
      out[#out + 1] = { old = old, new = new, plan = teleclaude.plan_move(doc, old, new) }
    end
  end
  return out
end

function check()
  local doc = teleclaude.config_doc()
  local settled = true
  for _, item in ipairs(plans(doc)) do
    if item.plan == "clash" then
      teleclaude.report_clash(teleclaude.CONFIG, item.old, item.new, doc)
    end
    settled = settled and teleclaude.settled(item.plan)
  end
  return settled
end

function migrate()
  fs.edit(teleclaude.CONFIG, function(doc)
    local renamed = 0
    for _, item in ipairs(plans(doc)) do
      if item.plan == "move" then
        doc:rename(item.old, "description")
        renamed = renamed + 1
      elseif item.plan == "drop_old" then
        doc:delete(item.old)
        renamed = renamed + 1
      end
    end
    log.info(("renamed desc to description in %d trusted_dirs item(s)"):format(renamed))
  end)
  return true
end
