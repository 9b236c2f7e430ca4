-- v1.1.0 keeps session files under ~/.teleclaude/state/sessions instead of
-- ~/.teleclaude/sessions.
local OLD = "~/.teleclaude/sessions"
local PARENT = "~/.teleclaude/state"
local NEW = PARENT .. "/sessions"

function check()
  return not fs.exists(OLD)
end

-- A name in NEW that nothing uses yet: `name`, else `name.from-sessions`,
-- else `name.from-sessions-2`, -3, ... A clash must never replace a file.
local function free_name(name)
  local candidate = fs.join(NEW, name)
  if not fs.exists(candidate) then
    return candidate, false
  end
  candidate = fs.join(NEW, name .. ".from-sessions")
  local n = 1
  while fs.exists(candidate) do
    n = n + 1
    candidate = fs.join(NEW, ("%s.from-sessions-%d"):format(name, n))
  end
  return candidate, true
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
    local dst, clash = free_name(name)
    if clash then
      kept = kept + 1
      log.warn(("%s/%s: %s/%s exists already; kept both, this one as %s"):format(
        OLD, name, NEW, name, dst))
    end
    fs.rename(fs.join(OLD, name), dst)
  end
  fs.remove(OLD)
  log.info("merged " .. OLD .. " into " .. NEW .. " (" .. kept .. " name clashes kept aside)")
  return true
end
