-- v1.1.0 keeps session files under ~/.teleclaude/state/sessions instead of
-- ~/.teleclaude/sessions.
local OLD = "~/.teleclaude/sessions"
local PARENT = "~/.teleclaude/state"
local NEW = PARENT .. "/sessions"

function check()
  return not fs.exists(OLD)
end

function migrate()
  if not fs.exists(NEW) then
    fs.mkdir(PARENT)
    fs.rename(OLD, NEW)
    log.info("moved " .. OLD .. " to " .. NEW)
    return true
  end
  -- The new directory exists already (an interrupted earlier attempt, or a
  -- daemon that wrote there first): move entry by entry, never overwrite.
  local kept = 0
  for _, name in ipairs(fs.list(OLD)) do
    local dst = fs.join(NEW, name)
    if fs.exists(dst) then
      dst = fs.join(NEW, name .. ".from-sessions")
      kept = kept + 1
    end
    fs.rename(fs.join(OLD, name), dst)
  end
  fs.remove(OLD)
  log.info("merged " .. OLD .. " into " .. NEW .. " (" .. kept .. " name clashes kept aside)")
  return true
end
