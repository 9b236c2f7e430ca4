---@meta migrate
-- Annotations for editors (lua-language-server) of everything a migration
-- script can use under libmigrate. Not loaded by the runner and not embedded
-- in the library: it only describes what src/sandbox.c, src/fs.c, lua/fs.lua,
-- src/json.c and src/version.c provide. Point LuaLS at this directory
-- ("workspace.library": ["lua/meta"]) and set "runtime.version": "Lua 5.4".
--
-- Paths: every fs function takes a path that is absolute ("/srv/x") or starts
-- with "~/" (the run's home, migration.home); "~" alone is the home itself.
-- A relative path raises. After ".." and the symlinks of existing components
-- are resolved, the path must lie inside the allowed roots (the home by
-- default), else the call raises `fs.<fn>: "<path>": outside allowed roots`.
-- The migration state file, its lock and their temp files can never be
-- changed from a script.
--
-- Errors are raised, never returned: `fs.<fn>: "<path as given>": <reason>`,
-- the reason being the system's text ("No such file or directory"). A
-- migration does not carry on after a lost write.
--
-- Read-only phases: while check() runs, while the top level of a script
-- runs, every function that changes something (fs.write, write_json, mkdir,
-- remove, remove_tree, rename, copy, symlink, chmod) raises
-- `fs.<fn>: not allowed: ...`. The top level runs once, before any
-- migration, so there every function that touches the file system raises,
-- reads included; fs.join and fs.expand work everywhere.

-- ---- What a script defines ------------------------------------------------

---Tells whether this migration's effect is already present.
---
---Called before migrate() (true: the migration is recorded without running
---it) and again after it (it must then return true, else the migration
---fails as "not idempotent"). It must be exact: true exactly when the
---change this migration makes is there, looking only at what this
---migration changes, never at what a later migration changes.
---
---Runs read-only: every fs function that would change something raises.
---Must return a boolean; anything else (the nil of a forgotten `return`)
---fails the migration.
---@return boolean present
function check() end

---Makes this migration's change. Called only when check() returned false,
---never in a dry run; check() is called again afterwards and must return
---true.
---
---Return true on success, or false (optionally with a reason) for a failure
---the script handled; raising an error fails the migration too. Anything
---other than a boolean fails it as a broken contract. The first failure
---halts the upgrade; the next run retries this migration.
---@return boolean ok
---@return string? reason when ok is false: why, for the report
function migrate() end

-- ---- Base functions the sandbox replaces --------------------------------

---Sends its arguments, converted with tostring and separated by spaces, to
---the update executor as an info log line (the same as log.info). The
---library never writes to stdout.
---@param ... any
function print(...) end

---Sends its arguments, converted with tostring and separated by spaces, to
---the update executor as a warning log line (the same as log.warn). Unlike
---stock Lua, "@on"/"@off" have no special meaning.
---@param ... any
function warn(...) end

-- ---- fs ---------------------------------------------------------------------

---A file mode. Lua has no octal literals (0644 is the decimal number 644),
---so give modes as an octal string of 1 to 6 digits, "0644", "755", "0600",
---or as an integer, 420 or tonumber("644", 8). Bits beyond 07777 raise.
---Beware: the integer 644 is accepted and means octal 1204.
---@alias migrate.Mode string|integer

---@class migrate.Stat
---@field type "file"|"dir"|"link"|"other" a symlink is reported as "link" (not followed)
---@field size integer bytes
---@field mode integer permission bits (st_mode & 07777), e.g. 420 for 0644
---@field mtime integer modification time, seconds since the epoch

---The user's files, confined to the allowed roots; see the top of this file
---for paths, errors and read-only phases.
---@class migrate.fs
fs = {}

---The whole content of a regular file. Follows symlinks.
---Raises when the file is missing, is a directory ("Is a directory") or is
---not a regular file, or cannot be read.
---@param path string
---@return string content
function fs.read(path) end

---Replaces the file with data atomically and durably: a temp file in the same
---directory, fsync, rename over the path, fsync of the directory. A reader or
---a crash sees the whole old content or the whole new one.
---Without mode an existing file keeps its mode and a new one is created
---0644 (less the umask); with mode it gets exactly that mode. A symlink is
---followed (its target is replaced). The directory must exist (fs.mkdir).
---Raises in read-only phases, outside the roots, on the state file.
---@param path string
---@param data string
---@param mode? migrate.Mode
function fs.write(path, data, mode) end

---Whether something exists at path, without following a final symlink (a
---dangling link exists). false when missing; raises for a path outside the
---allowed roots and for errors other than "not found" (e.g. permission).
---@param path string
---@return boolean
function fs.exists(path) end

---Whether path is a regular file, following symlinks. false when missing.
---@param path string
---@return boolean
function fs.is_file(path) end

---Whether path is a directory, following symlinks. false when missing.
---@param path string
---@return boolean
function fs.is_dir(path) end

---What is at path, without following a final symlink, or nil when nothing
---is there.
---@param path string
---@return migrate.Stat?
function fs.stat(path) end

---The names in a directory (no "." or ".."), sorted bytewise. Follows
---symlinks. Raises when the directory is missing or not a directory.
---@param dir string
---@return string[] names
function fs.list(dir) end

---Creates a directory and its missing parents (mkdir -p); an existing
---directory is fine, an existing file raises. New directories get mode
---(default "0755"), less the umask. Raises in read-only phases.
---@param path string
---@param mode? migrate.Mode
function fs.mkdir(path, mode) end

---Removes a file, a symlink (not its target) or an empty directory. A
---missing path is fine; a non-empty directory raises ("Directory not
---empty"). Raises in read-only phases.
---@param path string
function fs.remove(path) end

---Removes path and everything under it, never following a symlink (a link
---inside is removed, not what it points to). A missing path is fine.
---Raises in read-only phases.
---@param path string
function fs.remove_tree(path) end

---Renames src to dst atomically (rename(2)): a symlink is moved as the link
---itself; an existing file at dst is replaced; a directory may replace an
---empty directory only. dst's directory must exist. Raises across file
---systems (use fs.copy, then fs.remove) and in read-only phases.
---@param src string
---@param dst string
function fs.rename(src, dst) end

---Copies the regular file src to dst atomically (temp beside dst, fsync,
---rename), keeping src's mode; kernel copy where possible. Both sides follow
---symlinks. dst must not be a directory (no "copy into"). Raises in
---read-only phases.
---@param src string
---@param dst string
function fs.copy(src, dst) end

---Creates a symlink at path pointing to target, written as given (a relative
---target is relative to the link's directory). Where the target resolves to
---must lie inside the allowed roots too. Raises when path exists and in
---read-only phases.
---@param target string
---@param path string
function fs.symlink(target, path) end

---The target of the symlink at path, as written, or nil when path is not a
---symlink or does not exist.
---@param path string
---@return string?
function fs.readlink(path) end

---Sets the mode of path (following symlinks). Raises in read-only phases.
---@param path string
---@param mode migrate.Mode
function fs.chmod(path, mode) end

---The absolute form of path: "~" expanded, ".", ".." and "//" folded. Purely
---textual: nothing is touched, symlinks are not resolved and the result is
---not checked against the roots. Raises for a relative path.
---@param path string
---@return string absolute
function fs.expand(path) end

---Joins parts with exactly one "/" between them: fs.join("~", "a", "b.json")
---is "~/a/b.json"; empty parts are skipped. Only the first part may be
---absolute ("/...", "~" or "~/..."); a later absolute part raises instead of
---silently discarding what came before it.
---@param first string
---@param ... string
---@return string
function fs.join(first, ...) end

---fs.read then json.decode. Errors name the file: `fs.read_json: "<path>":
---json.decode: invalid JSON at line 3, column 5 ...`.
---@param path string
---@return any value objects and arrays keep their shape and key order
function fs.read_json(path) end

---json.encode(value, {indent = 2}) plus a final newline, written with
---fs.write: atomic, and an existing file keeps its mode. Raises in read-only
---phases.
---@param path string
---@param value any
function fs.write_json(path, value) end

---fs.read then yaml.decode. Errors name the file: `fs.read_yaml: "<path>":
---yaml.decode: ... at line L, column C`.
---@param path string
---@return any
function fs.read_yaml(path) end

---yaml.encode(value) (block style, two-space indents), written with
---fs.write: atomically, keeping the file's mode. Comments are not kept: to
---change a commented file in place, edit it as a document.
---@param path string
---@param value any
function fs.write_yaml(path, value) end
---Edits a file in place (SPEC §5.1): reads it, calls `fn(doc)` with a
---document of its text, and writes the text back atomically (keeping the
---file's mode) only if `doc:changed()`. The format comes from the name
---(`.json`; `.yml`/`.yaml`; `.env`, `prod.env`) or from `format`. Returns
---whether it wrote. A mutation: raises `fs.edit: not allowed: ...` in
---check(), before fn runs. Errors name the file; an error inside fn leaves
---the file untouched.
---@param path string
---@param fn fun(doc: migrate.Document)
---@param format? "json"|"yaml"|"dotenv"
---@return boolean written
function fs.edit(path, fn, format) end

-- ---- json -----------------------------------------------------------------

---JSON that survives decode, change, encode: objects keep their key order
---(keys a script adds go last), "3" and "3.0" stay what they were, empty {}
---and [] keep their kind, integers outside +-2^53 raise instead of rounding.
---@class migrate.json
json = {}

---Parses strict RFC 8259 JSON (a leading UTF-8 byte order mark is skipped).
---Objects and arrays become tables that remember their kind and key order;
---null becomes json.null; integers become Lua integers, other numbers
---floats. A duplicate key keeps its first place and its last value.
---Raises `json.decode: invalid JSON at line L, column C (byte B): ...`, also
---for nesting deeper than 256.
---@param text string
---@return any
function json.decode(text) end

---@class migrate.EncodeOptions
---@field indent? integer 0 to 16 spaces per level; 0 (the default) writes compact JSON

---Encodes a value: decoded objects in their key order, then keys they do not
---know sorted; unmarked tables are arrays when their keys are exactly 1..n,
---objects when all keys are strings (sorted), and an empty one is {} (use
---json.array() for []). Floats keep a ".0" ("3.0"). Raises for nil (use
---json.null), NaN and infinities, integers outside +-2^53, holes, mixed
---keys, cycles, invalid UTF-8 and unknown options.
---@param value any
---@param options? migrate.EncodeOptions
---@return string
function json.encode(value, options) end

---Stands for JSON null (a light userdata): compare with `v == json.null`.
---A key set to nil is removed instead.
---@type lightuserdata
json.null = nil

---Marks t (a new table when nil) as a JSON array, so that an empty one
---encodes as []. Returns t. Raises when t has another metatable.
---@generic T: table
---@param t? T
---@return T
function json.array(t) end

---Marks t (a new table when nil) as a JSON object that remembers key order:
---its present keys take their sorted order, keys added later go after them
---in the order they are added. Returns t. Raises when t has another
---metatable.
---@generic T: table
---@param t? T
---@return T
function json.object(t) end

---Renames a key of an object in place, keeping its position, so a rewritten
---config shows one changed line instead of a key moved to the end. Nothing
---happens when old == new. Raises when new exists already or old does not.
---@param object table
---@param old string
---@param new string
function json.rename(object, old, new) end

-- ---- yaml -----------------------------------------------------------------

---YAML as the daemon reads it: PyYAML's yaml.safe_load (YAML 1.1).
---@class migrate.yaml
yaml = {}

---Parses one YAML document into the values PyYAML's safe_load gives: yes/no/
---on/off are booleans, 0777 octal, 1:20 sexagesimal (80), ~ and empty are
---yaml.null, 1e3 a string; merge keys (<<), anchors and aliases. Mappings
---are json objects (file key order kept, json.encode keeps it too),
---sequences json arrays. Except: integers are exact 64-bit (beyond that it
---raises), timestamps stay strings, recursive aliases and the tags !!binary,
---!!set, !!omap, !!pairs raise. Returns nil for a text with no document.
---Raises `yaml.decode: <reason> at line L, column C` (columns in characters),
---also for a second document and for aliases expanding to over 10^6 nodes.
---@param text string
---@return any
function yaml.decode(text) end

---@class migrate.YamlEncodeOptions
---@field indent? integer 1 to 16 spaces per level (default 2)

---Writes block-style YAML ending in a newline that safe_load reads back as
---the same value: a decoded mapping's keys in their order, then other keys
---sorted; strings that would read as something else ('off', '1:20', '~')
---quoted; multi-line strings as literal blocks. Raises for invalid UTF-8,
---functions and other non-data values, cycles, and nesting deeper than 256.
---@param value any
---@param options? migrate.YamlEncodeOptions
---@return string
function yaml.encode(value, options) end

---YAML null: the very same value as json.null.
---@type lightuserdata
yaml.null = nil

---Opens a YAML text as a document to edit in place (SPEC §5.1): get, has,
---keys, set, insert, delete, rename, move, append, text, changed. Every
---byte outside the entries an edit changes stays as it was (comments, blank
---lines, quoting, key order, CRLF, a missing final newline); new entries
---take their siblings' indentation and the file's sequence indentation.
---An edit raises `yaml.edit: <method> <path>: <reason>` and leaves the text
---unchanged for what it cannot splice safely: structure inside a flow
---collection ({a: 1}, [1, 2]), an alias or anchored node on the path, a
---merge key or a duplicate key in a mapping on the path, a key that is not
---a string once resolved (on:, 1:) in the mapping it changes, tab
---indentation, several documents. Raises like yaml.decode on invalid YAML.
---@param text string
---@return migrate.Document
function yaml.edit(text) end
---A document over JSON text (SPEC §5.1): edits splice the text, so the
---file keeps its indentation (spaces or tabs), its `"a": 1` or `"a":1`,
---its line endings and a missing final newline. JSON has no comments:
---insert's `comment` option raises. Raises `json.edit: json.decode: ...`
---when the text is not JSON.
---@param text string
---@return migrate.Document
function json.edit(text) end

-- ---- documents ----------------------------------------------------------------

---A path: an array of keys and 1-based sequence indices
---(`{"computer", "trusted_dirs", 2, "path"}`) or dot-separated keys
---(`"redis.url"`).
---@alias migrate.Path string|(string|integer)[]

---@class migrate.InsertOptions
---@field after? string the sibling key to insert after
---@field before? string the sibling key to insert before
---@field comment? string a comment line above the entry (YAML, .env; without "#")

---The text of a config file, edited by splicing: every byte outside the
---entries an edit changes stays as it was. After each edit the document
---re-parses its text and checks it decodes to the old value with exactly
---that change (key order included); otherwise, and whenever the edit cannot
---be made safely, it raises `<format>.edit: <method> <path>: <reason>` and
---keeps its text.
---@class migrate.Document
local Document = {}

---The value at path, decoded as the format's decode does (a copy); nil if
---absent.
---@param path migrate.Path
---@return any
function Document:get(path) end

---Whether path is present (also when its value is null).
---@param path migrate.Path
---@return boolean
function Document:has(path) end

---A mapping's keys in file order (the document's top level when path is
---nil). Raises when it is not a mapping.
---@param path? migrate.Path
---@return string[]
function Document:keys(path) end

---Replaces the value at path. A missing key is added at the end of its
---mapping; missing parents are created as mappings. Setting a value equal
---to the current one changes nothing.
---@param path migrate.Path
---@param value any
function Document:set(path, value) end

---Adds a key that must not exist yet: after or before a named sibling, or
---last.
---@param path migrate.Path
---@param value any
---@param options? migrate.InsertOptions
function Document:insert(path, value, options) end

---Removes the entry (in YAML and .env with the comment lines directly
---above it). Returns true if it was there; false, changing nothing, if not.
---@param path migrate.Path
---@return boolean
function Document:delete(path) end

---Changes the key only, keeping its place. Raises if new_key exists.
---@param path migrate.Path
---@param new_key string
function Document:rename(path, new_key) end

---Moves an entry to the end of another mapping, re-indented. `from` must
---exist, `to` must not; to's parent must exist.
---@param from migrate.Path
---@param to migrate.Path
function Document:move(from, to) end

---Adds an item at the end of the sequence at path.
---@param path migrate.Path
---@param value any
function Document:append(path, value) end

---The edited text (also `tostring(doc)`).
---@return string
function Document:text() end

---Whether any edit changed the text.
---@return boolean
function Document:changed() end

-- ---- dotenv -------------------------------------------------------------------

---The daemon's .env files, read exactly as python-dotenv 0.21 reads them
---(dotenv_values(interpolate=False)) and edited without touching any other
---line. See migrations/README.md, "dotenv".
---@class migrate.dotenv
dotenv = {}

---Key -> value in python-dotenv's order (first definition's place, last
---definition's value). A key without "=" is json.null; lines python-dotenv
---cannot parse are skipped as it skips them. Raises
---`dotenv.decode: invalid UTF-8 at byte N`.
---@param text string
---@return table<string, string|lightuserdata>
function dotenv.decode(text) end

---A document over a .env text (SPEC §5.1): get/has/keys/set/insert/delete/
---rename/text/changed. Paths are one key ({"A.B"} for a key with a dot);
---values are strings; set keeps export, the key, the inline comment and the
---quoting. Refused, with `dotenv.edit: <method> <key>: <reason>` and the
---text unchanged: a value containing "${" or ending in "\", a non-string
---value, a key defined twice, move and append.
---@param text string
---@return migrate.Document
function dotenv.edit(text) end

-- ---- log --------------------------------------------------------------------

---Log lines for the update executor (MIGRATE_EVENT_LOG events and the
---report). Arguments are converted with tostring and joined with spaces.
---@class migrate.log
log = {}

---@param ... any
function log.info(...) end

---@param ... any
function log.warn(...) end

---A log line at error level; it does not raise or stop the migration (return
---false or raise for that).
---@param ... any
function log.error(...) end

-- ---- semver -----------------------------------------------------------------

---@class migrate.Version
---@field major integer
---@field minor integer
---@field patch integer
---@field prerelease? string "rc.1" in "1.2.0-rc.1"
---@field build? string "build.5" in "1.2.0+build.5"

---SemVer 2.0.0; every function accepts an optional leading "v".
---@class migrate.semver
semver = {}

---SemVer precedence: -1 when a < b, 0 when equal (build metadata ignored),
---1 when a > b. Raises when either is not a version.
---@param a string
---@param b string
---@return -1|0|1
function semver.compare(a, b) end

---The parts of a version, or nil and the reason ("leading zero in minor")
---when v is not strict SemVer. Never raises for a bad string.
---@param v string
---@return migrate.Version|nil version
---@return string? reason
function semver.parse(v) end

---Whether from < v <= to, the range a run from `from` to `to` covers; a nil
---bound is unbounded. Raises when a text is not a version.
---@param v string
---@param from? string
---@param to? string
---@return boolean
function semver.in_range(v, from, to) end

-- ---- migration --------------------------------------------------------------

---Who this script is and what run it is in. Read-only: assigning raises.
---@class migrate.Migration
---@field id string "v1.1.0/001_rename_config_key"
---@field version string "1.1.0": the version directory without its "v"
---@field path string the script file, under the migrations directory
---@field from_version string? the version the run upgrades from (nil: unbounded)
---@field to_version string? the version the run upgrades to (nil: unbounded)
---@field dry_run boolean true in a dry run (only check() is called then)
---@field home string the absolute home directory "~/" stands for

---@type migrate.Migration
migration = {}
