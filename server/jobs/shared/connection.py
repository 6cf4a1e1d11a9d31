"""The Redis side of shared jobs: the connection, every key name and the server-side scripts.

One Redis (>= 7) or Valkey server holds, under `settings.redis_prefix` (`P` below):

- `P:job:{id}` hash: `state`, `doc` (static: workflow, meta, key, created), `sub` (what to run:
  the graph and webhooks), `progress`, `prompt_id`, `result`, `error`, `attempt`, `entry` (its
  queue entry), timestamps. Expires `job_ttl` seconds after creation and again after its end.
- `P:job:{id}:media` hash: the job's media files (name -> bytes), written with the job by the
  create script, staged by the worker in its ComfyUI, deleted when the job ends.
- `P:job:{id}:private` string: what the worker needs but no view may show (JSON: the model URLs
  of the graph, signed queries included), written with the job, deleted when the job ends.
- `P:staged:{worker host and input folder}` set: `job id|file name` of media a worker put in
  its ComfyUI's input folder, so a worker started after a SIGKILL removes what was left.
- `P:key:{idempotency key}` string: the job id (SET NX semantics inside the create script).
- `P:queue` stream + consumer group `workers`: one entry per job to run (`job`, and `sub` +
  `prompt_id` so a worker starts a first delivery without reading the record); deleted once
  done (by the script that ends the job; by its worker once the webhooks are sent; by DELETE
  while still queued), so its length is the shared queue depth.
- `P:index` sorted set: job ids by creation time (listings), trimmed by the create script.
- `P:events:{id}` stream: the job's events, capped (`job_events_max`); SSE ids are entry ids.
  The final event is appended by the script that makes the state final.
- `P:done:{id}` stream: one entry, written with the final state; what a synchronous request's
  waiter blocks on (woken once, at the end, not by every event).
- `P:cancel` pub/sub channel: job ids to interrupt (workers also re-check the state each beat).
- `P:previews:{id}` pub/sub channel: the job's preview images (JSON `{type, data}`), published
  by its worker, at most one every 0.5 s, for the Comfy API v2 event streams open at the time
  on any replica; never stored.
- `P:hook:{webhook-id}` string: delivery state of one webhook message (`sending`, `delivered`,
  `failed`) so a reclaimed job never sends an event twice.
- `P:dead` stream: dead-letter records (jobs that ran out of attempts).
- `P:nodedefs` string: the last `/object_info` body a worker published (API replicas without
  ComfyUI read it for live choices and OpenAPI enums).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from server.settings import Settings

GROUP = "workers"


@dataclass(frozen=True)
class Keys:
    prefix: str

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def key(self, idempotency_key: str) -> str:
        return f"{self.prefix}:key:{idempotency_key}"

    def media(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:media"

    def private(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:private"

    def staged(self, place: str) -> str:
        return f"{self.prefix}:staged:{place}"

    def events(self, job_id: str) -> str:
        return f"{self.prefix}:events:{job_id}"

    def done(self, job_id: str) -> str:
        return f"{self.prefix}:done:{job_id}"

    def previews(self, job_id: str) -> str:
        return f"{self.prefix}:previews:{job_id}"

    def hook(self, message_id: str) -> str:
        return f"{self.prefix}:hook:{message_id}"

    @property
    def queue(self) -> str:
        return f"{self.prefix}:queue"

    @property
    def index(self) -> str:
        """Job ids by creation time (a sorted set), for listing; the newest INDEX_MAX kept."""
        return f"{self.prefix}:index"

    @property
    def cancel(self) -> str:
        return f"{self.prefix}:cancel"

    @property
    def dead(self) -> str:
        return f"{self.prefix}:dead"

    @property
    def nodedefs(self) -> str:
        return f"{self.prefix}:nodedefs"


def connect(settings: Settings, *, blocking: float = 0.0, decode: bool = True) -> Redis:
    """A client that fails fast (no retries, `redis_timeout`): a request answers 503 instead of
    hanging when Redis is away. `blocking` adds room for XREAD BLOCK calls."""
    assert settings.redis_url is not None
    timeout = settings.redis_timeout
    return Redis.from_url(
        settings.redis_url, decode_responses=decode, socket_timeout=timeout + blocking,
        socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0), health_check_interval=0,
    )


# KEYS: job, idempotency key (or a dummy), queue, events, index, media, private.
# ARGV: id, ttl, doc, sub, now, events maxlen, queued event data, has key ('1'/'0'), prompt id,
# index size, queue limit (0: none), private JSON ('' for none), then name/bytes pairs of the
# job's media files. Returns '' when created (media included), the id of the job that already
# holds the key, or {'full', depth} when the queue holds `limit` jobs; in both of those cases
# nothing is written (admission and creation are one round trip, and a refused job leaves no
# media behind).
CREATE = """
if ARGV[8] == '1' then
  local existing = redis.call('GET', KEYS[2])
  if existing then return existing end
end
local limit = tonumber(ARGV[11])
if limit > 0 then
  local depth = redis.call('XLEN', KEYS[3])
  if depth >= limit then return {'full', depth} end
end
if ARGV[8] == '1' then redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2]) end
if ARGV[12] ~= '' then redis.call('SET', KEYS[7], ARGV[12], 'EX', ARGV[2]) end
if #ARGV > 12 then
  redis.call('HSET', KEYS[6], unpack(ARGV, 13))
  redis.call('EXPIRE', KEYS[6], ARGV[2])
end
local entry = redis.call('XADD', KEYS[3], '*', 'job', ARGV[1], 'sub', ARGV[4],
                         'prompt_id', ARGV[9])
redis.call('HSET', KEYS[1], 'state', 'queued', 'doc', ARGV[3], 'sub', ARGV[4],
           'created_at', ARGV[5], 'updated_at', ARGV[5], 'attempt', '0', 'prompt_id', ARGV[9],
           'entry', entry)
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'type', 'queued', 'data', ARGV[7],
           'final', '0')
redis.call('EXPIRE', KEYS[4], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -tonumber(ARGV[10]) - 1)
return ''
"""

# KEYS: job, events, done, queue, media, private. ARGV: n, n allowed states, ttl (0: keep),
# events maxlen, final event type ('' for none), final event data, queue entry to ack and
# delete ('' for none), then field/value pairs.
# Returns 1 when written, 0 when the state did not allow it, -1 when the job is gone.
# A final state, its final event and the `done` entry are written together: a reader that sees
# the state final finds the event in the stream (and a refused late finish appends nothing);
# a final state deletes the job's media and private data; the worker that ends its job takes
# it off the queue in the same call.
TRANSITION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
local n = tonumber(ARGV[1])
local ok = false
for i = 2, n + 1 do if ARGV[i] == state then ok = true end end
if not ok then return 0 end
local values = {}
for i = n + 7, #ARGV do table.insert(values, ARGV[i]) end
redis.call('HSET', KEYS[1], unpack(values))
local ttl = tonumber(ARGV[n + 2])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
if ARGV[n + 4] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[n + 3], '*', 'type', ARGV[n + 4],
             'data', ARGV[n + 5], 'final', '1')
  redis.call('XADD', KEYS[3], '*', 'state', ARGV[n + 4])
  if ttl > 0 then
    redis.call('EXPIRE', KEYS[2], ttl)
    redis.call('EXPIRE', KEYS[3], ttl)
  end
  redis.call('DEL', KEYS[5], KEYS[6])
end
if ARGV[n + 6] ~= '' then
  redis.call('XACK', KEYS[4], '""" + GROUP + """', ARGV[n + 6])
  redis.call('XDEL', KEYS[4], ARGV[n + 6])
end
return 1
"""

# KEYS: queue. ARGV: the group. The job ids of the queue entries no worker has taken yet, in the
# order workers will take them (after the group's last-delivered id); {} without a queue.
WAITING = """
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then return {} end
local start = '-'
for _, group in ipairs(groups) do
  local name, last = nil, nil
  for i = 1, #group, 2 do
    if group[i] == 'name' then name = group[i + 1] end
    if group[i] == 'last-delivered-id' then last = group[i + 1] end
  end
  if name == ARGV[1] and last then start = '(' .. last end
end
local ids = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], start, '+')) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'job' then ids[#ids + 1] = fields[i + 1] end
  end
end
return ids
"""

# KEYS: job, events of each event (a pair per event). ARGV: events maxlen, ttl, then type, data
# of each event. Appends the (non-final) events of a burst in one call, each while its job is
# queued or running; after its final event (late progress of a finished prompt, a requeue after
# another worker finished it) nothing. Returns each event's entry id ('' when dropped).
APPEND = """
local ids = {}
for i = 1, #KEYS, 2 do
  local n = i + 2
  local state = redis.call('HGET', KEYS[i], 'state')
  if state == 'queued' or state == 'running' then
    ids[#ids + 1] = redis.call('XADD', KEYS[i + 1], 'MAXLEN', '~', ARGV[1], '*',
                               'type', ARGV[n], 'data', ARGV[n + 1], 'final', '0')
    redis.call('EXPIRE', KEYS[i + 1], ARGV[2])
  else
    ids[#ids + 1] = ''
  end
end
return ids
"""
