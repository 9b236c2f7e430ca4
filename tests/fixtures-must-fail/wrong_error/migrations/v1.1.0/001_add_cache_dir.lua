-- v1.1.0 caches downloads under ~/.teleclaude/cache.
function check()
  return fs.is_dir("~/.teleclaude/cache")
end

function migrate()
  fs.mkdir("~/.teleclaude/cache")
  return true
end
