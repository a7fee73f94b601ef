-- Smoke test for the headless-Neovim harness: proves that Neovim starts headless, reads the
-- environment, runs its event loop inside vim.wait (timers fire), edits a buffer, and writes the
-- JSON result file that the Rust side reads back.
local result_file = assert(os.getenv("BATON_RESULT_FILE"), "BATON_RESULT_FILE is not set")

local result = { greeting = os.getenv("BATON_SMOKE_GREETING") }

local fired = false
vim.defer_fn(function()
  fired = true
end, 10)
vim.wait(5000, function()
  return fired
end, 5)
result.timer_fired = fired

local buffer = vim.api.nvim_create_buf(false, true)
vim.api.nvim_buf_set_lines(buffer, 0, -1, false, { "one", "two" })
result.buffer_lines = vim.api.nvim_buf_get_lines(buffer, 0, -1, false)

local version = vim.version()
result.version = { version.major, version.minor, version.patch }

local file = assert(io.open(result_file, "w"))
file:write(vim.json.encode(result))
file:close()
