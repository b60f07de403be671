-- A consistency check of a whole chuk-vfs filesystem in Redis, run with
-- redis-cli EVAL (for tests: it reads every key of the prefix).  ARGV[1]:
-- the prefix.  Returns the list of problems found (empty when whole):
-- every entry names an existing inode of its type, listed in l:DIR with its
-- cookie; directories have one name (the root none), their parent field and
-- 2 + subdirectories links; other inodes have as many links as names; no
-- inode without a name; nfiles counts the records; chunks belong to files.
local p = ARGV[1]
local bad = {}
local function say(s) bad[#bad + 1] = s end
local keys = redis.call('KEYS', p .. '*')
local inodes, names, subdirs, parent_of = {}, {}, {}, {}
local nrec = 0
for _, k in ipairs(keys) do
  local ino = string.match(k, '^' .. p:gsub('%p', '%%%0') .. 'i:(%d+)$')
  if ino then
    local m = tonumber(redis.call('HGET', k, 'mode') or '0')
    inodes[ino] = {mode = m, nlink = tonumber(redis.call('HGET', k, 'nlink') or '-1'),
                   parent = redis.call('HGET', k, 'parent')}
    names[ino], subdirs[ino] = 0, 0
    nrec = nrec + 1
  end
end
local function isdir(m) return math.floor(m / 4096) == 4 end
for _, k in ipairs(keys) do
  local dir = string.match(k, '^' .. p:gsub('%p', '%%%0') .. 'd:(%d+)$')
  if dir then
    if not inodes[dir] or not isdir(inodes[dir].mode) then
      say('d:' .. dir .. ' of a missing or non-directory inode')
    end
    local all = redis.call('HGETALL', k)
    if redis.call('ZCARD', p .. 'l:' .. dir) ~= #all / 2 then
      say('l:' .. dir .. ' and d:' .. dir .. ' differ in size')
    end
    for i = 1, #all, 2 do
      local name, v = all[i], all[i + 1]
      local ino, ty, eid = string.match(v, '^(%d+) (%d+) (%d+)$')
      local rec = ino and inodes[ino]
      if not rec then
        say('entry ' .. dir .. '/' .. name .. ' -> missing inode ' .. tostring(ino))
      else
        names[ino] = names[ino] + 1
        if tonumber(ty) ~= math.floor(rec.mode / 4096) then
          say('entry ' .. dir .. '/' .. name .. ': type ' .. ty .. ' but mode ' .. rec.mode)
        end
        if isdir(rec.mode) then
          subdirs[dir] = (subdirs[dir] or 0) + 1
          parent_of[ino] = dir
        end
        local sc = redis.call('ZSCORE', p .. 'l:' .. dir, ino .. ':' .. ty .. ':' .. name)
        if not sc or tonumber(sc) ~= tonumber(eid) then
          say('entry ' .. dir .. '/' .. name .. ' not listed with its cookie')
        end
      end
    end
  end
end
for ino, rec in pairs(inodes) do
  if isdir(rec.mode) then
    local want = ino == '1' and 0 or 1
    if names[ino] ~= want then say('directory ' .. ino .. ' has ' .. names[ino] .. ' names') end
    if ino ~= '1' and rec.parent ~= parent_of[ino] then
      say('directory ' .. ino .. ': parent ' .. tostring(rec.parent) .. ', named in ' .. tostring(parent_of[ino]))
    end
    if rec.nlink ~= 2 + subdirs[ino] then
      say('directory ' .. ino .. ': nlink ' .. rec.nlink .. ', want ' .. (2 + subdirs[ino]))
    end
  elseif rec.nlink ~= names[ino] or names[ino] == 0 then
    say('inode ' .. ino .. ': nlink ' .. rec.nlink .. ', names ' .. names[ino])
  end
end
local nf = tonumber(redis.call('GET', p .. 'nfiles') or '0')
if nf ~= nrec then say('nfiles says ' .. nf .. ' inodes, there are ' .. nrec) end
for _, k in ipairs(keys) do
  local ino = string.match(k, '^' .. p:gsub('%p', '%%%0') .. 'c:(%d+):%d+$')
  if ino and (not inodes[ino] or isdir(inodes[ino].mode)) then say('chunk ' .. k .. ' of no file') end
end
return bad
