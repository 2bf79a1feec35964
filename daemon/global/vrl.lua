#!lua name=vrl
--[[
vrl.lua - the Redis side of vrl's global limits: one function library,
loaded by vrld with FUNCTION LOAD REPLACE when Redis holds none or an
older VERSION. Every function is one atomic step of Redis.

Redis keys (PREFIX is vrld's, "vrl:" by default; LAYOUT names the layout
of the values, so that a library of another layout finds none of them:
its first call makes a new epoch, fenced as after a loss):
  PREFIX LAYOUT:e       the epoch hash: id, born, vnow, tnow, fence, lost, expect, and
                        per host r:<host> (virtual time last seen), s:<host>
                        ("boot mono", its last call), f:<host> (it made a full
                        report, every key it has here, in this epoch), g:<host>
                        (forgotten)
  PREFIX LAYOUT:k:<id>  one string per global key, packed with struct (below):
                        its figures, its cooldown, and one record per host

Cost. A call reads each key with one GET and writes it with one SET (its
TTL with it), decodes and encodes with struct.pack/unpack (no number
parsing, no string formatting), and keeps the records of the other hosts
as the bytes they were. An entry is one stretch of the call's last
argument, an answer one stretch of the reply's. Redis's time per key is
then a few microseconds (bench_global measures it).

Time. Every function reads Redis's TIME, but uses the epoch's virtual
time v: each call moves it by TIME's progress since the previous call (of
any host), clamped to [0, min(ub, term)], where ub is the calling host's
upper bound of the real time since its own previous call executed (its
send time now, less the send time of its last answered call, plus its
command timeout); a host with no answer in this epoch moves it by 0. So
v runs with Redis's clock, a step back holds it still, and a step forward
moves it by at most ub. The proof that uses this is in
daemon/global/lease.c.

Promises (rate, window). Each grant to a host is a promise (a, b, e):
share a (and burst b) until v = e. What counts for a host is the max of
its unexpired promises, so a share that shrinks frees capacity only once
the larger promise expired; a window's promise counts W longer, since the
grants made under it count for W. A grant to host h satisfies
  sum over g ~= h of max unexpired promise of g  +  grant  <=  limit,
so at every instant the counted capacities sum to at most the limit (G1).
A host's record is dropped only when it holds no unexpired promise and
its load is stale: a dropped record promised nothing that still counts.

Blocks (quota, slots). Units are counted when leased: used = sum of the
hosts' allocations A, used <= cap for a hard limit. A host shrinks its
own allocation (it clamps its local key first, then reports the
allocation it keeps); the function only grows it, by at most one block of
spare beyond what the host consumed, so a dead host strands at most one
block (quota) or its held units plus a block (slots, until an operator
forgets it).

Loss. A Redis that lost its data has a new epoch (the hash is made anew
with the first call). Nothing is granted until v >= fence = born + term +
margin: every lease of the old epoch expired; no window share until
fence + W: the grants made under them count W longer. A host whose known epoch
differs marks the epoch lost and names the hosts it knew (expect).
Quota and slots counters made in an uncertain epoch are seeded from the
allocations hosts report: a key opens once every host known to hold
units of it reported, and a key nobody knows of only once every expected
host made a full report (a call flagged full: every key it has here).
vrl_forget and vrl_reseed are the operator's way out.

Layouts (struct formats, little-endian; "s" a string after its length):
  entry    kind c1, cap per bst use unmet sa sb hold cd I8, ttl i8, known H s
  answer   code B, a b rel target cd I8, holders H s
  rate, window key   kind c1, cap bst per cd x d, hosts H; per host:
                     name B s, load t want_a want_b d (t 0: no load), n B,
                     then n promises a b e d, the newest first
  quota, slots key   kind c1, pid used cap cd x d, seeding B, hold I4 s,
                     rep I4 s, hosts H; per host: name B s, A load t d
  gate key           kind c1, cd x d
x is when the key's TTL was last set (once a term, or when a cooldown
moves its end); a write between keeps the TTL it has. The caller's own
record is written first, after the head; the others follow as they were.
Doubles hold integers exactly below 2^53, as Lua's numbers do.
]]

local VERSION = 4    -- the library's version: vrld loads it over an older one
local PROTOCOL = 2   -- the argument and reply layout vrld speaks
local LAYOUT = 2     -- the layout of the keys' values, a part of their names

local HDR = 13       -- arguments of vrl_renew and vrl_release: 12 header, the entries
local HEADROOM = 1.25    -- a share is this much above the recent load
local BLOCK_TERMS = 2    -- a quota or slots block covers this many terms of load
local ACTIVE_TERMS = 2   -- a host renewing a key within this many terms is active
local KEEP_TERMS = 4     -- rate and window keys live this long past their last call
local PROMISES_MAX = 16  -- promises kept per host and key (then merged, upward)

-- entry status codes (global.h: enum vrl_global_outcome)
local OK, FENCED, SEEDING, BEHIND, CONFLICT, INVALID = 0, 1, 2, 3, 4, 7

local ENTRY = '<c1I8I8I8I8I8I8I8I8I8i8Hc0'
local ENTRY_FIXED = 83   -- its bytes up to the known list
local ANSWER = '<BI8I8I8I8I8Hc0'
local SHEAD, SHOST, PROMISE = '<c1dddddH', '<Bc0ddddB', '<ddd'
local SHEAD_OWN = '<c1dddddHBc0ddddB'      -- the head and the caller's record
local SHEAD_OWN_NEW = SHEAD_OWN .. 'ddd'   -- ... with its new promise
local SHEAD_HOSTS = 41   -- bytes of a rate or window head before its host count
local PROMISE_LEN = 24
local PROMISES = { [0] = '<' }   -- [n]: the format of n promises, read or written in
for n = 1, PROMISES_MAX + 1 do      -- one call
  PROMISES[n] = PROMISES[n - 1] .. 'ddd'
end
local BHEAD, BHOST = '<c1dddddBI4c0I4c0H', '<Bc0ddd'
local BHEAD_OWN = BHEAD .. 'Bc0ddd'
local GHEAD = '<c1dd'

-- scratch lists of the other hosts' wants, reused from key to key (their
-- counts say how much of them is this key's)
local WA, WB = {}, {}

-- ---- helpers -----------------------------------------------------------

local function int(x) return string.format('%d', math.floor(x)) end

local function hgetall(k)
  local a, t = redis.call('HGETALL', k), {}
  for i = 1, #a, 2 do t[a[i]] = a[i + 1] end
  return t
end

local function set_of(s)
  local t = {}
  if s and s ~= '' then
    for x in string.gmatch(s, '[^,]+') do t[x] = true end
  end
  return t
end

local function list_of(t)
  local a = {}
  for x in pairs(t) do a[#a + 1] = x end
  table.sort(a)
  return table.concat(a, ',')
end

-- is x one of the names of the comma list s (no allocation)
local function has(s, x)
  local i, n = 1, #x
  while true do
    local a = string.find(s, x, i, true)
    if not a then return false end
    local b = a + n
    if (a == 1 or string.byte(s, a - 1) == 44) and (b > #s or string.byte(s, b) == 44) then
      return true
    end
    i = a + 1
  end
end

-- the comma list s with x in it (sorted, as list_of makes it)
local function with(s, x)
  if has(s, x) then return s end
  local t = set_of(s)
  t[x] = true
  return list_of(t)
end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- max-min fair level for the n wants of w (summing to sum) over cap:
-- min(want, level) sums to <= cap. All fit: cap, without sorting.
local function level(w, n, sum, cap)
  if sum <= cap then return cap end
  local wants = {}
  for i = 1, n do wants[i] = w[i] end
  table.sort(wants)
  local left = cap
  for i, x in ipairs(wants) do
    local fair = left / (n - i + 1)
    if x > fair then return fair end
    left = left - x
  end
  return cap
end

-- load estimate: up at once, down smoothly (a third of a term's time constant)
local function load_step(ld, sample, dt, term)
  if sample >= ld then return sample end
  return ld + (sample - ld) * (1 - math.exp(-3 * dt / term))
end

local function answer(code, a, b, rel, target, cd, holders)
  if #holders > 65535 then holders = string.sub(holders, 1, 65535) end   -- its length is H
  return struct.pack(ANSWER, code, a, b, rel, target, cd, #holders, holders)
end

-- the cooldown step of every kind: a cooldown published (rel us) moves the
-- key's end cd (virtual); returns the new end and whether it moved
local function cooldown(cd, rel, v)
  if rel > 0 and v + rel > cd then return v + rel, true end
  return cd, false
end

-- Write key k. Its TTL: life us from v (nil: none), and at least a
-- second past the cooldown's end cd; set only when refresh, else kept.
-- The TTL goes as a string: Redis's Lua turns a number into one slowly.
local function put(k, value, refresh, life, cd, v)
  if not refresh then
    redis.call('SET', k, value, 'KEEPTTL')
  elseif life then
    if cd - v + 1000000 > life then life = cd - v + 1000000 end
    redis.call('SET', k, value, 'PX', int(math.ceil(life / 1000)))
  else
    redis.call('SET', k, value)
  end
end

-- ---- the header, the epoch and virtual time -------------------------------

local function header(a)
  if tonumber(a[1]) ~= PROTOCOL then
    return nil, 'vrl: protocol ' .. tostring(a[1]) .. ' not spoken by library version ' ..
      VERSION .. ' (protocol ' .. PROTOCOL .. ')'
  end
  local h = { host = a[2], boot = tonumber(a[3]), mono = tonumber(a[4]), known = a[5],
              reg = a[6], ub = tonumber(a[7]), term = tonumber(a[8]),
              margin = tonumber(a[9]), hosts = tonumber(a[10]), full = a[11] == '1',
              n = tonumber(a[12]), blob = a[13] }
  if #a ~= HDR or not string.match(h.host, '^[%w._-]+$') or #h.host > 255 or not h.boot or
     not h.mono or not h.ub or h.ub < 0 or not h.term or h.term <= 0 or not h.margin or
     not h.hosts or h.hosts < 1 or not h.n or h.n < 0 then
    return nil, 'vrl: malformed call header'
  end
  -- the entries: n stretches of the blob, each whole
  local pos, blob = 1, h.blob
  for _ = 1, h.n do
    if pos + ENTRY_FIXED - 1 > #blob then return nil, 'vrl: malformed entries' end
    pos = pos + ENTRY_FIXED + string.byte(blob, pos + 81) + 256 * string.byte(blob, pos + 82)
  end
  if pos ~= #blob + 1 then return nil, 'vrl: malformed entries' end
  return h
end

-- The epoch step of every writing call: create the epoch, reject a stale
-- call, move virtual time, note a loss and the host. Returns ep, or nil
-- and the stale reply.
local function epoch(ekey, h)
  local real, e = now_us(), hgetall(ekey)
  local fresh = e.id == nil
  if fresh then
    e = { id = int(real) .. '-' .. h.host, born = int(real), vnow = int(real),
          tnow = int(real), fence = int(real + h.term + h.margin), lost = '0', expect = '' }
    redis.call('HSET', ekey, 'id', e.id, 'born', e.born, 'vnow', e.vnow, 'tnow', e.tnow,
               'fence', e.fence, 'lost', '0', 'expect', '')
  end
  local s = e['s:' .. h.host]
  if s then
    local b, m = string.match(s, '^(%d+) (%d+)$')
    b, m = tonumber(b), tonumber(m)
    if h.boot < b or (h.boot == b and h.mono <= m) then
      return nil, { { 'stale', e.id, tonumber(e.vnow), b, m } }
    end
  end
  local v = tonumber(e.vnow)
  if h.known == e.id then
    v = v + math.max(0, math.min(real - tonumber(e.tnow), h.ub, h.term))
  end
  local lost, expect = e.lost == '1', set_of(e.expect)
  if h.known ~= '' and h.known ~= e.id then
    lost = true
    for x in pairs(set_of(h.reg)) do expect[x] = true end
  end
  redis.call('HSET', ekey, 'vnow', int(v), 'tnow', int(real),
             's:' .. h.host, int(h.boot) .. ' ' .. int(h.mono),
             'r:' .. h.host, int(v), 'lost', lost and '1' or '0', 'expect', list_of(expect))
  if h.full and not e['f:' .. h.host] then    -- it reported every key it has here
    redis.call('HSET', ekey, 'f:' .. h.host, '1')
    e['f:' .. h.host] = '1'
  end
  if e['g:' .. h.host] then                   -- a forgotten host that calls is back
    redis.call('HDEL', ekey, 'g:' .. h.host)
  end
  e['r:' .. h.host], e['g:' .. h.host] = int(v), nil
  local reg, gone, full, complete = {}, {}, {}, true
  for f in pairs(e) do
    local tag, who = string.sub(f, 1, 2), string.sub(f, 3)
    if tag == 'r:' then reg[who] = true end
    if tag == 'g:' then gone[who] = true end
    if tag == 'f:' then full[who] = true end
  end
  for x in pairs(expect) do
    if not full[x] and not gone[x] then complete = false end
  end
  return { id = e.id, vnow = v, fence = tonumber(e.fence), lost = lost, complete = complete,
           reg = list_of(reg), gone = gone }
end

-- The entry at pos of the blob into en (one table, reused); returns the
-- next position.
local function entry(blob, pos, en)
  local nxt
  en.kind, en.cap, en.per, en.bst, en.use, en.d, en.sa, en.sb, en.hold, en.cd, en.ttl,
    en.known, nxt = struct.unpack(ENTRY, blob, pos)
  return nxt
end

-- The other hosts' records of key s, as they were: from first (the first
-- record) to the end, less the caller's own (own to own_to, or none) and
-- those dropped (drops: from, to, ...).
local function others_of(s, first, own, own_to, drops)
  if not s then return '' end
  if not drops then
    if not own then return string.sub(s, first) end
    return string.sub(s, first, own - 1) .. string.sub(s, own_to)
  end
  if own then drops[#drops + 1], drops[#drops + 2] = own, own_to end
  local cuts = {}
  for i = 1, #drops, 2 do cuts[#cuts + 1] = { drops[i], drops[i + 1] } end
  table.sort(cuts, function(x, y) return x[1] < y[1] end)
  local pieces, at = {}, first
  for _, c in ipairs(cuts) do
    pieces[#pieces + 1] = string.sub(s, at, c[1] - 1)
    at = c[2]
  end
  pieces[#pieces + 1] = string.sub(s, at)
  return table.concat(pieces)
end

-- ---- rate and window: promises ------------------------------------------

-- The n promises at p of s that are unexpired at v and not dominated by
-- (a, b, e), as a flat list (a1 b1 e1 a2 ...), or nil when none. A promise
-- that ends later is never dominated: a shorter term (a reload) or window
-- makes a new promise end sooner, and the host trusts its older lease
-- until that one's end if the new reply is lost.
local function promises_kept(s, p, n, v, a, b, e)
  if n == 0 then return nil end
  local l, m = { struct.unpack(PROMISES[n], s, p) }, 0   -- 3n figures, then a position
  for i = 1, 3 * n, 3 do
    local pa, pb, pe = l[i], l[i + 1], l[i + 2]
    if pe > v and (pa > a or pb > b or pe > e) then
      l[m + 1], l[m + 2], l[m + 3] = pa, pb, pe
      m = m + 3
    end
  end
  for i = 3 * n + 1, m + 1, -1 do l[i] = nil end
  return m > 0 and l or nil
end

-- Promises (flat list t) packed, and their count. Past PROMISES_MAX (a
-- share shrinking at every call of a long window), the two neighbours
-- closest in expiry merge into one that promises the larger share until
-- the later expiry: more than both, so still an upper bound.
local function promises_pack(t)
  while #t > 3 * PROMISES_MAX do
    local best, gap = 1, math.huge
    for i = 1, #t - 5, 3 do
      local g = math.abs(t[i + 2] - t[i + 5])
      if g < gap then best, gap = i, g end
    end
    t[best] = math.max(t[best], t[best + 3])
    t[best + 1] = math.max(t[best + 1], t[best + 4])
    t[best + 2] = math.max(t[best + 2], t[best + 5])
    for _ = 1, 3 do table.remove(t, best + 3) end
  end
  return struct.pack(PROMISES[#t / 3], unpack(t)), #t / 3
end

-- Renew host h's share of rate or window key k. Rate: a = rate in
-- micro-permits per second, b = burst; window: a = grants in any W.
local function renew_share(k, h, ep, en)
  local s, v, term, me = redis.call('GET', k), ep.vnow, h.term, h.host
  local rate = en.kind == 'r'
  if s and string.byte(s, 1) ~= string.byte(en.kind) then
    return answer(CONFLICT, 0, 0, 0, 0, 0, '')
  end
  if en.cap < 1 or en.per < 1 or (rate and en.bst < 1) then
    return answer(INVALID, 0, 0, 0, 0, 0, '')
  end
  local capA, capB = en.cap, rate and en.bst or 0
  local cd, x, nh, pos = 0, 0, 0, 1
  if s then
    local _, fcap, fbst
    _, fcap, fbst, _, cd, x, nh, pos = struct.unpack(SHEAD, s)
    -- hosts disagree on the figures (a config rollout): the smaller holds
    capA, capB = math.min(capA, fcap), math.min(capB, fbst)
  end
  local first, otherA, otherB, sumA, sumB, nw, kept = pos, 0, 0, 0, 0, 0, 0
  local ld, dt, own, own_to, own_p, own_n, drops = 0, term, nil, nil, 0, 0, nil
  for _ = 1, nh do
    local from = pos
    local name, hl, ht, hwa, hwb, np, p = struct.unpack(SHOST, s, pos)
    if name == me then               -- written anew, first
      own, own_p, own_n = from, p, np
      p = p + np * PROMISE_LEN
      own_to = p
      if ht > 0 then ld, dt = hl, math.max(1, v - ht) end
    else
      local a, b, live = 0, 0, false
      for _ = 1, np do
        local pa, pb, pe
        pa, pb, pe, p = struct.unpack(PROMISE, s, p)
        if pe > v then
          live = true
          if pa > a then a = pa end
          if pb > b then b = pb end
        end
      end
      local active = ht > 0 and ht >= v - ACTIVE_TERMS * term
      otherA, otherB = otherA + a, otherB + b
      if active then
        nw = nw + 1
        WA[nw], WB[nw] = hwa, hwb
        sumA, sumB = sumA + hwa, sumB + hwb
      end
      if live or active then
        kept = kept + 1
      else                           -- promises nothing, load stale: dropped
        drops = drops or {}
        drops[#drops + 1], drops[#drops + 2] = from, p
      end
    end
    pos = p
  end
  -- demand: the load per period (rate: micro-permits/s; window: grants per W)
  local unit = rate and 1e12 or en.per
  -- a call with nothing used or asked for lets the estimate fall twice as
  -- fast (a sixth of a term's time constant)
  local quiet = en.use == 0 and en.d == 0
  ld = math.min(capA, load_step(ld, (en.use + en.d) * unit / dt, dt, quiet and term / 2 or term))
  -- idle: quiet, and a load below a permit a term (from a host that had
  -- all of a limit of 1000 a term, within about 1.2 terms): it wants
  -- nothing, not even the floor, so its share goes to hosts with demand
  -- once its promises expire; its next denial (unmet) asks again. A key
  -- used at least once a term keeps its share.
  local idle = quiet and ld * term < unit
  local wa = ld * HEADROOM
  if en.d > 0 then wa = math.max(wa, en.sa * 2, en.sa + en.d * unit / dt) end
  if idle then
    wa = 0
  elseif not rate then
    wa = math.max(1, math.ceil(wa))
  end
  local wb = 0
  if rate and not idle then
    wb = math.max(1, math.ceil(capB * wa / capA))
    if en.d > 0 then wb = math.max(wb, math.min(capB, en.sb + en.d)) end
  end
  nw = nw + 1
  WA[nw], WB[nw] = wa, wb
  local ga = math.floor(math.min(wa, level(WA, nw, sumA + wa, capA), capA - otherA))
  local gb = math.floor(math.min(wb, level(WB, nw, sumB + wb, capB), capB - otherB))
  if rate and not idle and gb < 1 and capB - otherB >= 1 then gb = 1 end
  local code = OK
  -- after a loss, a window's grants under the old leases count W past them
  if v < ep.fence + (rate and 0 or en.per) then code, ga, gb = FENCED, 0, 0 end
  if ga < 0 then ga = 0 end
  if gb < 0 then gb = 0 end
  local cexp = v + term + (rate and 0 or en.per)   -- a window's grants count W longer
  local moved
  cd, moved = cooldown(cd, en.cd, v)
  local refresh = not s or moved or v - x >= term
  if refresh then x = v end
  -- its promises: a grant and those it does not dominate, or (none) its live ones
  local granted = ga > 0 or gb > 0
  local l = own and promises_kept(s, own_p, own_n, v, granted and ga or -1, granted and gb or -1,
                                  cexp)
  local value
  if granted and not l then
    value = struct.pack(SHEAD_OWN_NEW, en.kind, en.cap, en.bst, en.per, cd, x, kept + 1,
                        #me, me, ld, v, wa, wb, 1, ga, gb, cexp)
  else
    local t = l or {}
    if granted then
      for i = #t, 1, -1 do t[i + 3] = t[i] end
      t[1], t[2], t[3] = ga, gb, cexp
    end
    local ps, np = promises_pack(t)
    value = struct.pack(SHEAD_OWN, en.kind, en.cap, en.bst, en.per, cd, x, kept + 1,
                        #me, me, ld, v, wa, wb, np) .. ps
  end
  put(k, value .. others_of(s, first, own, own_to, drops), refresh,
      KEEP_TERMS * term + (rate and 0 or en.per), cd, v)
  return answer(code, ga, gb, term, 0, cd > v and cd - v or 0, '')
end

-- ---- quota and slots: blocks --------------------------------------------

local function block_size(ld, en, h, d)
  local bmax = math.max(1, math.floor(en.cap / (4 * h.hosts)))
  local b = ld * h.term / 1e6 * BLOCK_TERMS
  if b < 0.01 and d == 0 then return 0 end
  return math.min(bmax, math.max(1, math.ceil(b), d))
end

-- open a seeding counter once its holders (or, for a key nobody knew,
-- every expected host) reported, and the fence is over
local function seeded(hold, rep, ep)
  if ep.vnow < ep.fence then return false end
  local any = false
  for x in string.gmatch(hold, '[^,]+') do
    any = true
    if not has(rep, x) and not ep.gone[x] then return false end
  end
  return any or not ep.lost or ep.complete
end

-- A quota or slots key s as read (none: a new one): its fields, and the
-- caller's own record (A < 0: none) and where it lies.
local function block_read(s, me)
  local b = { pid = -1, used = 0, cap = 0, cd = 0, x = 0, seed = false, hold = '', rep = '',
              s = s, first = 1, n = 0, own = false, own_to = false, A = -1, ld = 0, t = 0 }
  if not s then return b end
  local _, seed, nh, pos
  _, b.pid, b.used, b.cap, b.cd, b.x, seed, b.hold, b.rep, nh, pos = struct.unpack(BHEAD, s)
  b.seed, b.first = seed == 1, pos
  for _ = 1, nh do
    local from, name, A, ld, t = pos
    name, A, ld, t, pos = struct.unpack(BHOST, s, pos)
    if name == me then
      b.own, b.own_to, b.A, b.ld, b.t = from, pos, A, ld, t
    else
      b.n = b.n + 1
    end
  end
  return b
end

-- write it back, the caller's record (A, ld, t) first unless A < 0; its
-- TTL life us (nil: none) when refresh (put)
local function block_write(k, kind, pid, cap, b, me, A, ld, t, refresh, life, v)
  local others = others_of(b.s, b.first, b.own or nil, b.own_to or nil, nil)
  local value
  if A >= 0 then
    value = struct.pack(BHEAD_OWN, kind, pid, b.used, cap, b.cd, b.x, b.seed and 1 or 0,
                        #b.hold, b.hold, #b.rep, b.rep, b.n + 1, #me, me, A, ld, t)
  else
    value = struct.pack(BHEAD, kind, pid, b.used, cap, b.cd, b.x, b.seed and 1 or 0,
                        #b.hold, b.hold, #b.rep, b.rep, b.n)
  end
  put(k, value .. others, refresh, life, b.cd, v)
end

-- Renew host h's allocation of quota or slots key k. en.sa: the allocation
-- the host keeps (it clamped its key to it); en.hold: units consumed this
-- period (quota) or held now (slots); en.use, en.d: units granted and
-- denied since its last call; en.sb: the quota's period id; en.bst: 1 for
-- a soft quota (overage: never short of units, counted all the same).
-- Its TTL: en.ttl ms (< 0: none); a host behind the key's period leaves
-- it as it is.
local function renew_block(k, h, ep, en)
  local s, v, me = redis.call('GET', k), ep.vnow, h.host
  local pid = en.kind == 'q' and en.sb or 0
  if s and string.byte(s, 1) ~= string.byte(en.kind) then
    return answer(CONFLICT, en.sa, 0, 0, 0, 0, '')
  end
  if en.cap < 1 then return answer(INVALID, en.sa, 0, 0, 0, 0, '') end
  local uncertain = v < ep.fence or (ep.lost and not ep.complete)
  local b, fresh = block_read(s, me), false
  if not s or pid > b.pid then
    -- a new counter (or period), seeded from reports when the epoch is
    -- uncertain; a cooldown outlives the period
    local cd0 = b.cd
    b, fresh = block_read(false, me), true
    b.pid, b.cap, b.cd = pid, en.cap, cd0
    b.seed = uncertain or en.sa > 0 or en.known ~= ''
  end
  local moved
  b.cd, moved = cooldown(b.cd, en.cd, v)
  local cd = b.cd > v and b.cd - v or 0
  if pid < b.pid then                  -- its TTL stays, but outlives the cooldown
    if moved then
      block_write(k, en.kind, b.pid, b.cap, b, me, b.A, b.ld, b.t, false)
      local ttl = redis.call('PTTL', k)
      if ttl >= 0 and ttl < (b.cd - v) / 1000 + 1000 then
        redis.call('PEXPIRE', k, int(math.ceil((b.cd - v) / 1000) + 1000))
      end
    end
    return answer(BEHIND, en.sa, 0, 0, 0, cd, b.hold)
  end
  local refresh, life = fresh or moved or v - b.x >= h.term, nil
  if refresh then b.x = v end
  if en.ttl >= 0 then life = en.ttl * 1000 end
  local cap = math.min(en.cap, b.cap)
  local have, c = b.A, math.min(en.hold, en.sa)
  if b.seed then
    for x in string.gmatch(en.known, '[^,]+') do b.hold = with(b.hold, x) end
    if en.sa > 0 then b.hold = with(b.hold, me) end
    if not has(b.rep, me) then
      b.rep = with(b.rep, me)
      if en.sa > 0 then b.used = b.used + en.sa end
      have = en.sa
    end
    if not seeded(b.hold, b.rep, ep) then
      block_write(k, en.kind, b.pid, en.cap, b, me, have, b.ld, b.t, refresh, life, v)
      return answer(v < ep.fence and FENCED or SEEDING, math.max(have, 0), 0, 0, 0, cd, b.hold)
    end
    b.seed = false
  end
  -- the host's report is the allocation it keeps: an unknown one is counted
  if have < 0 then have = 0 end
  b.used = b.used + en.sa - have
  have = en.sa
  local ld, dt = b.ld, h.term
  if b.t > 0 then dt = math.max(1, v - b.t) end
  ld = load_step(ld, (en.use + en.d) * 1e6 / dt, dt, h.term)
  local block = block_size(ld, en, h, en.d)
  local need = block - (have - c)
  if need > 0 then
    local grant = need
    if en.bst == 0 then grant = math.max(0, math.min(need, cap - b.used)) end
    have, b.used = have + grant, b.used + grant
  end
  if have > 0 then b.hold = with(b.hold, me) end
  block_write(k, en.kind, b.pid, en.cap, b, me, have, ld, v, refresh, life, v)
  return answer(OK, have, 0, 0, block, cd, b.hold)
end

local function renew_gate(k, h, ep, en)
  local s, v = redis.call('GET', k), ep.vnow
  local cd, x = 0, 0
  if s then
    if string.byte(s, 1) ~= string.byte('g') then return answer(CONFLICT, 0, 0, 0, 0, 0, '') end
    local _
    _, cd, x = struct.unpack(GHEAD, s)
  end
  local moved
  cd, moved = cooldown(cd, en.cd, v)
  if not s or moved or v - x >= h.term then     -- its TTL, once a term
    put(k, struct.pack(GHEAD, 'g', cd, v), true, KEEP_TERMS * h.term, cd, v)
  end
  return answer(OK, 0, 0, 0, 0, cd > v and cd - v or 0, '')
end

local KINDS = { r = renew_share, w = renew_share, q = renew_block, s = renew_block, g = renew_gate }

local function reply_head(ep)
  return { 'ok', ep.id, ep.vnow, math.max(0, ep.fence - ep.vnow), ep.lost and 1 or 0,
           ep.complete and 1 or 0, ep.reg }
end

-- vrl_renew: KEYS = epoch, then one key per entry; ARGV = header, entries.
-- Reply: the header, then the answers (one string).
local function renew(keys, args)
  local h, err = header(args)
  if not h then return redis.error_reply(err) end
  if #keys ~= h.n + 1 then return redis.error_reply('vrl: one key per entry, and the epoch') end
  local ep, stale = epoch(keys[1], h)
  if not ep then return stale end
  local out, en, pos = {}, {}, 1
  for i = 1, h.n do
    pos = entry(h.blob, pos, en)
    local fn = KINDS[en.kind]
    out[i] = fn and fn(keys[i + 1], h, ep, en) or answer(INVALID, 0, 0, 0, 0, 0, '')
  end
  return { reply_head(ep), table.concat(out) }
end

-- vrl_release: the host gave its shares up (its keys are clamped to them
-- already): rate: none; window: en.hold grants still in its window, for W;
-- quota, slots: en.sa kept.
local function release_share(k, s, me, v, en)
  local _, nh, pos
  _, _, _, _, _, _, nh, pos = struct.unpack(SHEAD, s)
  local first, own, own_to, live, kept = pos, nil, nil, false, 0
  for _ = 1, nh do
    local from, name, np, p = pos
    name, _, _, _, _, np, p = struct.unpack(SHOST, s, pos)
    if name == me then
      for _ = 1, np do
        local pe
        _, _, pe, p = struct.unpack(PROMISE, s, p)
        if pe > v then live = true end
      end
      own, own_to = from, p
    else
      p = p + np * PROMISE_LEN
      kept = kept + 1
    end
    pos = p
  end
  local mine = ''
  if en.kind == 'w' and en.hold > 0 and live then   -- no load, one promise
    mine = struct.pack(SHOST .. 'ddd', #me, me, 0, 0, 0, 0, 1, en.hold, 0, v + en.per)
    kept = kept + 1
  end
  put(k, string.sub(s, 1, SHEAD_HOSTS) .. struct.pack('<H', kept) .. mine ..
         others_of(s, first, own, own_to, nil), false)
end

local function release(keys, args)
  local h, err = header(args)
  if not h then return redis.error_reply(err) end
  if #keys ~= h.n + 1 then return redis.error_reply('vrl: one key per entry, and the epoch') end
  local ep, stale = epoch(keys[1], h)
  if not ep then return stale end
  local out, en, pos = {}, {}, 1
  for i = 1, h.n do
    pos = entry(h.blob, pos, en)
    local k, code = keys[i + 1], INVALID
    local s = KINDS[en.kind] and redis.call('GET', k)
    if s then
      code = OK
      if string.byte(s, 1) ~= string.byte(en.kind) then
        code = CONFLICT
      elseif en.kind == 'r' or en.kind == 'w' then
        release_share(k, s, h.host, ep.vnow, en)
      elseif en.kind == 'q' or en.kind == 's' then
        local b = block_read(s, h.host)
        if not b.seed and (en.kind == 's' or b.pid == en.sb) and en.sa < b.A then
          b.used = b.used - b.A + en.sa
          block_write(k, en.kind, b.pid, b.cap, b, h.host, en.sa, b.ld, b.t, false)
        end
      end
    elseif s == false then
      code = OK
    end
    out[i] = answer(code, 0, 0, 0, 0, 0, '')
  end
  return { reply_head(ep), table.concat(out) }
end

-- vrl_state (read only): KEYS = epoch, then keys. For each key: its kind,
-- capacities and per host the max unexpired promise (a, b) and its latest
-- expiry relative to the epoch's time, or the allocation.
local function state_of(s, v)
  if not s then return { '', 0, 0, 0, 0, '', '', 0, {}, 0 } end
  local kind, hosts = string.sub(s, 1, 1), {}
  if kind == 'r' or kind == 'w' then
    local _, cap, bst, per, cd, nh, pos
    _, cap, bst, per, cd, _, nh, pos = struct.unpack(SHEAD, s)
    for _ = 1, nh do
      local name, np, p
      name, _, _, _, _, np, p = struct.unpack(SHOST, s, pos)
      local a, b, last = 0, 0, 0
      for _ = 1, np do
        local pa, pb, pe
        pa, pb, pe, p = struct.unpack(PROMISE, s, p)
        if pe > v then
          a, b, last = math.max(a, pa), math.max(b, pb), math.max(last, pe)
        end
      end
      if last > 0 then hosts[#hosts + 1] = { name, a, b, last - v } end
      pos = p
    end
    return { kind, cap, bst, per, 0, '', '', math.max(0, cd - v), hosts, 0 }
  end
  if kind == 'q' or kind == 's' then
    local b = block_read(s, '')
    local pos = b.first
    for _ = 1, b.n do
      local name, A
      name, A, _, _, pos = struct.unpack(BHOST, s, pos)
      if A >= 0 then hosts[#hosts + 1] = { name, A, 0, 0 } end
    end
    return { kind, b.cap, 0, 0, b.used, b.seed and 'seed' or 'open', b.hold,
             math.max(0, b.cd - v), hosts, b.pid }
  end
  local _, cd = struct.unpack(GHEAD, s)
  return { kind, 0, 0, 0, 0, '', '', math.max(0, cd - v), hosts, 0 }
end

local function state(keys, args)
  local e = hgetall(keys[1])
  local v = tonumber(e.vnow or '0')
  local reg = {}
  for f, val in pairs(e) do
    local r = string.match(f, '^r:(.+)$')
    if r then reg[#reg + 1] = { r, v - tonumber(val) } end
  end
  local out = { { e.id or '', v, e.fence and math.max(0, tonumber(e.fence) - v) or 0,
                  e.lost == '1' and 1 or 0, e.expect or '', reg, now_us() } }
  for i = 2, #keys do out[i] = state_of(redis.call('GET', keys[i]), v) end
  return out
end

-- vrl_forget: ARGV[1] a host that is gone for good: keys waiting for its
-- report open without it; its allocations stay counted.
local function forget(keys, args)
  redis.call('HDEL', keys[1], 'r:' .. args[1], 's:' .. args[1], 'f:' .. args[1])
  redis.call('HSET', keys[1], 'g:' .. args[1], '1')
  return 1
end

-- vrl_reseed: KEYS[1] a quota or slots key, ARGV[1] the units to count
-- as used: the operator's word opens a counter that waits for a report.
local function reseed(keys, args)
  local used = tonumber(args[1])
  if not used or used < 0 then return redis.error_reply('vrl: reseed needs units >= 0') end
  local s = redis.call('GET', keys[1])
  if not s or (string.byte(s, 1) ~= string.byte('q') and string.byte(s, 1) ~= string.byte('s')) then
    return redis.error_reply('vrl: not a quota or slots key')
  end
  local b = block_read(s, '')
  b.used, b.seed = math.floor(used), false
  block_write(keys[1], string.sub(s, 1, 1), b.pid, b.cap, b, '', -1, 0, 0, false)
  return 1
end

local function version()
  return { VERSION, PROTOCOL }
end

redis.register_function{ function_name = 'vrl_renew', callback = renew }
redis.register_function{ function_name = 'vrl_release', callback = release }
redis.register_function{ function_name = 'vrl_state', callback = state, flags = { 'no-writes' } }
redis.register_function{ function_name = 'vrl_forget', callback = forget }
redis.register_function{ function_name = 'vrl_reseed', callback = reseed }
redis.register_function{ function_name = 'vrl_version', callback = version, flags = { 'no-writes' } }
