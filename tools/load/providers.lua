-- wrk script: POST application decisions without a verified income, each for a new customer,
-- so that every decision asks the income and liabilities providers (no cache hits). Used by
-- tools/load/providers.sh; reads CREDENCE_KEY and CREDENCE_BODY_FILE from the environment.
local file = assert(io.open(os.getenv("CREDENCE_BODY_FILE"), "r"))
local template = file:read("*a")
file:close()
-- The lender sends no verified figure: the flow asks the provider.
template = template:gsub('"verified_monthly_income": %d+,', '')

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CREDENCE_KEY")

math.randomseed(os.time())
local tag = tostring(math.random(1, 1000000000))
local counter = 0

request = function()
  counter = counter + 1
  local body = template:gsub('"C%-100011"', '"C-prov-' .. tag .. '-' .. counter .. '"')
  return wrk.format(nil, nil, nil, body)
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
