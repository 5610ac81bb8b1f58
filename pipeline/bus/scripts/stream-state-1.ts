import { STREAM_LUA_HELPERS } from './stream-lua-helpers.js';

/**
 * stream-state-1.lua: a consistent snapshot of a stream and each of its consumer groups, for
 * retention and loss accounting. Read-only; one round trip, atomic.
 *
 * KEYS[1]  the stream
 * ARGV[1]  probe: when a group is neither behind the stream's first entry nor caught up with its
 *          last, its undelivered entries are counted one by one up to this many (XRANGE); past it
 *          the count is unknown (-1)
 *
 * Reply: {} when the stream does not exist; otherwise
 *   { entries-added, length, { { name, pending, last-delivered-id, entries-read, undelivered, lag }, ... }, max-deleted-entry-id }
 * with entries-read, undelivered and lag -1 where Redis (or the probe) cannot tell.
 *
 * Kept as a TypeScript string, not a `.lua` file: the build and the runtime image carry only
 * compiled TypeScript.
 */
export const STREAM_STATE_1 = `${STREAM_LUA_HELPERS}
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {} end
local probe = tonumber(ARGV[1])
local function before(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if am ~= bm then return am < bm end
  return as < bs
end
local stream = fields(redis.call('XINFO', 'STREAM', key))
local length = stream['length']
local out = {}
for _, raw in ipairs(redis.call('XINFO', 'GROUPS', key)) do
  local g = fields(raw)
  local last = g['last-delivered-id']
  local undelivered = -1
  if length == 0 then
    undelivered = 0
  elseif before(last, stream['first-entry'][1]) then
    undelivered = length
  elseif not before(last, stream['last-entry'][1]) then
    undelivered = 0
  else
    local n = #redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', probe + 1)
    if n <= probe then undelivered = n end
  end
  out[#out + 1] = { g['name'], g['pending'], last, g['entries-read'] or -1, undelivered, g['lag'] or -1 }
end
return { stream['entries-added'], length, out, stream['max-deleted-entry-id'] }
`;
