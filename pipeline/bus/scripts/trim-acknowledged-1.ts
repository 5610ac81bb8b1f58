import { STREAM_LUA_HELPERS } from './stream-lua-helpers.js';

/**
 * trim-acknowledged-1.lua: removes the entries of a stream that every consumer group has
 * acknowledged, atomically with reading the groups (a group created or moved back meanwhile cannot
 * lose entries it needs).
 *
 * KEYS[1]  the stream
 *
 * The lowest id any group still needs is, over the groups, the smaller of its oldest pending id
 * and the id right after its last delivered one; `XTRIM MINID` removes the entries below it, exactly
 * (not `~`): the acknowledged prefix goes and nothing else, at the cost of rewriting at most one
 * radix-tree node partially. A stream without groups is left alone (nothing says what was read).
 *
 * Reply: the number of entries removed (0 when the stream or its groups do not exist).
 *
 * Kept as a TypeScript string, not a `.lua` file: the build and the runtime image carry only
 * compiled TypeScript.
 */
export const TRIM_ACKNOWLEDGED_1 = `${STREAM_LUA_HELPERS}
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return 0 end
local groups = redis.call('XINFO', 'GROUPS', key)
if #groups == 0 then return 0 end
local min_ms, min_seq
local function consider(ms, seq)
  if min_ms == nil or ms < min_ms or (ms == min_ms and seq < min_seq) then min_ms, min_seq = ms, seq end
end
for _, raw in ipairs(groups) do
  local g = fields(raw)
  local ms, seq = parse(g['last-delivered-id'])
  consider(ms, seq + 1)
  if g['pending'] > 0 then
    consider(parse(redis.call('XPENDING', key, g['name'])[2]))
  end
end
return redis.call('XTRIM', key, 'MINID', string.format('%.0f-%.0f', min_ms, min_seq))
`;
