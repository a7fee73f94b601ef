-- The Neovim plugin's inline completion as it runs on Neovim 0.12, in the real headless Neovim
-- 0.11 with `vim.lsp.inline_completion` imitated (nvim012_inline_completion.lua, next to this
-- script), against a real baton and the fake model:
--   1. `setup({})` (inline_completion and its keys on by default): on attach the plugin enables
--      inline completion for baton in the buffer and maps <M-l>, <M-]> and <M-[> there, and
--      `:checkhealth baton` says so;
--   2. the user types `let n = ` in Insert mode; 200 ms after the last key the imitation asks
--      baton (textDocument/inlineCompletion, triggerKind 2) and shows the suggestion;
--   3. <M-]> and <M-[> cycle through the suggestions (one here: it shows `(1/1)`);
--   4. <M-l> accepts it: the buffer has the suggestion and the cursor is after it; <Esc>;
--   5. `setup({ server = false, inline_completion = false })`: a file opened then gets neither
--      inline completion nor the keys.
--
-- Run with `run_lua_session` (sourced with -S): Neovim is in its main loop and keys go through
-- `nvim_input`, so Insert mode, its autocommands and <expr> mappings behave as for a user.
--
-- Input (environment): BATON_RESULT_FILE, BATON_BIN, BATON_PLUGIN_DIR, BATON_FILE,
-- BATON_OTHER_FILE, BATON_ROOT, BATON_INIT_OPTIONS (JSON), BATON_TYPED.
-- Output: JSON, see `result` below. Every wait has a timeout; a failure is recorded in `errors`.

local result_file = assert(os.getenv("BATON_RESULT_FILE"), "BATON_RESULT_FILE is not set")
local typed = assert(os.getenv("BATON_TYPED"))

local result = {
  attached = false,
  errors = {},
  notifications = {},
  enabled = vim.NIL,
  insert_maps = {},
  health = vim.NIL,
  requests = {},
  shown = vim.NIL,
  shown_after_next = vim.NIL,
  shown_after_previous = vim.NIL,
  accepted_line = vim.NIL,
  cursor_after_accept = vim.NIL,
  mode_after_accept = vim.NIL,
  other_enabled = vim.NIL,
  other_insert_maps = {},
}

local function record_error(message)
  table.insert(result.errors, message)
end

vim.notify = function(message, level)
  table.insert(result.notifications, { message = tostring(message), level = level })
end

local script_dir = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":h")
local imitation = dofile(script_dir .. "/nvim012_inline_completion.lua")
vim.lsp.inline_completion = imitation
local namespace = vim.api.nvim_create_namespace("nvim.lsp.inline_completion")

--- Waits in the main loop (the coroutine yields; a timer resumes it) until `condition` holds or
--- `ms` pass; returns whether it holds.
local function wait(ms, condition)
  local co = assert(coroutine.running(), "wait() runs in the test's coroutine")
  local deadline = vim.uv.now() + ms
  local timer = assert(vim.uv.new_timer())
  timer:start(0, 20, vim.schedule_wrap(function()
    if timer:is_closing() then
      return
    end
    if (condition == nil or condition()) or vim.uv.now() >= deadline then
      timer:stop()
      timer:close()
      local ok, err = coroutine.resume(co)
      if not ok then
        record_error("script: " .. tostring(err))
      end
    end
  end))
  coroutine.yield()
  return condition == nil or condition()
end

--- The virtual text shown by inline completion in `bufnr`, joined, or nil.
local function shown_text(bufnr)
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, namespace, 0, -1, { details = true })
  if #marks == 0 then
    return nil
  end
  local parts = {}
  for _, chunk in ipairs(marks[1][4].virt_text or {}) do
    parts[#parts + 1] = chunk[1]
  end
  return table.concat(parts)
end

local function insert_maps(bufnr)
  local maps = {}
  for _, key in ipairs({ "<M-l>", "<M-]>", "<M-[>" }) do
    local map = vim.api.nvim_buf_call(bufnr, function()
      return vim.fn.maparg(key, "i", false, true)
    end)
    maps[key] = map.buffer == 1 and map.desc or ""
  end
  return maps
end

vim.o.showmode = false
vim.opt.runtimepath:append(assert(os.getenv("BATON_PLUGIN_DIR")))
require("baton").setup({
  server = {
    cmd = { assert(os.getenv("BATON_BIN")), "lsp" },
    root_dir = os.getenv("BATON_ROOT"),
    init_options = vim.json.decode(os.getenv("BATON_INIT_OPTIONS") or "{}"),
  },
})

local function main()
  vim.cmd.edit(assert(os.getenv("BATON_FILE")))
  local bufnr = vim.api.nvim_get_current_buf()
  vim.bo[bufnr].autoindent = false
  vim.bo[bufnr].indentexpr = ""
  if not wait(10000, function()
    return #vim.lsp.get_clients({ bufnr = bufnr, name = "baton" }) > 0
  end) then
    record_error("baton never attached")
    return
  end
  result.attached = true
  -- LspAttach callbacks run right after the client attached.
  wait(200)
  result.enabled = imitation.is_enabled({ bufnr = bufnr })
  result.insert_maps = insert_maps(bufnr)
  vim.cmd("checkhealth baton")
  result.health = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  vim.cmd("tabclose")
  vim.api.nvim_set_current_buf(bufnr)

  -- 2. Type on line 2, after its indentation, one key every 20 ms, then pause.
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  vim.api.nvim_input("A")
  for char in typed:gmatch(".") do
    vim.api.nvim_input(char == "<" and "<lt>" or char)
    wait(20)
  end
  if not wait(10000, function() return shown_text(bufnr) ~= nil end) then
    record_error("no suggestion was shown")
    return
  end
  result.shown = shown_text(bufnr)

  -- 3. Next and previous.
  vim.api.nvim_input("<M-]>")
  wait(2000, function() return (shown_text(bufnr) or ""):find("(1/1)", 1, true) ~= nil end)
  result.shown_after_next = shown_text(bufnr) or vim.NIL
  vim.api.nvim_input("<M-[>")
  wait(300)
  result.shown_after_previous = shown_text(bufnr) or vim.NIL

  -- 4. Accept.
  local before = vim.api.nvim_buf_get_lines(bufnr, 1, 2, false)[1]
  vim.api.nvim_input("<M-l>")
  if not wait(5000, function()
    return vim.api.nvim_buf_get_lines(bufnr, 1, 2, false)[1] ~= before
  end) then
    record_error("<M-l> accepted nothing")
  end
  result.accepted_line = vim.api.nvim_buf_get_lines(bufnr, 1, 2, false)[1]
  result.cursor_after_accept = vim.api.nvim_win_get_cursor(0)
  result.mode_after_accept = vim.api.nvim_get_mode().mode
  result.shown_after_accept = shown_text(bufnr) or vim.NIL
  vim.api.nvim_input("<Esc>")
  wait(300)
  result.requests = imitation._requests

  -- 5. Off: a buffer attached after this setup gets nothing.
  require("baton").setup({ server = false, inline_completion = false })
  vim.cmd.edit(assert(os.getenv("BATON_OTHER_FILE")))
  local other = vim.api.nvim_get_current_buf()
  if not wait(10000, function()
    return #vim.lsp.get_clients({ bufnr = other, name = "baton" }) > 0
  end) then
    record_error("baton never attached to the other file")
    return
  end
  wait(200)
  result.other_enabled = imitation.is_enabled({ bufnr = other })
  result.other_insert_maps = insert_maps(other)
  result.clients = #vim.lsp.get_clients({ name = "baton" })
end

local function finish()
  for _, client in ipairs(vim.lsp.get_clients()) do
    client:stop()
  end
  wait(5000, function()
    return #vim.lsp.get_clients() == 0
  end)
  local output = assert(io.open(result_file, "w"))
  output:write(vim.json.encode(result))
  output:close()
  vim.cmd("qall!")
end

vim.schedule(function()
  coroutine.wrap(function()
    local ok, err = pcall(main)
    if not ok then
      record_error("script: " .. tostring(err))
    end
    finish()
  end)()
end)
