-- The Neovim plugin's plan mode, end to end in a real headless Neovim against a real baton (the
-- fake model as the deep tier, testkit's scripted ACP agent as the default agent), with the
-- default document keymaps:
--   1. `:'<,'>BatonPlan <instruction>` from a visual selection: the plan streams into a split
--      (the buffer is sampled while the job runs);
--   2. the test adds a note under step 2, then `<leader>ar` refines the plan: the same buffer, in
--      the same window, gets the revised plan with the note kept;
--   3. the test adds a note under step 3, and `:BatonPlanRefine` refines it again;
--   4. `<leader>as` with the cursor on step 2's note executes step 2: an agent task whose title
--      names step 2 starts, its document opens, and baton ticks step 2 when the turn ends;
--   5. `:BatonPlanStep` on step 1's line does the same for step 1;
--   6. `:BatonPlanExecute scripted` executes the rest of the plan (steps 3 and 4, ticked);
--   7. the test unticks step 4, and `<leader>ax` executes the plan again (just step 4).
--
-- Input (environment): BATON_RESULT_FILE, BATON_BIN, BATON_PLUGIN_DIR, BATON_FILE,
-- BATON_INIT_OPTIONS (JSON), BATON_JOB_TIMEOUT_MS.
-- Output: JSON { attached, steps = { name -> { end_message } }, plan = { name, windows,
-- snapshots (distinct texts seen while it streamed), text }, keymaps (plan buffer: lhs ->
-- desc), refined, refined_same_buffer, refined_again, executions = { name -> { task_title,
-- plan_text } }, tasks (baton.tasks at the end), notifications, errors }.

local result_file = assert(os.getenv("BATON_RESULT_FILE"), "BATON_RESULT_FILE is not set")
local job_timeout = tonumber(os.getenv("BATON_JOB_TIMEOUT_MS") or "") or 30000

local result = { attached = false, steps = {}, executions = {}, notifications = {}, errors = {} }

vim.notify = function(message, level)
  table.insert(result.notifications, { message = tostring(message), level = level })
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

local function text_of(bufnr)
  local text = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
  if vim.bo[bufnr].eol then
    text = text .. "\n"
  end
  return text
end

local function wait_for(what, check)
  if not vim.wait(job_timeout, check, 20) then
    error("timed out waiting for " .. what)
  end
end

local function window_of(pattern)
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(win)):match(pattern) then
      return win
    end
  end
  return nil
end

--- Runs `action`, waits for the next job it starts to end (calling `sample` meanwhile).
local function job_step(name, action, sample)
  local count = #begun
  action()
  wait_for(name .. ": a job to begin", function() return #begun > count end)
  local token = begun[count + 1]
  wait_for(name .. ": job " .. token .. " to end", function()
    if sample then
      sample()
    end
    return ended[token] ~= nil
  end)
  vim.wait(200)
  result.steps[name] = { token = token, end_message = ended[token] }
end

local function press(keys)
  vim.api.nvim_feedkeys(vim.keycode(keys), "x", false)
end

--- The 1-based row of the first line of `bufnr` matching `pattern`.
local function row_of(bufnr, pattern)
  for row, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    if line:match(pattern) then
      return row
    end
  end
  error("no line matches " .. pattern .. " in\n" .. text_of(bufnr))
end

local function ticked(bufnr, step)
  return text_of(bufnr):match("\n%- %[x%] " .. step .. "%.") ~= nil
end

local plan_window, plan_bufnr

--- Runs `action` in the plan's window; waits for the agent task it starts to end and for
--- baton to tick `steps`; records the task document's title and closes its window.
local function execute(name, action, steps)
  vim.api.nvim_set_current_win(plan_window)
  job_step(name, action)
  wait_for(name .. ": its task document", function() return window_of("/tasks/task%-.*%.md$") ~= nil end)
  local window = window_of("/tasks/task%-.*%.md$")
  local task_bufnr = vim.api.nvim_win_get_buf(window)
  for _, step in ipairs(steps) do
    wait_for(name .. ": step " .. step .. " to be ticked", function() return ticked(plan_bufnr, step) end)
  end
  result.executions[name] = {
    task_title = vim.api.nvim_buf_get_lines(task_bufnr, 0, 1, false)[1],
    plan_text = text_of(plan_bufnr),
  }
  vim.api.nvim_win_close(window, true)
end

local function main()
  vim.cmd.edit(assert(os.getenv("BATON_FILE")))
  wait_for("baton to attach", function()
    return #vim.lsp.get_clients({ bufnr = 0, name = "baton" }) > 0
  end)
  result.attached = true

  -- 1. The plan streams into a split.
  local snapshots, seen = {}, {}
  job_step("plan", function()
    vim.api.nvim_win_set_cursor(0, { 2, 0 })
    press("Vj:BatonPlan rename one to uno<CR>")
  end, function()
    local window = window_of("/plans/[^/]*%.md$")
    if window then
      local text = text_of(vim.api.nvim_win_get_buf(window))
      if not seen[text] then
        seen[text] = true
        table.insert(snapshots, text)
      end
    end
  end)
  plan_window = window_of("/plans/[^/]*%.md$")
  assert(plan_window, "the plan was not shown")
  plan_bufnr = vim.api.nvim_win_get_buf(plan_window)
  result.plan = {
    name = vim.api.nvim_buf_get_name(plan_bufnr),
    windows = #vim.api.nvim_tabpage_list_wins(0),
    current = vim.api.nvim_get_current_win() == plan_window,
    snapshots = snapshots,
    text = text_of(plan_bufnr),
  }
  result.keymaps = {}
  for _, map in ipairs(vim.api.nvim_buf_get_keymap(plan_bufnr, "n")) do
    result.keymaps[map.lhs:gsub("^ ", "<leader>")] = map.desc
  end

  -- 2. A note under step 2, then the refine key.
  vim.api.nvim_set_current_win(plan_window)
  local step_two = row_of(plan_bufnr, "^%- %[ %] 2%.")
  vim.api.nvim_buf_set_lines(plan_bufnr, step_two, step_two, false, { "  > note: keep the old name as an alias" })
  job_step("refine_key", function() press("<leader>ar") end)
  result.refined = text_of(plan_bufnr)
  result.refined_same_buffer = vim.api.nvim_win_get_buf(plan_window) == plan_bufnr

  -- 3. Another note (baton refuses to refine a plan nobody changed), the refine command.
  local step_three = row_of(plan_bufnr, "^%- %[ %] 3%.")
  vim.api.nvim_buf_set_lines(plan_bufnr, step_three, step_three, false, { "  > note: the unit tests are enough" })
  job_step("refine_command", function() vim.cmd("BatonPlanRefine") end)
  result.refined_again = text_of(plan_bufnr)

  -- 4. Step 2, from its note.
  execute("step_key", function()
    vim.api.nvim_win_set_cursor(plan_window, { row_of(plan_bufnr, "keep the old name as an alias"), 4 })
    press("<leader>as")
  end, { 2 })

  -- 5. Step 1, from its line.
  execute("step_command", function()
    vim.api.nvim_win_set_cursor(plan_window, { row_of(plan_bufnr, "^%- %[.%] 1%."), 0 })
    vim.cmd("BatonPlanStep")
  end, { 1 })

  -- 6. The rest of the plan, with the agent named.
  execute("execute_command", function() vim.cmd("BatonPlanExecute scripted") end, { 3, 4 })

  -- 7. Step 4 unticked by hand, then the whole plan again from the key.
  local step_four = row_of(plan_bufnr, "^%- %[x%] 4%.")
  local line = vim.api.nvim_buf_get_lines(plan_bufnr, step_four - 1, step_four, false)[1]
  vim.api.nvim_buf_set_lines(plan_bufnr, step_four - 1, step_four, false, { (line:gsub("%[x%]", "[ ]", 1)) })
  execute("execute_key", function() press("<leader>ax") end, { 4 })

  local client = vim.lsp.get_clients({ name = "baton" })[1]
  local response = client:request_sync("workspace/executeCommand", { command = "baton.tasks", arguments = {} }, 10000)
  result.tasks = response and response.result
  result.clients = #vim.lsp.get_clients({ name = "baton" })
end

local ok, err = pcall(main)
if not ok then
  table.insert(result.errors, "script: " .. tostring(err))
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
