-- End-to-end inline edit through Neovim's built-in LSP client, with no plugin: start baton with
-- vim.lsp.start, ask for code actions on a `// baton: ...` marker line, run the chosen action's
-- command the way a user would, watch the buffer and $/progress until the job ends and the buffer
-- settles, then undo back to the original text.
--
-- Input (environment):
--   BATON_RESULT_FILE        where to write the JSON result (set by testkit::neovim::run_lua_test)
--   BATON_BIN                the baton binary; started as `BATON_BIN lsp`
--   BATON_FILE               the file to open
--   BATON_ROOT               the workspace root (default: the file's directory)
--   BATON_LINE               0-based line of the marker (default: the first line containing "baton:")
--   BATON_ACTION             a substring of the title of the code action to run (default "baton")
--   BATON_INIT_OPTIONS       JSON initializationOptions (default none)
--   BATON_ATTACH_TIMEOUT_MS  default 10000
--   BATON_JOB_TIMEOUT_MS     how long to wait for the job's progress `end` (default 60000)
--   BATON_SETTLE_MS          how long the buffer must stay unchanged to count as settled (default 300)
--
-- Output: JSON { attached, actions, chosen_action, snapshots, progress, notifications,
--   exec_error, final_text, changenr_before_undo, undo_steps, after_undo_text, errors }.
-- Every wait has a timeout; a failed step is recorded in `errors` and the script still writes its
-- result, so the Rust test reports what happened instead of hanging.

local result_file = assert(os.getenv("BATON_RESULT_FILE"), "BATON_RESULT_FILE is not set")

local function env_number(name, default)
  local value = tonumber(os.getenv(name) or "")
  return value or default
end

local attach_timeout = env_number("BATON_ATTACH_TIMEOUT_MS", 10000)
local job_timeout = env_number("BATON_JOB_TIMEOUT_MS", 60000)
local settle_ms = env_number("BATON_SETTLE_MS", 300)

local result = {
  attached = false,
  actions = {},
  snapshots = {},
  progress = {},
  notifications = {},
  errors = {},
}

local function record_error(message)
  table.insert(result.errors, message)
end

local buffer = nil

local function buffer_text()
  if buffer == nil or not vim.api.nvim_buf_is_valid(buffer) then
    return vim.NIL
  end
  local lines = vim.api.nvim_buf_get_lines(buffer, 0, -1, false)
  local text = table.concat(lines, "\n")
  if vim.bo[buffer].eol then
    text = text .. "\n"
  end
  return text
end

local function snapshot()
  local text = buffer_text()
  if result.snapshots[#result.snapshots] ~= text then
    table.insert(result.snapshots, text)
  end
end

-- Messages and prompts the server sends end up here instead of on a screen.
vim.notify = function(message, level)
  table.insert(result.notifications, { message = tostring(message), level = level })
end
vim.ui.select = function(items, _, on_choice)
  table.insert(result.notifications, { message = "select", items = #items })
  on_choice(items[1], items[1] and 1 or nil)
end

vim.api.nvim_create_autocmd("LspProgress", {
  callback = function(event)
    local params = event.data and event.data.params or {}
    local value = type(params.value) == "table" and params.value or {}
    table.insert(result.progress, {
      token = params.token,
      kind = value.kind,
      title = value.title,
      message = value.message,
      percentage = value.percentage,
    })
  end,
})

local function progress_ended()
  for _, event in ipairs(result.progress) do
    if event.kind == "end" then
      return true
    end
  end
  return false
end

local function main()
  local bin = os.getenv("BATON_BIN")
  local file = os.getenv("BATON_FILE")
  if not bin or not file then
    record_error("BATON_BIN and BATON_FILE must be set")
    return
  end
  local root = os.getenv("BATON_ROOT") or vim.fs.dirname(file)

  vim.cmd.edit(vim.fn.fnameescape(file))
  buffer = vim.api.nvim_get_current_buf()
  result.initial_text = buffer_text()
  snapshot()
  vim.api.nvim_buf_attach(buffer, false, {
    on_lines = function()
      snapshot()
    end,
  })

  local init_options = nil
  local init_json = os.getenv("BATON_INIT_OPTIONS")
  if init_json and init_json ~= "" then
    local ok, decoded = pcall(vim.json.decode, init_json)
    if ok then
      init_options = decoded
    else
      record_error("BATON_INIT_OPTIONS is not JSON: " .. tostring(decoded))
    end
  end

  vim.api.nvim_create_autocmd("LspAttach", {
    callback = function()
      result.attached = true
    end,
  })
  local started, client_id = pcall(vim.lsp.start, {
    name = "baton",
    cmd = { bin, "lsp" },
    root_dir = root,
    init_options = init_options,
  }, { bufnr = buffer })
  if not started then
    record_error("vim.lsp.start failed: " .. tostring(client_id))
    return
  end
  if not vim.wait(attach_timeout, function()
    return result.attached
  end, 20) then
    record_error(string.format("baton did not attach within %d ms", attach_timeout))
    return
  end
  local client = vim.lsp.get_client_by_id(client_id)
  if not client then
    record_error("the baton client vanished after attaching")
    return
  end
  result.position_encoding = client.offset_encoding

  -- The marker line: given, or the first line mentioning "baton:".
  local line = tonumber(os.getenv("BATON_LINE") or "")
  if not line then
    for index, text in ipairs(vim.api.nvim_buf_get_lines(buffer, 0, -1, false)) do
      if text:find("baton:", 1, true) then
        line = index - 1
        break
      end
    end
  end
  if not line then
    record_error("no marker line given and none found")
    return
  end

  -- Ask for code actions with the cursor on the marker line, as `vim.lsp.buf.code_action()` would.
  vim.api.nvim_win_set_cursor(0, { line + 1, 0 })
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  params.context = { diagnostics = {}, triggerKind = 1 }
  local response, request_error = client:request_sync("textDocument/codeAction", params, 10000, buffer)
  if not response then
    record_error("textDocument/codeAction got no response: " .. tostring(request_error))
    return
  end
  if response.err then
    record_error("textDocument/codeAction failed: " .. vim.inspect(response.err))
    return
  end
  local wanted = os.getenv("BATON_ACTION") or "baton"
  local chosen = nil
  for _, action in ipairs(response.result or {}) do
    table.insert(result.actions, action.title)
    if chosen == nil and action.title:find(wanted, 1, true) then
      chosen = action
    end
  end
  if not chosen then
    record_error("no code action title contains " .. vim.inspect(wanted))
    return
  end
  result.chosen_action = chosen.title

  if not chosen.edit and type(chosen.command) ~= "table" and type(chosen.command) ~= "string"
    and client:supports_method("codeAction/resolve") then
    local resolved = client:request_sync("codeAction/resolve", chosen, 10000, buffer)
    if resolved and resolved.result then
      chosen = resolved.result
    end
  end
  if chosen.edit then
    vim.lsp.util.apply_workspace_edit(chosen.edit, client.offset_encoding)
  end
  local command = nil
  if type(chosen.command) == "table" then
    command = chosen.command
  elseif type(chosen.command) == "string" then
    command = chosen -- the action is itself a Command
  end
  local command_answered = command == nil
  if command then
    client:exec_cmd(command, { bufnr = buffer }, function(err, command_result)
      command_answered = true
      if err then
        result.exec_error = vim.inspect(err)
      end
      result.exec_result = command_result
    end)
    if not vim.wait(job_timeout, function()
      return command_answered
    end, 20) then
      record_error("workspace/executeCommand got no answer")
    end
    -- A refused command starts no job, so there is no progress to wait for.
    if result.exec_error then
      record_error("workspace/executeCommand failed: " .. result.exec_error)
    elseif not vim.wait(job_timeout, progress_ended, 20) then
      record_error(string.format("no $/progress end within %d ms", job_timeout))
    end
  end

  -- Settled: the buffer did not change for settle_ms (bounded by the job timeout).
  local deadline = vim.uv.now() + job_timeout
  while vim.uv.now() < deadline do
    local tick = vim.api.nvim_buf_get_changedtick(buffer)
    vim.wait(settle_ms)
    if vim.api.nvim_buf_get_changedtick(buffer) == tick then
      break
    end
  end
  result.final_text = buffer_text()

  -- Undo one `u` at a time back to the original text, counting the steps, then `undo 0` to be sure.
  result.changenr_before_undo = vim.fn.changenr()
  local steps = 0
  while vim.fn.changenr() > 0 and steps < 10000 do
    local before = vim.fn.changenr()
    vim.cmd("silent! undo")
    steps = steps + 1
    if vim.fn.changenr() == before then
      break
    end
  end
  vim.cmd("silent! undo 0")
  result.undo_steps = steps
  result.after_undo_text = buffer_text()
end

local ok, failure = xpcall(main, debug.traceback)
if not ok then
  record_error("script error: " .. tostring(failure))
end
if result.final_text == nil then
  result.final_text = buffer_text()
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
