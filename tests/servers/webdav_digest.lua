-- RFC 3230 instance digests for tests/servers/webdav.sh: answers "Want-Digest: adler32" on HEAD and GET
-- of a file with "Digest: adler32=<8 hex digits>", as grid storage servers (dCache, EOS, StoRM) do.
-- Installed with "LuaHookFixups webdav_digest.lua addDigest" on the locations that offer digests.
require "apache2"

local function adler32(path)
    local file = io.open(path, "rb")
    if not file then return nil end
    local a, b = 1, 0
    while true do
        local ok, chunk = pcall(file.read, file, 1 << 16)
        if not ok or not chunk then break end
        for i = 1, #chunk, 4096 do
            for _, byte in ipairs({string.byte(chunk, i, math.min(i + 4095, #chunk))}) do
                a = a + byte
                b = b + a
            end
            a = a % 65521
            b = b % 65521
        end
    end
    file:close()
    return string.format("%08x", (b << 16) | a)
end

function addDigest(r)
    if r.method ~= "HEAD" and r.method ~= "GET" then return apache2.DECLINED end
    local wanted = string.lower(r.headers_in["Want-Digest"] or "")
    if not string.find(wanted, "adler32", 1, true) then return apache2.DECLINED end
    local info = r:stat(r.filename)
    if not info or info.filetype ~= 1 then return apache2.DECLINED end  -- 1: a regular file
    local digest = adler32(r.filename)
    if digest then r.headers_out["Digest"] = "adler32=" .. digest end
    return apache2.DECLINED
end
