-- Shared knowledge about the daemon's files, for every migration.
--
-- The daemon keeps its settings in ~/.teleclaude/config.yml (hand-edited,
-- full of the user's comments, read with PyYAML's safe_load) and its secrets
-- in ~/.teleclaude/.env (read with python-dotenv). Migrations change them
-- through fs.edit documents, so every line they do not mean to touch stays
-- byte for byte as the user wrote it.
local M = {}

M.CONFIG = "~/.teleclaude/config.yml"
M.ENV = "~/.teleclaude/.env"

--- The parsed config, or nil when the daemon has never written one.
function M.read_config()
  if not fs.exists(M.CONFIG) then
    return nil
  end
  return fs.read_yaml(M.CONFIG)
end

--- The config as an editable document (read only: for check()), or nil.
function M.config_doc()
  if not fs.exists(M.CONFIG) then
    return nil
  end
  return yaml.edit(fs.read(M.CONFIG))
end

--- The .env as an editable document (read only: for check()), or nil.
function M.env_doc()
  if not fs.exists(M.ENV) then
    return nil
  end
  return dotenv.edit(fs.read(M.ENV))
end

local function path_text(path)
  if type(path) == "string" then
    return path
  end
  local parts = {}
  for i, part in ipairs(path) do
    parts[i] = tostring(part)
  end
  return table.concat(parts, ".")
end

local function equal(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    return a == b
  end
  for k, v in pairs(a) do
    if not equal(v, b[k]) then
      return false
    end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return false
    end
  end
  return true
end

--- Where a value that used to live at `old` should go to `new`, says what
--- to do, without changing anything:
---   "done"     old is gone (nothing to do: fresh file or already migrated);
---   "move"     old is set and new is not: move it;
---   "drop_old" both are set to the same value: old can go, nothing is lost;
---   "clash"    both are set to different values: the user must choose.
--- A clash is never resolved by a migration: both values stay, and
--- `report_clash` logs what the user should do.
function M.plan_move(doc, old, new)
  if not doc:has(old) then
    return "done"
  end
  if not doc:has(new) then
    return "move"
  end
  if equal(doc:get(old), doc:get(new)) then
    return "drop_old"
  end
  return "clash"
end

--- check()'s view of a plan: nothing is left that a migration may do.
function M.settled(plan)
  return plan == "done" or plan == "clash"
end

local function shown(value, secret)
  if secret then
    return "a secret"
  elseif type(value) == "table" then
    return "a section"
  end
  return tostring(value)
end

--- Logs a clash found by plan_move, with both values (never a secret's).
function M.report_clash(file, old, new, doc, secret)
  log.warn(("%s: both %s (%s) and %s (%s) are set; kept both, and the daemon reads %s:"
    .. " remove %s by hand once you have chosen"):format(file, path_text(old),
    shown(doc:get(old), secret), path_text(new), shown(doc:get(new), secret),
    path_text(new), path_text(old)))
end

--- check()'s answer for a plan: true when nothing is left that the
--- migration may do; a clash is settled too, and logged here, where the user
--- will see it even though migrate() never runs.
function M.check_plan(plan, doc, file, old, new, secret)
  if plan == "clash" then
    M.report_clash(file, old, new, doc, secret)
  end
  return M.settled(plan)
end

M.path_text = path_text

return M
