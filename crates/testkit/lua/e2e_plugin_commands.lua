-- The Neovim plugin (editors/neovim) end to end: every command and keymap it defines, in a real
-- headless Neovim against a real baton. `require('baton').setup({ keymaps = true })`, then:
--   1. `:2,4BatonEdit <instruction>` rewrites lines 2-4 (job ends "done");
--   2. `:BatonStatus` while a slow job streams lists that job;
--   3. `:BatonCancel` cancels it (job ends "cancelled");
--   4. `<leader>ae` in normal mode prompts (vim.ui.input) and edits the scope at the cursor;
--   5. `<leader>ae` on a visual selection prompts and edits the selection;
--   6. `<leader>ac` cancels the running job;
--   7. `:'<,'>BatonTask <instruction>` from a visual selection starts an agent task (the scripted
--      ACP agent rewrites the file); its change lands in the buffer and its document opens in a
--      split (the plugin's showDocument handler), leaving the file's window in place;
--   8. `:BatonTask slow task` from a scratch buffer (no file: the instruction goes alone) and
--      `:BatonCancel` while the agent works (the task's turn ends "cancelled");
--   9. the showDocument wrapper's other placements ('vsplit', 'tab', 'current', and 'split'
--      with takeFocus false), around a stand-in for Neovim's own handler.
--
-- Input (environment): BATON_RESULT_FILE, BATON_BIN, BATON_PLUGIN_DIR (editors/neovim),
-- BATON_FILE, BATON_ROOT, BATON_INIT_OPTIONS (JSON), BATON_JOB_TIMEOUT_MS.
-- Output: JSON { attached, steps = { name -> { end_message, text } }, notifications, prompts,
-- task_windows (buffer names of the windows after step 7), task_current (the current window's
-- buffer then), placements (step 9: name -> { tabs, windows_in_tab, current, document_shown,
-- default_called }), errors }. `text` is always the file's buffer, whatever the current window
-- shows. Every wait has a timeout; a failed step is recorded in `errors`.

local result_file = assert(os.getenv("BATON_RESULT_FILE"), "BATON_RESULT_FILE is not set")
local job_timeout = tonumber(os.getenv("BATON_JOB_TIMEOUT_MS") or "") or 30000

local result = { attached = false, steps = {}, notifications = {}, prompts = {}, errors = {} }

local function record_error(message)
  table.insert(result.errors, message)
end

vim.notify = function(message, level)
  table.insert(result.notifications, { message = tostring(message), level = level })
end

-- The keymap prompts with vim.ui.input: answer like a user typing the next queued instruction.
local answers = {}
vim.ui.input = function(opts, on_confirm)
  table.insert(result.prompts, opts and opts.prompt or "")
  on_confirm(table.remove(answers, 1))
end

-- Progress ends by token, in arrival order.
local ended = {}
local begun = {}
vim.api.nvim_create_autocmd("LspProgress", {
  callback = function(event)
    local params = event.data and event.data.params or {}
    local value = type(params.value) == "table" and params.value or {}
    -- Only jobs: the index reports its own progress.
    if value.kind == "begin" and tostring(params.token):find("^baton/job/") then
      table.insert(begun, tostring(params.token))
    elseif value.kind == "end" then
      ended[tostring(params.token)] = value.message or ""
    end
  end,
})

vim.g.mapleader = " "
vim.opt.runtimepath:append(assert(os.getenv("BATON_PLUGIN_DIR")))
local init_options = vim.json.decode(os.getenv("BATON_INIT_OPTIONS") or "{}")
require("baton").setup({
  server = {
    cmd = { assert(os.getenv("BATON_BIN")), "lsp" },
    root_dir = os.getenv("BATON_ROOT"),
    init_options = init_options,
  },
  keymaps = true,
})

-- The buffer of BATON_FILE (set in main).
local file_bufnr = 0

local function buffer_text()
  local lines = vim.api.nvim_buf_get_lines(file_bufnr, 0, -1, false)
  local text = table.concat(lines, "\n")
  if vim.bo[file_bufnr].eol then
    text = text .. "\n"
  end
  return text
end

--- Runs `action`, waits for the next job it starts to end; records the step.
local function job_step(name, action, while_running)
  local count = #begun
  local ok, err = pcall(action)
  if not ok then
    record_error(name .. ": " .. tostring(err))
    return
  end
  if not vim.wait(job_timeout, function() return #begun > count end, 20) then
    record_error(name .. ": no job began")
    return
  end
  local token = begun[count + 1]
  if while_running then
    local ok_running, err_running = pcall(while_running, token)
    if not ok_running then
      record_error(name .. ": " .. tostring(err_running))
    end
  end
  if not vim.wait(job_timeout, function() return ended[token] ~= nil end, 20) then
    record_error(name .. ": job " .. token .. " did not end")
    return
  end
  -- Let the last didChange settle.
  vim.wait(200)
  result.steps[name] = { token = token, end_message = ended[token], text = buffer_text() }
end

local function main()
  vim.cmd.edit(assert(os.getenv("BATON_FILE")))
  file_bufnr = vim.api.nvim_get_current_buf()
  if not vim.wait(10000, function()
    return #vim.lsp.get_clients({ bufnr = 0, name = "baton" }) > 0
  end, 20) then
    record_error("baton never attached")
    return
  end
  result.attached = true

  job_step("command_range", function()
    vim.cmd("2,4BatonEdit make it return two")
  end)

  job_step("command_cancel", function()
    vim.cmd("2,4BatonEdit slow one")
  end, function()
    vim.wait(300)
    vim.cmd("BatonStatus")
    vim.wait(300)
    vim.cmd("BatonCancel")
  end)

  table.insert(answers, "via the normal keymap")
  job_step("keymap_normal", function()
    vim.api.nvim_win_set_cursor(0, { 3, 4 })
    vim.api.nvim_feedkeys(vim.keycode("<leader>ae"), "x", false)
  end)

  table.insert(answers, "via the visual keymap")
  job_step("keymap_visual_cancel", function()
    vim.api.nvim_win_set_cursor(0, { 2, 0 })
    vim.api.nvim_feedkeys(vim.keycode("Vj<leader>ae"), "x", false)
  end, function()
    vim.wait(300)
    vim.api.nvim_feedkeys(vim.keycode("<leader>ac"), "x", false)
  end)

  -- Last, because the task document takes the focus. `:` in visual mode starts the command
  -- line with '<,'>, as a user would type it.
  job_step("task_visual", function()
    vim.api.nvim_win_set_cursor(0, { 2, 0 })
    vim.api.nvim_feedkeys(vim.keycode("Vj:BatonTask rename one to uno<CR>"), "x", false)
  end)
  result.task_windows = {}
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    table.insert(result.task_windows, vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(win)))
  end
  result.task_current = vim.api.nvim_buf_get_name(0)

  -- A scratch buffer has no file to tell the agent about: the prompt is the instruction alone,
  -- which the scripted agent answers by sleeping until it is cancelled.
  job_step("task_cancel", function()
    vim.cmd.enew()
    vim.cmd("BatonTask slow task")
  end, function()
    vim.wait(300)
    vim.cmd("BatonCancel")
  end)

  -- The wrapper opens the window; Neovim's handler (here a stand-in that only records the call)
  -- would then focus it when takeFocus asks. Each case starts from the file alone on screen.
  result.placements = {}
  local document = vim.fn.fnamemodify(assert(os.getenv("BATON_FILE")), ":h") .. "/shown.md"
  local cases = {
    { name = "vsplit", where = "vsplit", focus = true },
    { name = "tab", where = "tab", focus = true },
    { name = "current", where = "current", focus = true },
    { name = "split_no_focus", where = "split", focus = false },
  }
  for _, case in ipairs(cases) do
    vim.api.nvim_set_current_buf(file_bufnr)
    vim.cmd("silent! tabonly | silent! only")
    local default_called = false
    local handler = require("baton")._show_document_handler(function()
      default_called = true
      return { success = true }
    end, case.where)
    handler(nil, { uri = vim.uri_from_fname(document), takeFocus = case.focus }, {}, {})
    result.placements[case.name] = {
      tabs = #vim.api.nvim_list_tabpages(),
      windows_in_tab = #vim.api.nvim_tabpage_list_wins(0),
      current = vim.api.nvim_buf_get_name(0),
      document_shown = #vim.fn.win_findbuf(vim.fn.bufnr(document)) > 0,
      default_called = default_called,
    }
  end
end

local ok, err = pcall(main)
if not ok then
  record_error("script: " .. tostring(err))
end

for _, client in ipairs(vim.lsp.get_clients()) do
  client:stop()
end
vim.wait(3000, function()
  return #vim.lsp.get_clients() == 0
end, 20)

local output = assert(io.open(result_file, "w"))
output:write(vim.json.encode(result))
output:close()
