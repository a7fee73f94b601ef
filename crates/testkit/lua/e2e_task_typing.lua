-- An agent task (`baton.task` through the plugin's `:BatonTask`) landing in a buffer with unsaved
-- changes while the user keeps typing elsewhere in that buffer, in a real headless Neovim against
-- a real baton and a real agent; then undo, one step at a time, until the agent's change is gone.
--
-- Run with `run_lua_session` (sourced with -S): Neovim sits in its main loop in Normal mode as
-- it does for a user, the test's steps run in a coroutine resumed by timers, and the typing goes
-- through `nvim_input`, so undo blocks are the ones a user gets (under `-l` every change made
-- while the script waits would be one undo step).
--
--   1. open BATON_FILE and add a line at the top without saving (the shadow must hold it);
--   2. `:{BATON_RANGE}BatonTask {BATON_INSTRUCTION}`; the task document opens in a split and
--      takes the focus; the user goes back to the file's window;
--   3. the user types until the task's `$/progress` ends and the agent's change is in the buffer,
--      away from the lines the agent changes. BATON_TYPING=lines (default): `{N}Go// typed K<Esc>`
--      (a new line below the previous typed one), the next one 30 ms after the previous one is
--      in the buffer. BATON_TYPING=insert: `1Go// typing ` then an `x` every 30 ms, all in one
--      Insert-mode session, <Esc> at the end;
--   4. `u` (`:undo`) step by step, recording each text, until the agent's change is gone.
--
-- The agent's edits are seen by wrapping the `workspace/applyEdit` handler (under the plugin's
-- undo-joining wrapper): the buffer text before and after each one for BATON_FILE.
--
-- Input (environment): BATON_RESULT_FILE, BATON_BIN, BATON_PLUGIN_DIR, BATON_FILE, BATON_ROOT,
-- BATON_INIT_OPTIONS (JSON), BATON_RANGE ("6,8"), BATON_INSTRUCTION, BATON_UNSAVED_LINE,
-- BATON_AGENT_LINE (a line only the agent's change produces), BATON_TYPING, BATON_JOB_TIMEOUT_MS.
-- Output: JSON, see `result` below. Every wait has a timeout; a failure is recorded in `errors`.

local result_file = assert(os.getenv("BATON_RESULT_FILE"), "BATON_RESULT_FILE is not set")
local job_timeout = tonumber(os.getenv("BATON_JOB_TIMEOUT_MS") or "") or 120000
local file = assert(os.getenv("BATON_FILE"))
local agent_line = assert(os.getenv("BATON_AGENT_LINE"))
-- "lines": each typed line is a Normal-mode `o…<Esc>`; "insert": one Insert-mode session
-- typing a character per tick for the whole task.
local typing_mode = os.getenv("BATON_TYPING") or "lines"

local result = {
  attached = false,
  errors = {},
  notifications = {},
  -- The task's progress: its token, every event's kind and message, the end's message.
  token = vim.NIL,
  progress = {},
  end_message = vim.NIL,
  -- Lines typed, each recorded once it is in the buffer ("insert": the one line typed).
  typed = {},
  -- Every workspace/applyEdit for BATON_FILE: { before, after, typed_so_far (typed lines in the
  -- buffer then), mode (Neovim's mode then), seq_before, seq_after (the undo tree's seq_last
  -- around it) }.
  file_edits = {},
  -- The buffer once the agent's change is in and typing stopped, and the undo steps from there.
  final_text = vim.NIL,
  modified = vim.NIL,
  undo_texts = {},
  undo_steps_to_revert_agent = vim.NIL,
  -- showDocument: the windows' buffer names right after the task started, which one had the
  -- focus, and whether a window showed a task document.
  windows = {},
  focused_after_show = vim.NIL,
  document_shown = false,
}

local function record_error(message)
  table.insert(result.errors, message)
end

vim.notify = function(message, level)
  table.insert(result.notifications, { message = tostring(message), level = level })
end

local function text_of(bufnr)
  local text = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
  if vim.bo[bufnr].eol then
    text = text .. "\n"
  end
  return text
end

local function has_line(bufnr, line)
  return vim.tbl_contains(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), line)
end

local function is_task_document(name)
  return name:find("/tasks/task%-[^/]*%.md$") ~= nil
end

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

-- Set before the plugin's setup, so the plugin's undo-joining wrapper calls this one.
local file_bufnr = nil
local default_apply_edit = vim.lsp.handlers["workspace/applyEdit"]
vim.lsp.handlers["workspace/applyEdit"] = function(err, params, ctx, config)
  local touches_file = false
  if file_bufnr and params and params.edit then
    local uri = vim.uri_from_bufnr(file_bufnr)
    for _, change in ipairs(params.edit.documentChanges or {}) do
      if change.textDocument and change.textDocument.uri == uri then
        touches_file = true
      end
    end
    if params.edit.changes and params.edit.changes[uri] then
      touches_file = true
    end
  end
  if not touches_file then
    return default_apply_edit(err, params, ctx, config)
  end
  local typed_so_far = 0
  for _, line in ipairs(vim.api.nvim_buf_get_lines(file_bufnr, 0, -1, false)) do
    if line:find("^// typed %d+$") then
      typed_so_far = typed_so_far + 1
    end
  end
  local edit = {
    before = text_of(file_bufnr),
    typed_so_far = typed_so_far,
    mode = vim.api.nvim_get_mode().mode,
    seq_before = vim.api.nvim_buf_call(file_bufnr, function() return vim.fn.undotree().seq_last end),
  }
  local response = default_apply_edit(err, params, ctx, config)
  edit.after = text_of(file_bufnr)
  edit.seq_after = vim.api.nvim_buf_call(file_bufnr, function() return vim.fn.undotree().seq_last end)
  table.insert(result.file_edits, edit)
  return response
end

vim.api.nvim_create_autocmd("LspProgress", {
  callback = function(event)
    local params = event.data and event.data.params or {}
    local value = type(params.value) == "table" and params.value or {}
    local token = tostring(params.token)
    -- Only the task's job (the index reports its own progress).
    if value.kind == "begin" and result.token == vim.NIL and token:find("^baton/job/") then
      result.token = token
    end
    if token == result.token then
      table.insert(result.progress, { kind = value.kind, message = value.message or vim.NIL })
      if value.kind == "end" then
        result.end_message = value.message or ""
      end
    end
  end,
})

-- Headless Neovim prints "-- INSERT --" to stderr for every typed line otherwise.
vim.o.showmode = false

vim.opt.runtimepath:append(assert(os.getenv("BATON_PLUGIN_DIR")))
require("baton").setup({
  server = {
    cmd = { assert(os.getenv("BATON_BIN")), "lsp" },
    root_dir = os.getenv("BATON_ROOT"),
    init_options = vim.json.decode(os.getenv("BATON_INIT_OPTIONS") or "{}"),
  },
})

--- The window showing the file, made current (as a user clicking back into it).
local function focus_file_window()
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_buf(win) == file_bufnr then
      vim.api.nvim_set_current_win(win)
      return true
    end
  end
  return false
end

local function main()
  vim.cmd.edit(file)
  file_bufnr = vim.api.nvim_get_current_buf()
  -- Typed lines are exactly what the keys say: no comment leader continued by `o`, no indent.
  vim.bo[file_bufnr].formatoptions = ""
  vim.bo[file_bufnr].autoindent = false
  vim.bo[file_bufnr].indentexpr = ""
  if not wait(10000, function()
    return #vim.lsp.get_clients({ bufnr = file_bufnr, name = "baton" }) > 0
  end) then
    record_error("baton never attached")
    return
  end
  result.attached = true

  -- Unsaved: the file on disk does not have this line. Typed, so it is the first undo step.
  vim.api.nvim_input("ggO" .. assert(os.getenv("BATON_UNSAVED_LINE")) .. "<Esc>")
  local unsaved = assert(os.getenv("BATON_UNSAVED_LINE"))
  if not wait(5000, function() return has_line(file_bufnr, unsaved) end) then
    record_error("the unsaved line was never typed")
    return
  end
  -- Let baton see the change (didChange) before the task copies the buffers into its shadow.
  wait(300)

  vim.cmd(assert(os.getenv("BATON_RANGE")) .. "BatonTask " .. assert(os.getenv("BATON_INSTRUCTION")))

  -- The task document opens (window/showDocument) once the task begins.
  if not wait(job_timeout, function()
    for _, win in ipairs(vim.api.nvim_list_wins()) do
      if is_task_document(vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(win))) then
        return true
      end
    end
    return false
  end) then
    record_error("the task document was never shown")
  end
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    local name = vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(win))
    table.insert(result.windows, name)
    result.document_shown = result.document_shown or is_task_document(name)
  end
  result.focused_after_show = vim.api.nvim_buf_get_name(0)
  if not focus_file_window() then
    record_error("no window shows the file after the task document opened")
    return
  end

  -- Type until the task is over.
  local pending = nil
  local type_next, typing_finished
  if typing_mode == "insert" then
    -- One Insert-mode session for the whole task: `o` below the unsaved line, then a character
    -- per tick, <Esc> once the task is over; the agent's edit lands in the middle of it.
    local started, finished = false, false
    type_next = function()
      if finished or vim.api.nvim_get_current_buf() ~= file_bufnr then
        return
      end
      if not started then
        started = true
        vim.api.nvim_input("1Go// typing ")
      elseif result.end_message ~= vim.NIL and has_line(file_bufnr, agent_line) then
        finished = true
        vim.api.nvim_input("<Esc>")
      else
        vim.api.nvim_input("x")
      end
    end
    typing_finished = function()
      if finished and vim.api.nvim_get_mode().mode == "n" then
        result.typed = { vim.api.nvim_buf_get_lines(file_bufnr, 1, 2, false)[1] }
        return true
      end
      return false
    end
  else
    -- A line is queued only when the previous one is in the buffer and Neovim is back in Normal
    -- mode, so each typed line is one Normal-mode command.
    type_next = function()
      if pending then
        if not has_line(file_bufnr, pending) or vim.api.nvim_get_mode().mode ~= "n" then
          return
        end
        table.insert(result.typed, pending)
        pending = nil
      end
      local done = result.end_message ~= vim.NIL and has_line(file_bufnr, agent_line)
      if done or vim.api.nvim_get_current_buf() ~= file_bufnr then
        return
      end
      pending = ("// typed %d"):format(#result.typed + 1)
      -- Below the unsaved line (line 1) and the lines typed so far.
      vim.api.nvim_input(("%dGo%s<Esc>"):format(1 + #result.typed, pending))
    end
    typing_finished = function()
      return pending == nil
    end
  end
  local typing = assert(vim.uv.new_timer())
  typing:start(30, 30, vim.schedule_wrap(type_next))

  if not wait(job_timeout, function() return result.end_message ~= vim.NIL end) then
    record_error("the task's progress did not end")
  end
  -- The progress ends once the turn's landing was answered; typing goes on until the change is
  -- in the buffer (baton recomputes an edit that typing made stale).
  if not wait(job_timeout, function() return has_line(file_bufnr, agent_line) end) then
    record_error("the agent's change never reached the buffer")
  end
  -- What is being typed finishes (the last line; the insert ends with <Esc>).
  if not wait(10000, function()
    type_next()
    return typing_finished()
  end) then
    record_error("the typing never finished")
  end
  typing:stop()
  typing:close()
  -- Let the last didChange and any late edit settle.
  wait(500)
  result.final_text = text_of(file_bufnr)
  result.modified = vim.bo[file_bufnr].modified

  -- `u`, one step at a time, in the file's window, until the agent's change is gone.
  focus_file_window()
  for step = 1, #result.typed + 20 do
    local seq = vim.fn.undotree().seq_cur
    vim.cmd("silent undo")
    table.insert(result.undo_texts, text_of(file_bufnr))
    if not has_line(file_bufnr, agent_line) then
      result.undo_steps_to_revert_agent = step
      break
    end
    if vim.fn.undotree().seq_cur == seq then
      record_error("undo stopped at step " .. step .. " with the agent's change still there")
      break
    end
  end
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

-- Started once Neovim is in its main loop (VimEnter has run).
vim.schedule(function()
  coroutine.wrap(function()
    local ok, err = pcall(main)
    if not ok then
      record_error("script: " .. tostring(err))
    end
    finish()
  end)()
end)
