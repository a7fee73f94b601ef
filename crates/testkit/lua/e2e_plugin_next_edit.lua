-- The Neovim plugin's next edits and its inline-completion option in a real headless Neovim
-- 0.11 against a real baton (features.next_edit on, the fake model scripted):
--   1. `require('baton').setup({ keymaps = true, inline_completion = true })` raises nothing
--      and says nothing; this Neovim has no vim.lsp.inline_completion, so no Insert-mode key is
--      mapped, and `:checkhealth baton` says inline completion needs Neovim 0.12;
--   2. the user renames the parameter `w` to `width` (`ciw`); baton's two Hint diagnostics
--      appear in vim.diagnostic; `gra` (Neovim's default vim.lsp.buf.code_action key) lists the
--      quick fixes, and "apply all" applies both;
--   3. the user renames `h` to `height`; two more hints; `<leader>an` (the plugin's next-edit
--      key) on the last line applies that line's proposal only, then on a line without a hint
--      says so, then on the other hint's line applies it.
--
-- Input (environment): BATON_RESULT_FILE, BATON_BIN, BATON_PLUGIN_DIR, BATON_FILE, BATON_ROOT,
-- BATON_INIT_OPTIONS (JSON).
-- Output: JSON { setup_ok, setup_error, setup_notifications, inline_module, insert_maps,
-- next_edit_map, health, attached, steps = { name -> { hints, text } }, gra_titles,
-- notifications, errors }. `hints` are the baton hints as "line:col" (0-based) before the step's
-- action. Every wait has a timeout; a failed step is recorded in `errors`.

local result_file = assert(os.getenv("BATON_RESULT_FILE"), "BATON_RESULT_FILE is not set")

local result = { attached = false, steps = {}, notifications = {}, gra_titles = {}, errors = {} }

local function record_error(message)
  table.insert(result.errors, message)
end

vim.notify = function(message, level)
  table.insert(result.notifications, { message = tostring(message), level = level })
end

-- `gra` shows the code actions with vim.ui.select: the user picks the one titled `choose`.
local choose = nil
vim.ui.select = function(items, opts, on_choice)
  for index, item in ipairs(items) do
    local title = opts.format_item and opts.format_item(item) or tostring(item)
    table.insert(result.gra_titles, title)
    if choose and title:find(choose, 1, true) then
      on_choice(item, index)
      return
    end
  end
  on_choice(nil, nil)
end

vim.g.mapleader = " "
vim.opt.runtimepath:append(assert(os.getenv("BATON_PLUGIN_DIR")))
local before_setup = #result.notifications
local setup_ok, setup_error = pcall(require("baton").setup, {
  server = {
    cmd = { assert(os.getenv("BATON_BIN")), "lsp" },
    root_dir = os.getenv("BATON_ROOT"),
    init_options = vim.json.decode(os.getenv("BATON_INIT_OPTIONS") or "{}"),
  },
  keymaps = true,
  inline_completion = true,
})
result.setup_ok = setup_ok
result.setup_error = setup_ok and vim.NIL or tostring(setup_error)
result.setup_notifications = #result.notifications - before_setup
result.inline_module = vim.lsp.inline_completion ~= nil

local file_bufnr = 0

local function buffer_text()
  local text = table.concat(vim.api.nvim_buf_get_lines(file_bufnr, 0, -1, false), "\n")
  if vim.bo[file_bufnr].eol then
    text = text .. "\n"
  end
  return text
end

--- baton's hints in the file, as "line:col", in order.
local function hints()
  local found = {}
  for _, diagnostic in ipairs(vim.diagnostic.get(file_bufnr)) do
    if diagnostic.source == "baton" and diagnostic.severity == vim.diagnostic.severity.HINT then
      table.insert(found, ("%d:%d"):format(diagnostic.lnum, diagnostic.col))
    end
  end
  table.sort(found)
  return found
end

--- Waits for `count` hints; records an error when they do not come.
local function wait_for_hints(name, count)
  if not vim.wait(20000, function() return #hints() == count end, 20) then
    record_error(("%s: expected %d hints, have %s"):format(name, count, vim.inspect(hints())))
    return false
  end
  return true
end

--- Puts the cursor on (row 1-based, col 0-based), types `keys`, and waits until the buffer
--- differs from before (or `settle` ms pass when nothing is expected to change).
local function step(name, row, col, keys, expect_change)
  local before = buffer_text()
  local shown = hints()
  vim.api.nvim_win_set_cursor(0, { row, col })
  vim.api.nvim_feedkeys(vim.keycode(keys), "x", false)
  if expect_change then
    if not vim.wait(10000, function() return buffer_text() ~= before end, 20) then
      record_error(name .. ": the buffer did not change")
    end
  else
    vim.wait(500)
  end
  result.steps[name] = { hints = shown, text = buffer_text() }
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
  -- LspAttach has run by now: on 0.11 nothing was mapped for inline completion.
  result.insert_maps = {}
  for _, key in ipairs({ "<M-l>", "<M-]>", "<M-[>" }) do
    result.insert_maps[key] = vim.fn.maparg(key, "i")
  end
  result.next_edit_map = vim.fn.maparg("<leader>an", "n", false, true).desc or vim.NIL

  vim.cmd("checkhealth baton")
  result.health = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  vim.cmd("tabclose")
  vim.api.nvim_set_current_buf(file_bufnr)

  -- 2. Rename `w` (line 1, column 8); both of its other uses are proposed.
  step("rename_w", 1, 8, "ciwwidth<Esc>", true)
  if not wait_for_hints("rename_w", 2) then
    return
  end
  choose = "apply all"
  step("gra_apply_all", 2, 17, "gra", true)
  choose = nil
  wait_for_hints("after apply all", 0)

  -- 3. Rename `h` (line 1, column 20); `<leader>an` takes the proposals one line at a time.
  step("rename_h", 1, 20, "ciwheight<Esc>", true)
  if not wait_for_hints("rename_h", 2) then
    return
  end
  step("next_edit_last_line", 4, 0, "<leader>an", true)
  wait_for_hints("after the last line's", 1)
  step("next_edit_no_hint", 1, 0, "<leader>an", false)
  step("next_edit_other_line", 3, 0, "<leader>an", true)
  wait_for_hints("after both", 0)
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
