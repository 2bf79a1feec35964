#!lua name=vrl
--[[
vrl.lua - the Redis side of vrl's global limits: one function library,
loaded by vrld with FUNCTION LOAD REPLACE when Redis holds none or an
older VERSION. Every function is one atomic step of Redis.

Redis keys (PREFIX is vrld's, "vrl:" by default):
  PREFIX e        the epoch hash: id, born, vnow, tnow, fence, lost, expect, and
                  per host r:<host> (virtual time last seen), s:<host>
                  ("boot mono", its last call), f:<host> (it made a full
                  report, every key it has here, in this epoch), g:<host>
                  (forgotten)
  PREFIX k:<id>   one hash per global key: kind, cap, bst, per, cd and
                  rate/window: p:<host> promises, l:<host> load;
                  quota/slots: pid, used, st, hold, rep, A:<host>, l:<host>

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

Blocks (quota, slots). Units are counted when leased: used = sum of the
hosts' allocations A:<host>, used <= cap for a hard limit. A host shrinks
its own allocation (it clamps its local key first, then reports the
allocation it keeps); the function only grows it, by at most one block of
spare beyond what the host consumed, so a dead host strands at most one
block (quota) or its held units plus a block (slots, until an operator
forgets it).

Loss. A Redis that lost its data has a new epoch (the hash is made anew
with the first call). Nothing is granted until v >= fence = born + term +
margin: every lease of the old epoch expired. A host whose known epoch
differs marks the epoch lost and names the hosts it knew (expect).
Quota and slots counters made in an uncertain epoch are seeded from the
allocations hosts report: a key opens once every host known to hold
units of it reported, and a key nobody knows of only once every expected
host made a full report (a call flagged full: every key it has here). vrl_forget and vrl_reseed are the operator's way out.
]]

local VERSION = 1    -- the library's version: vrld loads it over an older one
local PROTOCOL = 1   -- the argument and reply layout vrld speaks

local HDR = 12       -- header arguments of vrl_renew and vrl_release
local PER = 12       -- arguments per entry
local HEADROOM = 1.25    -- a share is this much above the recent load
local BLOCK_TERMS = 2    -- a quota or slots block covers this many terms of load
local ACTIVE_TERMS = 2   -- a host renewing a key within this many terms is active
local KEEP_TERMS = 4     -- rate and window keys live this long past their last call
local PROMISES_MAX = 16  -- promises kept per host and key (then merged, upward)

-- entry status codes (global.h: enum vrl_global_outcome)
local OK, FENCED, SEEDING, BEHIND, CONFLICT, INVALID = 0, 1, 2, 3, 4, 7

-- ---- helpers -----------------------------------------------------------

local function int(x) return string.format('%d', math.floor(x)) end
local function num(x) return string.format('%.17g', x) end

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

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- max-min fair level for wants over cap: min(want, level) sums to <= cap
local function level(wants, cap)
  table.sort(wants)
  local left, n = cap, #wants
  for i, w in ipairs(wants) do
    local fair = left / (n - i + 1)
    if w > fair then return fair end
    left = left - w
  end
  return cap
end

-- load estimate: up at once, down smoothly (a third of a term's time constant)
local function load_step(ld, sample, dt, term)
  if sample >= ld then return sample end
  return ld + (sample - ld) * (1 - math.exp(-3 * dt / term))
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
              n = tonumber(a[12]) }
  if not string.match(h.host, '^[%w._-]+$') or not h.boot or not h.mono or not h.ub or
     h.ub < 0 or not h.term or h.term <= 0 or not h.margin or not h.hosts or
     h.hosts < 1 or not h.n or #a ~= HDR + h.n * PER then
    return nil, 'vrl: malformed call header'
  end
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
  redis.call('HDEL', ekey, 'g:' .. h.host)   -- a forgotten host that calls is back
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

-- An entry: kind, cap, per, bst, use, unmet, sa, sb, hold, cd, known, ttl
-- (the layout is global.h's, see redis.c: encode_entry).
local function entry(a, i)
  local o = HDR + (i - 1) * PER
  local en = { kind = a[o + 1], cap = tonumber(a[o + 2]), per = tonumber(a[o + 3]),
               bst = tonumber(a[o + 4]), use = tonumber(a[o + 5]), d = tonumber(a[o + 6]),
               sa = tonumber(a[o + 7]), sb = tonumber(a[o + 8]), hold = tonumber(a[o + 9]),
               cd = tonumber(a[o + 10]), known = a[o + 11], ttl = tonumber(a[o + 12]) }
  if not (en.cap and en.per and en.bst and en.use and en.d and en.sa and en.sb and en.hold and
          en.cd and en.ttl) or en.cap < 0 or en.per < 0 or en.bst < 0 or en.use < 0 or
     en.d < 0 or en.sa < 0 or en.sb < 0 or en.hold < 0 or en.cd < 0 then
    return nil
  end
  return en
end

-- the cooldown step of every kind: publish, and what to apply
local function cooldown(k, f, en, v)
  local cd = tonumber(f.cd or '0')
  if en.cd > 0 and v + en.cd > cd then
    cd = v + en.cd
    redis.call('HSET', k, 'cd', int(cd))
    local ttl = redis.call('PTTL', k)      -- the key outlives its cooldown
    if ttl >= 0 and ttl < en.cd / 1000 + 1000 then
      redis.call('PEXPIRE', k, math.ceil(en.cd / 1000) + 1000)
    end
  end
  return cd > v and cd - v or 0
end

-- keep key k for life us past v: its TTL is set again only once a term
-- went by since the last time (field x), not at every call
local function keep(k, f, v, term, life)
  if v - tonumber(f.x or '0') >= term then
    redis.call('PEXPIRE', k, math.ceil(life / 1000))
    redis.call('HSET', k, 'x', int(v))
  end
end

-- ---- rate and window: promises ------------------------------------------

-- a promise list "a b e a b e ...", pruned at v
local function promises(s, v)
  local l, t = {}, {}
  for x in string.gmatch(s or '', '%S+') do t[#t + 1] = tonumber(x) end
  for i = 1, #t - 2, 3 do
    if t[i + 2] > v then l[#l + 1] = { t[i], t[i + 1], t[i + 2] } end
  end
  return l
end

local function promise_max(l)
  local a, b = 0, 0
  for _, p in ipairs(l) do
    if p[1] > a then a = p[1] end
    if p[2] > b then b = p[2] end
  end
  return a, b
end

-- add (a, b, e), e the latest expiry: a promise it dominates goes. Past
-- PROMISES_MAX (a share shrinking at every call of a long window), the two
-- neighbours closest in expiry merge into one that promises the larger
-- share until the later expiry: more than both, so still an upper bound.
local function promise_add(l, a, b, e)
  local out = {}
  for _, p in ipairs(l) do
    if p[1] > a or p[2] > b then out[#out + 1] = p end
  end
  out[#out + 1] = { a, b, e }
  if #out > PROMISES_MAX then
    local best, gap = 1, math.huge
    for i = 1, #out - 2 do
      if out[i + 1][3] - out[i][3] < gap then best, gap = i, out[i + 1][3] - out[i][3] end
    end
    local p, q = out[best], out[best + 1]
    out[best] = { math.max(p[1], q[1]), math.max(p[2], q[2]), q[3] }
    table.remove(out, best + 1)
  end
  local s = {}
  for _, p in ipairs(out) do
    s[#s + 1] = string.format('%d %d %d', math.floor(p[1]), math.floor(p[2]), math.floor(p[3]))
  end
  return table.concat(s, ' ')
end

-- Renew host h's share of rate or window key k. Rate: a = rate in
-- micro-permits per second, b = burst; window: a = grants in any W.
local function renew_share(k, h, ep, en)
  local f, v, term = hgetall(k), ep.vnow, h.term
  local rate = en.kind == 'r'
  if f.kind and f.kind ~= en.kind then return { CONFLICT, 0, 0, 0, 0, 0, '' } end
  if en.cap < 1 or en.per < 1 or (rate and en.bst < 1) then return { INVALID, 0, 0, 0, 0, 0, '' } end
  local capA, capB = en.cap, rate and en.bst or 0
  if f.cap then   -- hosts disagree on the figures (a config rollout): the smaller holds
    capA = math.min(capA, tonumber(f.cap))
    capB = math.min(capB, tonumber(f.bst))
  end
  local otherA, otherB, wantsA, wantsB = 0, 0, {}, {}
  local mine, seen, del, loads = {}, {}, {}, {}
  local ld, dt = 0, term
  for name, val in pairs(f) do
    local tag = string.byte(name, 2) == 58 and string.byte(name, 1)   -- "p:", "l:"
    local who = tag and string.sub(name, 3)
    if tag == 112 then
      local l = promises(val, v)
      if who == h.host then
        mine = l
      else
        local a, b = promise_max(l)
        otherA, otherB = otherA + a, otherB + b
      end
      if #l > 0 then seen[who] = true else del[#del + 1] = name end
    elseif tag == 108 then
      local l, t, wa, wb = string.match(val, '^(%S+) (%S+) (%S+) (%S+)$')
      t = tonumber(t)
      if who == h.host then
        ld, dt = tonumber(l), math.max(1, v - t)
      elseif t >= v - ACTIVE_TERMS * term then
        wantsA[#wantsA + 1], wantsB[#wantsB + 1] = tonumber(wa), tonumber(wb)
      else
        loads[#loads + 1] = who          -- stale: dropped unless it still holds a promise
      end
    end
  end
  for _, who in ipairs(loads) do
    if not seen[who] then del[#del + 1] = 'l:' .. who end
  end
  -- demand: the load per period (rate: micro-permits/s; window: grants per W)
  local unit = rate and 1e12 or en.per
  ld = math.min(capA, load_step(ld, (en.use + en.d) * unit / dt, dt, term))
  local wa = ld * HEADROOM
  if en.d > 0 then wa = math.max(wa, en.sa * 2, en.sa + en.d * unit / dt) end
  if not rate then wa = math.max(1, math.ceil(wa)) end
  local wb = 0
  if rate then
    wb = math.max(1, math.ceil(capB * wa / capA))
    if en.d > 0 then wb = math.max(wb, math.min(capB, en.sb + en.d)) end
  end
  wantsA[#wantsA + 1], wantsB[#wantsB + 1] = wa, wb
  local ga = math.floor(math.min(wa, level(wantsA, capA), capA - otherA))
  local gb = math.floor(math.min(wb, level(wantsB, capB), capB - otherB))
  if rate and gb < 1 and capB - otherB >= 1 then gb = 1 end
  local code = OK
  if v < ep.fence then code, ga, gb = FENCED, 0, 0 end
  if ga < 0 then ga = 0 end
  if gb < 0 then gb = 0 end
  local cexp = v + term + (rate and 0 or en.per)   -- a window's grants count W longer
  local set = { 'l:' .. h.host, string.format('%.17g %d %.17g %.17g', ld, v, wa, wb) }
  if tonumber(f.cap) ~= en.cap or tonumber(f.bst) ~= en.bst or tonumber(f.per) ~= en.per then
    for _, x in ipairs({ 'kind', en.kind, 'cap', int(en.cap), 'bst', int(en.bst),
                         'per', int(en.per) }) do set[#set + 1] = x end
  end
  if ga > 0 or gb > 0 then
    set[#set + 1], set[#set + 2] = 'p:' .. h.host, promise_add(mine, ga, gb, cexp)
  end
  redis.call('HSET', k, unpack(set))
  for _, name in ipairs(del) do
    if name ~= 'p:' .. h.host or ga + gb == 0 then redis.call('HDEL', k, name) end
  end
  local cd = cooldown(k, f, en, v)
  keep(k, f, v, term, KEEP_TERMS * term + (rate and 0 or en.per))
  return { code, ga, gb, term, 0, cd, '' }
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
local function seeded(f, ep)
  if ep.vnow < ep.fence then return false end
  local hold, rep = set_of(f.hold), set_of(f.rep)
  local any = false
  for x in pairs(hold) do
    any = true
    if not rep[x] and not ep.gone[x] then return false end
  end
  return any or not ep.lost or ep.complete
end

-- Renew host h's allocation of quota or slots key k. en.sa: the allocation
-- the host keeps (it clamped its key to it); en.hold: units consumed this
-- period (quota) or held now (slots); en.use, en.d: units granted and
-- denied since its last call; en.sb: the quota's period id; en.bst: 1 for
-- a soft quota (overage: never short of units, counted all the same).
local function renew_block(k, h, ep, en)
  local f, v = hgetall(k), ep.vnow
  local pid = en.kind == 'q' and en.sb or 0
  if f.kind and f.kind ~= en.kind then return { CONFLICT, en.sa, 0, 0, 0, 0, '' } end
  if en.cap < 1 then return { INVALID, en.sa, 0, 0, 0, 0, '' } end
  local uncertain = v < ep.fence or (ep.lost and not ep.complete)
  if not f.kind or pid > tonumber(f.pid) then
    -- a new counter (or period): seeded from reports when the epoch is uncertain
    local cd0 = f.cd     -- a cooldown outlives the period
    redis.call('DEL', k)
    f = { kind = en.kind, pid = int(pid), used = '0', hold = '', rep = '',
          st = (uncertain or en.sa > 0 or en.known ~= '') and 'seed' or 'open', cd = cd0 }
    redis.call('HSET', k, 'kind', f.kind, 'pid', f.pid, 'used', '0', 'hold', '', 'rep', '',
               'st', f.st, 'cap', int(en.cap))
    if f.cd then redis.call('HSET', k, 'cd', f.cd) end
  end
  local cd = cooldown(k, f, en, v)
  if pid < tonumber(f.pid) then return { BEHIND, en.sa, 0, 0, 0, cd, f.hold } end
  local cap = math.min(en.cap, tonumber(f.cap or en.cap))
  local used, have = tonumber(f.used), tonumber(f['A:' .. h.host] or '-1')
  local hold = set_of(f.hold)
  local c = math.min(en.hold, en.sa)
  if f.st == 'seed' then
    local rep = set_of(f.rep)
    for x in pairs(set_of(en.known)) do hold[x] = true end
    if en.sa > 0 then hold[h.host] = true end
    if not rep[h.host] then
      rep[h.host] = true
      if en.sa > 0 then used = used + en.sa end
      have = en.sa
    end
    f.hold, f.rep = list_of(hold), list_of(rep)
    redis.call('HSET', k, 'hold', f.hold, 'rep', f.rep, 'used', int(used),
               'A:' .. h.host, int(have))
    if not seeded(f, ep) then
      return { v < ep.fence and FENCED or SEEDING, have, 0, 0, 0, cd, f.hold }
    end
    redis.call('HSET', k, 'st', 'open')
  end
  -- the host's report is the allocation it keeps: an unknown one is counted
  if have < 0 then have = 0 end
  used = used + en.sa - have
  have = en.sa
  local ld, dt = 0, h.term
  local lv = f['l:' .. h.host]
  if lv then
    local l, t = string.match(lv, '^(%S+) (%S+)')
    ld, dt = tonumber(l), math.max(1, v - tonumber(t))
  end
  ld = load_step(ld, (en.use + en.d) * 1e6 / dt, dt, h.term)
  local block = block_size(ld, en, h, en.d)
  local need = block - (have - c)
  if need > 0 then
    local grant = need
    if en.bst == 0 then grant = math.max(0, math.min(need, cap - used)) end
    have, used = have + grant, used + grant
  end
  if have > 0 then hold[h.host] = true end
  redis.call('HSET', k, 'A:' .. h.host, int(have), 'used', int(used), 'hold', list_of(hold),
             'l:' .. h.host, num(ld) .. ' ' .. int(v), 'cap', int(en.cap))
  if v - tonumber(f.x or '0') >= h.term then  -- its TTL, once a term
    if en.ttl < 0 then
      redis.call('PERSIST', k)
    elseif redis.call('PTTL', k) < en.ttl then
      redis.call('PEXPIRE', k, en.ttl)
    end
    redis.call('HSET', k, 'x', int(v))
  end
  return { OK, have, 0, 0, block, cd, list_of(hold) }
end

local function renew_gate(k, h, ep, en)
  local f = hgetall(k)
  if f.kind and f.kind ~= 'g' then return { CONFLICT, 0, 0, 0, 0, 0, '' } end
  if not f.kind then redis.call('HSET', k, 'kind', 'g') end
  local cd = cooldown(k, f, en, ep.vnow)
  keep(k, f, ep.vnow, h.term, KEEP_TERMS * h.term + cd)
  return { OK, 0, 0, 0, 0, cd, '' }
end

local KINDS = { r = renew_share, w = renew_share, q = renew_block, s = renew_block, g = renew_gate }

local function reply_head(ep)
  return { 'ok', ep.id, ep.vnow, math.max(0, ep.fence - ep.vnow), ep.lost and 1 or 0,
           ep.complete and 1 or 0, ep.reg }
end

-- vrl_renew: KEYS = epoch, then one key per entry; ARGV = header, entries.
local function renew(keys, args)
  local h, err = header(args)
  if not h then return redis.error_reply(err) end
  if #keys ~= h.n + 1 then return redis.error_reply('vrl: one key per entry, and the epoch') end
  local ep, stale = epoch(keys[1], h)
  if not ep then return stale end
  local out = { reply_head(ep) }
  for i = 1, h.n do
    local en = entry(args, i)
    local fn = en and KINDS[en.kind]
    out[i + 1] = fn and fn(keys[i + 1], h, ep, en) or { INVALID, 0, 0, 0, 0, 0, '' }
  end
  return out
end

-- vrl_release: the host gave its shares up (its keys are clamped to them
-- already): rate: none; window: en.hold grants still in its window, for W;
-- quota, slots: en.sa kept.
local function release(keys, args)
  local h, err = header(args)
  if not h then return redis.error_reply(err) end
  if #keys ~= h.n + 1 then return redis.error_reply('vrl: one key per entry, and the epoch') end
  local ep, stale = epoch(keys[1], h)
  if not ep then return stale end
  local out = { reply_head(ep) }
  for i = 1, h.n do
    local en, k = entry(args, i), keys[i + 1]
    local code = INVALID
    if en then
      local f = hgetall(k)
      code = OK
      if f.kind ~= en.kind then
        code = f.kind and CONFLICT or OK
      elseif en.kind == 'r' then
        redis.call('HDEL', k, 'p:' .. h.host, 'l:' .. h.host)
      elseif en.kind == 'w' then
        local mine = promises(f['p:' .. h.host], ep.vnow)
        if en.hold > 0 and #mine > 0 then
          redis.call('HSET', k, 'p:' .. h.host, int(en.hold) .. ' 0 ' .. int(ep.vnow + en.per))
        else
          redis.call('HDEL', k, 'p:' .. h.host)
        end
        redis.call('HDEL', k, 'l:' .. h.host)
      elseif (en.kind == 'q' or en.kind == 's') and f.st == 'open' and
             (en.kind == 's' or tonumber(f.pid) == en.sb) then
        local have = tonumber(f['A:' .. h.host] or '0')
        if en.sa < have then
          redis.call('HSET', k, 'A:' .. h.host, int(en.sa),
                     'used', int(tonumber(f.used) - have + en.sa))
        end
      end
    end
    out[i + 1] = { code }
  end
  return out
end

-- vrl_state (read only): KEYS = epoch, then keys. For each key: its kind,
-- capacities and per host the max unexpired promise (a, b) and its latest
-- expiry relative to the epoch's time, or the allocation.
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
  for i = 2, #keys do
    local f = hgetall(keys[i])
    local hosts = {}
    for name, val in pairs(f) do
      local ph = string.match(name, '^p:(.+)$')
      if ph then
        local l, last = promises(val, v), 0
        local a, b = promise_max(l)
        for _, p in ipairs(l) do if p[3] > last then last = p[3] end end
        if #l > 0 then hosts[#hosts + 1] = { ph, a, b, last - v } end
      end
      local ah = string.match(name, '^A:(.+)$')
      if ah then hosts[#hosts + 1] = { ah, tonumber(val), 0, 0 } end
    end
    out[i] = { f.kind or '', tonumber(f.cap or '0'), tonumber(f.bst or '0'),
               tonumber(f.per or '0'), tonumber(f.used or '0'), f.st or '', f.hold or '',
               math.max(0, tonumber(f.cd or '0') - v), hosts, tonumber(f.pid or '0') }
  end
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
  local kind = redis.call('HGET', keys[1], 'kind')
  if kind ~= 'q' and kind ~= 's' then return redis.error_reply('vrl: not a quota or slots key') end
  redis.call('HSET', keys[1], 'used', int(used), 'st', 'open')
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
