/**
 * Lua functions the stream scripts share, prepended to each: `fields(flat)` turns a flat
 * `XINFO` reply into a table, `parse(id)` splits a stream id into its milliseconds and sequence.
 */
export const STREAM_LUA_HELPERS = `
local function fields(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
`;
