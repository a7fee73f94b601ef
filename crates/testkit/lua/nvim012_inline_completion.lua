-- Neovim 0.12's `vim.lsp.inline_completion`, imitated for Neovim 0.11 so that tests can run the
-- plugin's 0.12 path (enable on attach, the accept and next/previous keys) in the real headless
-- Neovim we have. A test installs it with
--   vim.lsp.inline_completion = dofile('.../nvim012_inline_completion.lua')
-- before `require('baton').setup()`.
--
-- What is imitated, as read in Neovim's `runtime/lua/vim/lsp/inline_completion.lua` (the 0.12
-- version with `select`; docs/clients/neovim-inline-completion.md says what is left out):
-- - `enable(enable, filter)` (filter `{ bufnr?, client_id? }`) turns it on per buffer and
--   client; `is_enabled(filter)` answers for that scope.
-- - In an enabled buffer, `InsertEnter`, `CursorMovedI` and `TextChangedP` restart a 200 ms
--   timer; when it fires, `textDocument/inlineCompletion` goes to every enabled client with
--   `context.triggerKind = 2` (Automatic) at the cursor. `InsertLeave` aborts: pending requests
--   are cancelled, the timer stopped, the suggestion hidden.
-- - An answer that arrives outside Insert mode is dropped; otherwise its first item becomes the
--   current one and is shown as virtual text (an extmark in the namespace
--   `nvim.lsp.inline_completion`, `inline` for an empty or missing range, `overlay` otherwise).
-- - `select({ count })` moves to another item (wrapping), shown with a ` (i/n)` hint.
-- - `get()` returns false when nothing is shown; otherwise it returns true at once and, on the
--   next tick (so it can be mapped with `<expr>`), aborts and inserts the item's text over its
--   range (or at the cursor), moves the cursor after it, and runs the item's `command` with
--   `client:exec_cmd`.
-- Not imitated: snippets, `selectedCompletionInfo`, the skip of already-typed characters in
-- the virtual text, and `on_accept`.

local api = vim.api
local M = {}

local namespace = api.nvim_create_namespace('nvim.lsp.inline_completion')

--- Per buffer: { clients = { [client_id] = items? }, pending = { [client_id] = request_id },
--- timer?, current? = { index, client_id, item }, augroup }.
local buffers = {}

--- For tests: every request sent, as { bufnr, client_id, triggerKind, position }.
M._requests = {}

local function items_in_order(state)
  local list = {}
  local ids = vim.tbl_keys(state.clients)
  table.sort(ids)
  for _, client_id in ipairs(ids) do
    for _, item in ipairs(state.clients[client_id] or {}) do
      list[#list + 1] = { client_id = client_id, item = item }
    end
  end
  return list
end

local function show(state, bufnr, hint)
  api.nvim_buf_clear_namespace(bufnr, namespace, 0, -1)
  local current = state.current
  if not current then
    return
  end
  local client = vim.lsp.get_client_by_id(current.client_id)
  local item = current.item
  local text = type(item.insertText) == 'string' and item.insertText or item.insertText.value
  local lines = vim.split(text, '\n', { plain = true })
  local row, col
  if item.range and client then
    row = item.range.start.line
    local line = api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
    col = vim.str_byteindex(line, client.offset_encoding, item.range.start.character, false)
  else
    local cursor = api.nvim_win_get_cursor(vim.fn.bufwinid(bufnr))
    row, col = cursor[1] - 1, cursor[2]
  end
  local virt_text = { { lines[1], 'ComplHint' } }
  local virt_lines = {}
  for index = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[index], 'ComplHint' } }
  end
  local last = #virt_lines > 0 and virt_lines[#virt_lines] or virt_text
  if hint then
    table.insert(last, { hint, 'ComplHintMore' })
  end
  local empty = not item.range
    or (item.range.start.line == item.range['end'].line and item.range.start.character == item.range['end'].character)
  api.nvim_buf_set_extmark(bufnr, namespace, row, col, {
    virt_text = virt_text,
    virt_lines = virt_lines,
    virt_text_pos = empty and 'inline' or 'overlay',
    hl_mode = 'combine',
  })
end

local function select_index(state, bufnr, index, show_index)
  local list = items_in_order(state)
  local entry = list[index]
  if not entry then
    state.current = nil
    api.nvim_buf_clear_namespace(bufnr, namespace, 0, -1)
    return
  end
  state.current = { index = index, client_id = entry.client_id, item = entry.item }
  show(state, bufnr, show_index and (' (%d/%d)'):format(index, #list) or nil)
end

local function stop_timer(state)
  if state.timer then
    state.timer:stop()
    state.timer:close()
    state.timer = nil
  end
end

local function abort(state, bufnr)
  for client_id, request_id in pairs(state.pending) do
    local client = vim.lsp.get_client_by_id(client_id)
    if client then
      client:cancel_request(request_id)
    end
  end
  state.pending = {}
  stop_timer(state)
  api.nvim_buf_clear_namespace(bufnr, namespace, 0, -1)
  state.current = nil
end

local function request(state, bufnr, kind)
  for client_id in pairs(state.clients) do
    local client = vim.lsp.get_client_by_id(client_id)
    if client then
      local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
      params.context = { triggerKind = kind }
      table.insert(M._requests, {
        bufnr = bufnr,
        client_id = client_id,
        triggerKind = kind,
        position = params.position,
      })
      local ok, request_id = client:request('textDocument/inlineCompletion', params, function(err, result)
        state.pending[client_id] = nil
        if err or not result or not vim.startswith(api.nvim_get_mode().mode, 'i') then
          return
        end
        state.clients[client_id] = result.items or result
        select_index(state, bufnr, 1, false)
      end, bufnr)
      if ok then
        state.pending[client_id] = request_id
      end
    end
  end
end

local function automatic_request(state, bufnr)
  show(state, bufnr)
  stop_timer(state)
  state.timer = vim.defer_fn(function()
    state.timer = nil
    request(state, bufnr, 2)
  end, 200)
end

local function start(bufnr, client_id)
  local state = buffers[bufnr]
  if not state then
    state = { clients = {}, pending = {} }
    state.augroup = api.nvim_create_augroup('nvim012.inline_completion.' .. bufnr, { clear = true })
    api.nvim_create_autocmd({ 'InsertEnter', 'CursorMovedI', 'TextChangedP' }, {
      group = state.augroup,
      buffer = bufnr,
      callback = function()
        automatic_request(state, bufnr)
      end,
    })
    api.nvim_create_autocmd('InsertLeave', {
      group = state.augroup,
      buffer = bufnr,
      callback = function()
        abort(state, bufnr)
      end,
    })
    buffers[bufnr] = state
  end
  if state.clients[client_id] == nil then
    state.clients[client_id] = false
  end
end

local function stop(bufnr, client_id)
  local state = buffers[bufnr]
  if not state then
    return
  end
  if client_id then
    state.clients[client_id] = nil
  end
  if client_id == nil or next(state.clients) == nil then
    abort(state, bufnr)
    api.nvim_del_augroup_by_id(state.augroup)
    buffers[bufnr] = nil
  end
end

--- The (buffer, client) pairs a filter names: attached clients that support the method.
local function scope(filter)
  filter = filter or {}
  local pairs_found = {}
  local bufnrs = filter.bufnr and { vim._resolve_bufnr(filter.bufnr) } or api.nvim_list_bufs()
  for _, bufnr in ipairs(bufnrs) do
    for _, client in ipairs(vim.lsp.get_clients({ bufnr = bufnr, id = filter.client_id })) do
      if client:supports_method('textDocument/inlineCompletion', bufnr) then
        pairs_found[#pairs_found + 1] = { bufnr, client.id }
      end
    end
  end
  return pairs_found
end

function M.enable(enable, filter)
  for _, pair in ipairs(scope(filter)) do
    if enable == false then
      stop(pair[1], pair[2])
    else
      start(pair[1], pair[2])
    end
  end
end

function M.is_enabled(filter)
  local found = scope(filter)
  if #found == 0 then
    return false
  end
  for _, pair in ipairs(found) do
    local state = buffers[pair[1]]
    if not (state and state.clients[pair[2]] ~= nil) then
      return false
    end
  end
  return true
end

function M.select(opts)
  opts = opts or {}
  local bufnr = vim._resolve_bufnr(opts.bufnr)
  local state = buffers[bufnr]
  if not (state and state.current) then
    return
  end
  local count = opts.count or vim.v.count1
  local n = #items_in_order(state)
  local index = state.current.index + count
  if opts.wrap ~= false then
    index = (index - 1) % n + 1
  else
    index = math.max(1, math.min(index, n))
  end
  select_index(state, bufnr, index, true)
end

function M.get(opts)
  opts = opts or {}
  local bufnr = vim._resolve_bufnr(opts.bufnr)
  local state = buffers[bufnr]
  if not (state and state.current) then
    return false
  end
  vim.schedule(function()
    local current = state.current
    abort(state, bufnr)
    if not current then
      return
    end
    local item = current.item
    local client = vim.lsp.get_client_by_id(current.client_id)
    local text = type(item.insertText) == 'string' and item.insertText or item.insertText.value
    local lines = vim.split(text, '\n', { plain = true })
    local win = api.nvim_win_get_buf(0) == bufnr and api.nvim_get_current_win() or vim.fn.bufwinid(bufnr)
    if item.range and client then
      local function byte(position)
        local line = api.nvim_buf_get_lines(bufnr, position.line, position.line + 1, false)[1] or ''
        return vim.str_byteindex(line, client.offset_encoding, position.character, false)
      end
      local start_row, start_col = item.range.start.line, byte(item.range.start)
      api.nvim_buf_set_text(bufnr, start_row, start_col, item.range['end'].line, byte(item.range['end']), lines)
      api.nvim_win_set_cursor(win, {
        start_row + #lines,
        (#lines == 1 and start_col or 0) + #lines[#lines],
      })
    else
      api.nvim_paste(text, false, 0)
    end
    if item.command and client then
      client:exec_cmd(item.command, { bufnr = bufnr })
    end
  end)
  return true
end

return M
