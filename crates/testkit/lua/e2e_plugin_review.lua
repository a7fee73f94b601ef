-- The Neovim plugin's task list and review keymaps, end to end in a real headless Neovim against
-- a real baton and testkit's scripted ACP agent. `require('baton').setup({ server = … })` with no
-- root_dir (the workspace is found by its baton.toml) and the default document keymaps, then:
--   1. `:'<,'>BatonEdit <instruction>` on a characterwise visual selection (one word) rewrites
--      just that word;
--   2. `:BatonTask change two files`: the agent changes src/lib.rs (open) and notes.md (not
--      open); its document opens in a split;
--   3. with the document's window closed, `:BatonTasks` lists the task (vim.ui.select, answered
--      with the first item) and opens its document again, in a split;
--   4. in that document: `<leader>au` on the src/lib.rs line undoes the task's change to it (the
--      buffer gets its text back), `<leader>ad` opens the task's diff, `<leader>ak` keeps the
--      rest (notes.md);
--   5. `:BatonTask add a line` (notes.md again), then in its document `<leader>ar` (the reply
--      prompt, answered "go on") runs a second turn, and `<leader>aU` undoes all of the task's
--      changes (notes.md back to what the first task left).
-- Throughout, one baton serves everything: the task documents, outside the workspace, are
-- attached to the same client (the plugin's root_dir), not to a second baton.
--
-- Input (environment): BATON_RESULT_FILE, BATON_BIN, BATON_PLUGIN_DIR, BATON_FILE, BATON_NOTES
-- (notes.md's path), BATON_NOTES_KEPT (its text after the first task), BATON_INIT_OPTIONS (JSON), BATON_JOB_TIMEOUT_MS.
-- Output: JSON { attached, steps = { name -> { end_message, text } }, tasks_items (the
-- select's items), tasks_prompt, reopened = { name, windows }, undo_file_text, diff = { name,
-- text }, kept_document, reply = { end_message, notes }, undo_all_notes, clients (baton clients
-- at the end), documents_attached (whether each task document is attached to that client),
-- keymaps (buffer-local lhs -> desc in the first task document), notifications, errors }.

local result_file = assert(os.getenv("BATON_RESULT_FILE"), "BATON_RESULT_FILE is not set")
local job_timeout = tonumber(os.getenv("BATON_JOB_TIMEOUT_MS") or "") or 30000

local result = { attached = false, steps = {}, notifications = {}, errors = {} }

local function record_error(message)
  table.insert(result.errors, message)
end

vim.notify = function(message, level)
  table.insert(result.notifications, { message = tostring(message), level = level })
end

local answers = {}
vim.ui.input = function(opts, on_confirm)
  result.input_prompt = opts and opts.prompt or ""
  on_confirm(table.remove(answers, 1))
end

vim.ui.select = function(items, opts, on_choice)
  result.tasks_items = {}
  for _, item in ipairs(items) do
    table.insert(result.tasks_items, opts.format_item and opts.format_item(item) or tostring(item))
  end
  result.tasks_prompt = opts.prompt
  on_choice(items[1], 1)
end

local ended = {}
local begun = {}
vim.api.nvim_create_autocmd("LspProgress", {
  callback = function(event)
    local params = event.data and event.data.params or {}
    local value = type(params.value) == "table" and params.value or {}
    if value.kind == "begin" and tostring(params.token):find("^baton/job/") then
      table.insert(begun, tostring(params.token))
    elseif value.kind == "end" then
      ended[tostring(params.token)] = value.message or ""
    end
  end,
})

vim.g.mapleader = " "
vim.opt.runtimepath:append(assert(os.getenv("BATON_PLUGIN_DIR")))
require("baton").setup({
  server = {
    cmd = { assert(os.getenv("BATON_BIN")), "lsp" },
    init_options = vim.json.decode(os.getenv("BATON_INIT_OPTIONS") or "{}"),
  },
})

local file_bufnr = 0

local function text_of(bufnr)
  local text = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
  if vim.bo[bufnr].eol then
    text = text .. "\n"
  end
  return text
end

local function notes_text()
  local bufnr = vim.fn.bufnr(assert(os.getenv("BATON_NOTES")))
  if bufnr == -1 or not vim.api.nvim_buf_is_loaded(bufnr) then
    return nil
  end
  return text_of(bufnr)
end

local function wait_for(what, check)
  if not vim.wait(job_timeout, check, 20) then
    error("timed out waiting for " .. what)
  end
end

--- Runs `action`, waits for the next job it starts to end; returns its token and end message.
local function job_step(name, action)
  local count = #begun
  action()
  wait_for(name .. ": a job to begin", function() return #begun > count end)
  local token = begun[count + 1]
  wait_for(name .. ": job " .. token .. " to end", function() return ended[token] ~= nil end)
  vim.wait(200)
  result.steps[name] = { token = token, end_message = ended[token], text = text_of(file_bufnr) }
  return token
end

--- The window showing a buffer whose name matches `pattern`, if any.
local function window_of(pattern)
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(win)):match(pattern) then
      return win
    end
  end
  return nil
end

local function press(keys)
  vim.api.nvim_feedkeys(vim.keycode(keys), "x", false)
end

local function cursor_on(pattern)
  for row, line in ipairs(vim.api.nvim_buf_get_lines(0, 0, -1, false)) do
    if line:match(pattern) then
      vim.api.nvim_win_set_cursor(0, { row, 0 })
      return
    end
  end
  error("no line matches " .. pattern .. " in\n" .. text_of(0))
end

local function main()
  vim.cmd.edit(assert(os.getenv("BATON_FILE")))
  file_bufnr = vim.api.nvim_get_current_buf()
  wait_for("baton to attach", function()
    return #vim.lsp.get_clients({ bufnr = 0, name = "baton" }) > 0
  end)
  result.attached = true
  local file_window = vim.api.nvim_get_current_win()

  -- 1. A characterwise selection of `one` on line 2.
  job_step("edit_charwise", function()
    vim.api.nvim_win_set_cursor(0, { 2, 3 })
    press("viw:BatonEdit spell it in Spanish<CR>")
  end)

  -- 2. The first task.
  job_step("task_one", function()
    vim.cmd("BatonTask change two files")
  end)
  wait_for("the first task's document", function() return window_of("/tasks/task%-.*%.md$") ~= nil end)
  local first_document = vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(window_of("/tasks/task%-.*%.md$")))

  -- 3. :BatonTasks opens it again.
  vim.api.nvim_set_current_win(file_window)
  vim.cmd("only")
  vim.cmd("BatonTasks")
  wait_for(":BatonTasks to open the document", function()
    return vim.api.nvim_buf_get_name(0) == first_document
  end)
  result.reopened = { name = vim.api.nvim_buf_get_name(0), windows = #vim.api.nvim_tabpage_list_wins(0) }
  local document_window = vim.api.nvim_get_current_win()
  result.keymaps = {}
  for _, map in ipairs(vim.api.nvim_buf_get_keymap(0, "n")) do
    result.keymaps[map.lhs:gsub("^ ", "<leader>")] = map.desc
  end

  -- 4. Review: undo the file on the cursor's line, the diff, keep the rest.
  wait_for("the files in the document", function()
    return text_of(0):find("`notes.md`", 1, true) ~= nil
  end)
  cursor_on("^%- `src/lib%.rs`")
  local before_task = result.steps.edit_charwise.text
  press("<leader>au")
  wait_for("src/lib.rs to be undone", function() return text_of(file_bufnr) == before_task end)
  result.undo_file_text = text_of(file_bufnr)

  press("<leader>ad")
  wait_for("the diff", function() return window_of("%.diff$") ~= nil end)
  local diff_window = window_of("%.diff$")
  local diff_bufnr = vim.api.nvim_win_get_buf(diff_window)
  result.diff = { name = vim.api.nvim_buf_get_name(diff_bufnr), text = text_of(diff_bufnr), current = vim.api.nvim_get_current_win() == diff_window }

  vim.api.nvim_set_current_win(document_window)
  press("<leader>ak")
  wait_for("notes.md to be kept", function()
    return text_of(0):match("`notes%.md`[^\n]*kept") ~= nil
  end)
  result.kept_document = text_of(0)

  -- 5. A second task, a reply, and undo all.
  vim.api.nvim_set_current_win(file_window)
  vim.cmd("only")
  job_step("task_two", function()
    vim.cmd("BatonTask add a line")
  end)
  wait_for("the second task's document", function()
    local name = vim.api.nvim_buf_get_name(0)
    return name:match("/tasks/task%-.*%.md$") ~= nil and name ~= first_document
  end)
  table.insert(answers, "go on")
  local reply = job_step("reply", function()
    press("<leader>ar")
  end)
  result.reply = { end_message = ended[reply], notes = notes_text() }
  press("<leader>aU")
  wait_for("notes.md to be undone", function() return notes_text() == os.getenv("BATON_NOTES_KEPT") end)
  result.undo_all_notes = notes_text()

  -- One baton for the workspace and its documents.
  local clients = vim.lsp.get_clients({ name = "baton" })
  result.clients = #clients
  result.documents_attached = {}
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    local name = vim.api.nvim_buf_get_name(bufnr)
    if name:match("/tasks/task%-.*%.md$") then
      table.insert(result.documents_attached, vim.lsp.buf_is_attached(bufnr, clients[1].id))
    end
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
