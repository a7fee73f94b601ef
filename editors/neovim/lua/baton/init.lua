-- baton for Neovim 0.11+: an optional plugin on top of lsp/baton.lua.
--
--   require('baton').setup({
--     server = {},       -- merged into vim.lsp.config('baton'); false to configure the server yourself
--     keymaps = false,   -- true for <leader>ae (edit, prompts) and <leader>ac (cancel), or a table
--                        -- { edit = '<leader>ae', cancel = '<leader>ac' }
--     undojoin = true,   -- one undo step per job instead of one per streamed edit (an edit that
--                        -- lands while you are in Insert mode is always its own undo step)
--     show_document = 'split', -- where documents baton shows (a task's document) open:
--                        -- 'split', 'vsplit', 'tab', or 'current' (Neovim's own handler, which
--                        -- replaces the buffer in the current window)
--   })
--
-- Commands: :BatonEdit [instruction] (with a range or visual selection), :BatonTask {instruction}
-- (hands the instruction to the configured agent, harness.agent; with a range or visual
-- selection the agent is told which lines you mean), :BatonCancel, :BatonStatus. Everything goes
-- through standard LSP: `workspace/executeCommand` with the arguments documented in the README.

local M = {}

local defaults = {
  server = {},
  keymaps = false,
  undojoin = true,
  show_document = 'split',
}

local default_keys = { edit = '<leader>ae', cancel = '<leader>ac' }

---@return vim.lsp.Client?
local function baton_client(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr or 0, name = 'baton' })[1]
    or vim.lsp.get_clients({ name = 'baton' })[1]
end

local function notify(message, level)
  vim.notify('baton: ' .. message, level or vim.log.levels.INFO)
end

--- Converts a 0-based byte column on a buffer line to the client's position encoding.
local function character(bufnr, row, byte_col, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  byte_col = math.max(0, math.min(byte_col, #line))
  if byte_col == 0 then
    return 0
  end
  return vim.str_utfindex(line, encoding, byte_col, false)
end

--- The LSP range for an edit. `target` is nil (the cursor: baton rewrites the enclosing scope),
--- 'visual' (the last visual selection), or { line1, line2 } (whole lines, 1-based).
local function target_range(bufnr, target, encoding)
  if target == nil then
    local cursor = vim.api.nvim_win_get_cursor(0)
    local row = cursor[1] - 1
    local position = { line = row, character = character(bufnr, row, cursor[2], encoding) }
    return { start = position, ['end'] = position }
  end
  local line1, line2, col1, col2
  if target == 'visual' then
    local mode = vim.fn.visualmode()
    local first = vim.api.nvim_buf_get_mark(bufnr, '<')
    local last = vim.api.nvim_buf_get_mark(bufnr, '>')
    line1, line2 = first[1], last[1]
    if mode == 'v' then
      col1 = first[2]
      local text = vim.api.nvim_buf_get_lines(bufnr, line2 - 1, line2, false)[1] or ''
      if vim.o.selection == 'exclusive' or last[2] >= #text then
        col2 = last[2]
      else
        -- The mark is on the first byte of the last selected character, which is included.
        col2 = last[2] + 1 + vim.str_utf_end(text, last[2] + 1)
      end
    end
  else
    line1, line2 = target[1], target[2]
  end
  if col1 == nil then
    -- Whole lines: from the start of the first to the end of the last (its newline excluded).
    local last_text = vim.api.nvim_buf_get_lines(bufnr, line2 - 1, line2, false)[1] or ''
    col1, col2 = 0, #last_text
  end
  return {
    start = { line = line1 - 1, character = character(bufnr, line1 - 1, col1, encoding) },
    ['end'] = { line = line2 - 1, character = character(bufnr, line2 - 1, col2, encoding) },
  }
end

local function exec(client, command, arguments, bufnr, on_result)
  client:exec_cmd({ title = command, command = command, arguments = arguments }, { bufnr = bufnr }, function(err, result)
    if err then
      -- baton already explains a refused job with window/showMessage; only log the error.
      vim.lsp.log.warn('baton', command, err.message or vim.inspect(err))
    elseif on_result then
      on_result(result)
    end
  end)
end

--- Starts `baton.edit` on a target (see target_range). An empty instruction lets baton take it
--- from a `baton:` marker or the first comment in the selection.
function M.edit(instruction, target)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = baton_client(bufnr)
  if not client then
    notify('the baton language server is not running for this buffer', vim.log.levels.WARN)
    return
  end
  local argument = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = target_range(bufnr, target, client.offset_encoding),
  }
  if instruction and instruction:match('%S') then
    argument.instruction = instruction
  end
  exec(client, 'baton.edit', { argument }, bufnr)
end

--- Starts `baton.task`: the agent works on `instruction` in a shadow copy of the workspace and
--- its changes land in the buffers as edits. The current buffer (and `target`, as for M.edit,
--- when given) tells the agent where the user is looking; a buffer without a file name or not
--- attached to baton (a scratch buffer) is left out, and the task runs on the instruction alone.
function M.task(instruction, target)
  if not (instruction and instruction:match('%S')) then
    notify('a task needs an instruction: :BatonTask {instruction}', vim.log.levels.WARN)
    return
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local client = baton_client(bufnr)
  if not client then
    notify('the baton language server is not running', vim.log.levels.WARN)
    return
  end
  local argument = { instruction = instruction }
  if vim.lsp.buf_is_attached(bufnr, client.id) and vim.api.nvim_buf_get_name(bufnr) ~= '' then
    argument.textDocument = { uri = vim.uri_from_bufnr(bufnr) }
    if target ~= nil then
      argument.range = target_range(bufnr, target, client.offset_encoding)
    end
  end
  exec(client, 'baton.task', { argument }, bufnr, function(result)
    -- The task document opens through window/showDocument; this names it for when it cannot.
    if type(result) == 'table' and result.task then
      local document = result.document and vim.uri_to_fname(result.document) or '?'
      notify(('task %s started (%s)'):format(result.task, document))
    end
  end)
end

--- Cancels every running baton job.
function M.cancel()
  local client = baton_client()
  if not client then
    return
  end
  exec(client, 'baton.cancel', {}, nil, function(result)
    notify(('cancelled %d job(s)'):format(result and result.cancelled or 0))
  end)
end

function M.status()
  local client = baton_client()
  if not client then
    notify('the baton language server is not running', vim.log.levels.WARN)
    return
  end
  exec(client, 'baton.status', {}, nil, function(result)
    notify(vim.inspect(result))
  end)
end

-- Undo: a streamed job lands as many small edits; without help each is its own undo step.
-- Before applying a baton edit to a buffer whose last change was baton's previous edit of the
-- same job (nothing changed the buffer since, not even an undo), `:undojoin` merges the two.
-- The job boundary is baton's `$/progress` begin/end.

--- Buffer number -> changedtick right after baton's last edit to it in the current job.
local joinable = {}

local function edited_buffers(edit)
  local buffers = {}
  local function add(uri)
    local bufnr = vim.uri_to_bufnr(uri)
    if vim.api.nvim_buf_is_loaded(bufnr) then
      buffers[#buffers + 1] = bufnr
    end
  end
  if edit == nil then
    return buffers
  end
  for _, change in ipairs(edit.documentChanges or {}) do
    -- Resource operations (create, rename, delete) have a `kind` and no text edits.
    if change.textDocument and change.kind == nil then
      add(change.textDocument.uri)
    end
  end
  for uri in pairs(edit.changes or {}) do
    add(uri)
  end
  return buffers
end

-- Insert mode: a change made from a callback while the user is typing joins the undo block of
-- that insert, so one `u` would take back the user's typing together with baton's edit. Closing
-- the block before and after baton's edit (what CTRL-G u does) makes the edit an undo step of its
-- own; the rest of the insert is a new step, as after CTRL-G u.
local function break_undo_sequence()
  vim.cmd('let &g:undolevels = &g:undolevels')
end

local function undojoin_handler(default_handler, join)
  if join == nil then
    join = true
  end
  return function(err, params, ctx, config)
    local buffers = edited_buffers(params and params.edit)
    local inserting = vim.api.nvim_get_mode().mode:find('^[iR]') ~= nil
      and vim.tbl_contains(buffers, vim.api.nvim_get_current_buf())
    if inserting then
      break_undo_sequence()
    end
    local before = {}
    for _, bufnr in ipairs(buffers) do
      local tick = vim.api.nvim_buf_get_changedtick(bufnr)
      before[bufnr] = tick
      if join and joinable[bufnr] == tick then
        -- E790 (undojoin after undo) and friends must not stop the edit.
        vim.api.nvim_buf_call(bufnr, function()
          pcall(vim.cmd.undojoin)
        end)
      end
    end
    local response = default_handler(err, params, ctx, config)
    if inserting then
      break_undo_sequence()
    end
    for _, bufnr in ipairs(buffers) do
      if vim.api.nvim_buf_is_valid(bufnr) then
        local tick = vim.api.nvim_buf_get_changedtick(bufnr)
        -- An unchanged tick means the edit was skipped (stale version): join nothing with it.
        joinable[bufnr] = tick ~= before[bufnr] and tick or nil
      end
    end
    return response
  end
end

-- window/showDocument: baton shows a task's document (and a task's diff) with takeFocus. Neovim's
-- own handler then puts the document in the current window, hiding the buffer the user was
-- editing, the one the agent's changes land in. With show_document = 'split' (or 'vsplit',
-- 'tab') a new window is opened for the document first; Neovim's handler, which reuses a window
-- already showing the document, then fills in the rest (focus, selection, jumplist).

local split_commands = { split = 'belowright split', vsplit = 'belowright vsplit', tab = 'tab split' }

--- Whether a window in any tab page shows `bufnr` (Neovim's handler looks in all of them).
local function shown_anywhere(bufnr)
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_buf(win) == bufnr then
      return true
    end
  end
  return false
end

local function show_document_handler(default_handler, where)
  return function(err, params, ctx, config)
    local split = split_commands[where]
    if split and params and params.uri and not params.external then
      local bufnr = vim.uri_to_bufnr(params.uri)
      if not shown_anywhere(bufnr) then
        local previous = vim.api.nvim_get_current_win()
        vim.cmd(split)
        vim.api.nvim_win_set_buf(0, bufnr)
        -- Back to the user's window: Neovim's handler records the jump from there and moves
        -- the focus to the document only when takeFocus asks for it.
        vim.api.nvim_set_current_win(previous)
      end
    end
    return default_handler(err, params, ctx, config)
  end
end

local function set_keymaps(keys)
  if keys == true then
    keys = default_keys
  end
  if keys.edit then
    vim.keymap.set('n', keys.edit, function()
      vim.ui.input({ prompt = 'baton: ' }, function(text)
        if text then
          M.edit(text, nil)
        end
      end)
    end, { desc = 'baton: edit the scope at the cursor' })
    vim.keymap.set('x', keys.edit, function()
      -- Leave visual mode first so the '< and '> marks hold this selection.
      vim.api.nvim_feedkeys(vim.keycode('<Esc>'), 'nx', false)
      vim.ui.input({ prompt = 'baton: ' }, function(text)
        if text then
          M.edit(text, 'visual')
        end
      end)
    end, { desc = 'baton: edit the selection' })
  end
  if keys.cancel then
    vim.keymap.set('n', keys.cancel, M.cancel, { desc = 'baton: cancel jobs' })
  end
end

function M.setup(opts)
  if vim.fn.has('nvim-0.11') == 0 then
    notify('needs Neovim 0.11 or newer', vim.log.levels.ERROR)
    return
  end
  opts = vim.tbl_deep_extend('force', defaults, opts or {})

  if opts.server ~= false then
    local server = vim.deepcopy(opts.server)
    -- Always wrapped: undojoin = false only stops the joining, not the Insert-mode break.
    server.handlers = server.handlers or {}
    local default_apply = server.handlers['workspace/applyEdit'] or vim.lsp.handlers['workspace/applyEdit']
    server.handlers['workspace/applyEdit'] = undojoin_handler(default_apply, opts.undojoin)
    if opts.show_document ~= 'current' then
      local default_handler = server.handlers['window/showDocument']
        or vim.lsp.handlers['window/showDocument']
      server.handlers['window/showDocument'] = show_document_handler(default_handler, opts.show_document)
    end
    vim.lsp.config('baton', server)
    vim.lsp.enable('baton')
  end

  local group = vim.api.nvim_create_augroup('baton', { clear = true })
  vim.api.nvim_create_autocmd('LspProgress', {
    group = group,
    pattern = { 'begin', 'end' },
    callback = function(event)
      local client = vim.lsp.get_client_by_id(event.data.client_id)
      if client and client.name == 'baton' then
        -- A job started or ended: its edits must not be joined with the next job's.
        joinable = {}
      end
    end,
  })

  --- The target of a command given a range: nil without one.
  local function command_target(command)
    if command.range == 0 then
      return nil
    end
    -- From visual mode the range is '<,'>: use the marks, which also carry columns.
    local from_visual = command.line1 == vim.fn.line("'<") and command.line2 == vim.fn.line("'>")
    return from_visual and 'visual' or { command.line1, command.line2 }
  end

  vim.api.nvim_create_user_command('BatonEdit', function(command)
    M.edit(command.args, command_target(command))
  end, {
    nargs = '*',
    range = true,
    desc = 'baton: edit the selection, the range or the scope at the cursor',
  })
  vim.api.nvim_create_user_command('BatonTask', function(command)
    M.task(command.args, command_target(command))
  end, {
    nargs = '+',
    range = true,
    desc = 'baton: hand a task to the agent (about the range or selection, if given)',
  })
  vim.api.nvim_create_user_command('BatonCancel', M.cancel, { desc = 'baton: cancel every running job' })
  vim.api.nvim_create_user_command('BatonStatus', M.status, { desc = 'baton: show running jobs' })

  if opts.keymaps then
    set_keymaps(opts.keymaps)
  end
end

-- For tests: the undo wrapper around a `workspace/applyEdit` handler.
M._undojoin_handler = undojoin_handler
M._show_document_handler = show_document_handler

return M
