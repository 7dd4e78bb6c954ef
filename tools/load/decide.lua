-- wrk script: POST application decisions for 1,000 different customers, with a key.
-- Used by tools/load/run.sh; reads CREDENCE_KEY and CREDENCE_BODY_FILE from the environment.
-- Requests are formatted once at start so that the load generator spends its CPU on sending.
local file = assert(io.open(os.getenv("CREDENCE_BODY_FILE"), "r"))
local template = file:read("*a")
file:close()

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CREDENCE_KEY")

local requests = {}
local next_request = 0

init = function(args)
  local tag = tostring(math.random(1, 1000000))
  for i = 1, 1000 do
    local body = template:gsub('"C%-100011"', '"C-load-' .. tag .. '-' .. i .. '"')
    requests[i] = wrk.format(nil, nil, nil, body)
  end
end

request = function()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

local failures = 0
response = function(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
    if failures <= 3 then
      io.stderr:write("status " .. status .. ": " .. body .. "\n")
    end
  end
end
