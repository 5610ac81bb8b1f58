/**
 * `fenced-read` (2 keys): a consumer-group read that only the shard's newest owner may make.
 *
 * KEYS[1] the fence key of (stream, group); KEYS[2] the stream.
 * ARGV[1] the reader's epoch; ARGV[2] group; ARGV[3] consumer; ARGV[4] count; ARGV[5] start id
 * (`>` for new entries, an id for the reader's own pending ones).
 * Reply: the XREADGROUP reply, or the error `FENCED <epoch>` when a newer epoch has read before.
 *
 * The fence only rises: a reader with an epoch at least the stored one raises it and reads; an
 * older reader (a frozen, superseded attempt) is refused, so it can never take entries out of the
 * group's delivery sequence behind its successor's back. Non-blocking (a script cannot block): the
 * bus polls for new entries instead.
 */
export const FENCED_READ_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) > tonumber(ARGV[1]) then
  return redis.error_reply('FENCED ' .. current)
end
if current ~= ARGV[1] then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4], 'STREAMS', KEYS[2], ARGV[5])
`;
