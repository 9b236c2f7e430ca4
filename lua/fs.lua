-- fs helpers written in Lua over the C primitives of src/fs.c.
-- The sandbox runs this chunk with (fs, json) and it adds to fs.
local fs, json = ...
local _ = fs, json
