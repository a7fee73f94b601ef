-- baton for Neovim 0.11+: an optional plugin on top of lsp/baton.lua.
--
--   require('baton').setup({
--     server = {},       -- merged into vim.lsp.config('baton'); false to configure the server yourself
--     keymaps = false,   -- true for <leader>ae (edit, prompts), <leader>ac (cancel) and <leader>an
--                        -- (apply the next edit proposed on the cursor's line), or a table
--                        -- { edit = '<leader>ae', cancel = '<leader>ac', next_edit = '<leader>an' }
--     inline_completion = true, -- Neovim 0.12+: baton's ghost text through vim.lsp.inline_completion
--                        -- in the buffers baton serves; false for off. Neovim 0.11 has no inline
--                        -- completion: the option then does nothing (`:checkhealth baton` says so).
--     inline_keymaps = true, -- Insert-mode keys for that ghost text, buffer-local, 0.12+ only:
--                        -- { accept = '<M-l>', next = '<M-]>', previous = '<M-[>' }; a table
--                        -- over these (a key set to false is not mapped) or false for none
--     document_keymaps = true, -- buffer-local keys in baton's task and plan documents; false for
--                        -- none, or a table over the defaults (a key set to false is not mapped):
--                        -- { task = { undo_file = '<leader>au', undo_all = '<leader>aU',
--                        --            keep = '<leader>ak', diff = '<leader>ad', reply = '<leader>ar' },
--                        --   plan = { refine = '<leader>ar', execute = '<leader>ax', step = '<leader>as' } }
--     undojoin = true,   -- one undo step per job instead of one per streamed edit (an edit that
--                        -- lands while you are in Insert mode is always its own undo step)
--     show_document = 'split', -- where documents baton shows (a task's document, a plan) open:
--                        -- 'split', 'vsplit', 'tab', or 'current' (Neovim's own handler, which
--                        -- replaces the buffer in the current window)
--   })
--
-- Commands: :BatonEdit [instruction] (with a range or visual selection), :BatonTask {instruction}
-- (hands the instruction to the configured agent, harness.agent; with a range or visual
-- selection the agent is told which lines you mean), :BatonTasks (pick one of this session's
-- tasks and open its document), :BatonPlan {instruction} (writes a plan, with a range or visual
-- selection like :BatonTask), and in a plan document :BatonPlanRefine, :BatonPlanExecute [agent]
-- and :BatonPlanStep [agent] (the step under the cursor); :BatonCancel, :BatonStatus.
-- Next-edit suggestions (server setting features.next_edit) are `baton` Hint diagnostics
-- (vim.diagnostic: `]d`, `[d`) with quick fixes under `gra`; M.next_edit() (<leader>an with
-- keymaps) applies the one on the cursor's line.
-- Everything goes through standard LSP: `workspace/executeCommand` with the arguments documented
-- in the README.

local M = {}

local defaults = {
  server = {},
  keymaps = false,
  document_keymaps = true,
  undojoin = true,
  show_document = 'split',
  inline_completion = true,
  inline_keymaps = true,
}

local default_keys = { edit = '<leader>ae', cancel = '<leader>ac', next_edit = '<leader>an' }

-- Alt keys: Neovim gives them no Insert-mode meaning of its own, and the completion-menu
-- plugins' presets (nvim-cmp, blink.cmp, mini.completion) and Neovim's built-in completion keep to
-- <Tab>, <S-Tab>, <CR>, <C-y>, <C-n>, <C-p>, <C-e> and <C-Space>, so ghost text and the menu never
-- fight over a key. They are copilot.lua's keys too: run one ghost-text source, or remap one.
local default_inline_keys = { accept = '<M-l>', next = '<M-]>', previous = '<M-[>' }

local default_document_keys = {
  task = {
    undo_file = '<leader>au',
    undo_all = '<leader>aU',
    keep = '<leader>ak',
    diff = '<leader>ad',
    reply = '<leader>ar',
  },
  plan = { refine = '<leader>ar', execute = '<leader>ax', step = '<leader>as' },
}

--- The options setup() was given, over the defaults.
local options = vim.deepcopy(defaults)

--- Whether setup() ran (without it the plugin sets up nothing, inline completion included).
local setup_done = false

--- File name (normalized) -> id of the baton client that showed it with window/showDocument
--- (or whose task it is, for :BatonTasks).
local shown_by = {}

local set_document_keymaps

---@return vim.lsp.Client?
local function baton_client(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr or 0, name = 'baton' })[1]
    or vim.lsp.get_clients({ name = 'baton' })[1]
end

local function notify(message, level)
  vim.notify('baton: ' .. message, level or vim.log.levels.INFO)
end

--- The baton client, or nil after telling the user none is running.
---@return vim.lsp.Client?
local function running_client(bufnr)
  local client = baton_client(bufnr)
  if not client then
    notify('the baton language server is not running', vim.log.levels.WARN)
  end
  return client
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

--- Adds the current buffer (and `target`, as for M.edit, when given) to `argument`: it tells the
--- agent or planner where the user is looking. A buffer without a file name or not attached to
--- baton (a scratch buffer) is left out, and the work starts from the instruction alone.
local function add_focus(argument, bufnr, client, target)
  if vim.lsp.buf_is_attached(bufnr, client.id) and vim.api.nvim_buf_get_name(bufnr) ~= '' then
    argument.textDocument = { uri = vim.uri_from_bufnr(bufnr) }
    if target ~= nil then
      argument.range = target_range(bufnr, target, client.offset_encoding)
    end
  end
  return argument
end

--- Starts `command` (`baton.task` or `baton.plan`) for `instruction`, with the current buffer
--- (and `target`) as where the user is looking (see add_focus); names the document it opened,
--- for when the editor could not show it. `kind` is the answer's key (`task` or `plan`).
local function start_instruction(command, kind, instruction, target)
  if not (instruction and instruction:match('%S')) then
    local usage = kind == 'task' and ':BatonTask' or ':BatonPlan'
    notify(('a %s needs an instruction: %s {instruction}'):format(kind, usage), vim.log.levels.WARN)
    return
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local client = running_client(bufnr)
  if not client then
    return
  end
  local argument = add_focus({ instruction = instruction }, bufnr, client, target)
  exec(client, command, { argument }, bufnr, function(result)
    if type(result) == 'table' and result[kind] then
      local document = result.document and vim.uri_to_fname(result.document) or '?'
      notify(('%s %s started (%s)'):format(kind, result[kind], document))
    end
  end)
end

--- Starts `baton.task`: the agent works on `instruction` in a shadow copy of the workspace and
--- its changes land in the buffers as edits (the task document opens through
--- window/showDocument).
function M.task(instruction, target)
  start_instruction('baton.task', 'task', instruction, target)
end

--- Starts `baton.plan`: the deep tier writes a plan for `instruction` into a Markdown document,
--- which baton opens (window/showDocument) while it streams. `target` as for M.task.
function M.plan(instruction, target)
  start_instruction('baton.plan', 'plan', instruction, target)
end

-- baton's own documents. Task documents are `tasks/task-<stamp>-<id>.md` (first line
-- `# baton task: …`) and plans `plans/<name>.md` (first line `# Plan: …`), both in baton's state
-- directory or, for plans, the workspace's `.baton/plans/`.

---@return 'task'|'plan'|nil
local function document_kind(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  local first = vim.api.nvim_buf_get_lines(bufnr, 0, 1, false)[1] or ''
  if name:match('/tasks/task%-[^/]+%.md$') or first:match('^# baton task: ') then
    return 'task'
  end
  -- While the plan streams in, the first line may not be the title yet: a document in a plans
  -- directory that baton showed is a plan whatever it starts with.
  local plans_dir = name:match('/plans/[^/]+%.md$')
  if plans_dir and (shown_by[vim.fs.normalize(name)] or first == '' or first:match('^# Plan:')) then
    return 'plan'
  end
  return nil
end

--- The buffer and client of the current window's baton document of `kind`, or nil (the user
--- is told why).
local function current_document(kind)
  local bufnr = vim.api.nvim_get_current_buf()
  if document_kind(bufnr) ~= kind then
    notify(('this buffer is not a baton %s document'):format(kind), vim.log.levels.WARN)
    return nil
  end
  local client = running_client(bufnr)
  if not client then
    return nil
  end
  return bufnr, client
end

--- The task whose document is shown in the current buffer, from `baton.tasks`; calls
--- `on_task(client, task, bufnr)` with it. A task document of an earlier session is not a task of the
--- running server: the user is told so.
local function with_current_task(on_task)
  local bufnr, client = current_document('task')
  if not bufnr then
    return
  end
  local name = vim.fs.normalize(vim.api.nvim_buf_get_name(bufnr))
  exec(client, 'baton.tasks', {}, bufnr, function(tasks)
    for _, task in ipairs(type(tasks) == 'table' and tasks or {}) do
      if task.document and vim.fs.normalize(vim.uri_to_fname(task.document)) == name then
        on_task(client, task, bufnr)
        return
      end
    end
    notify('this task document is not one of the running baton\'s tasks', vim.log.levels.WARN)
  end)
end

--- The workspace-relative path on the task document's line `row` (1-based), when that line is
--- a changed file under `## Files changed` (``- `src/lib.rs` modified (+3 -1) landed``).
local function changed_file_on_line(bufnr, row)
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, row, false)
  local path = (lines[row] or ''):match('^%s*%- `([^`]+)`')
  if not path then
    return nil
  end
  for index = row - 1, 1, -1 do
    if lines[index]:match('^## ') then
      return lines[index]:match('^## Files changed') and path or nil
    end
  end
  return nil
end

--- Undoes the task's changes to the file named on the cursor's line of its task document (all
--- files with `all`); the text the agent started from comes back in the buffers, with what
--- you typed since.
function M.task_undo(all)
  local path
  if not all then
    local bufnr = vim.api.nvim_get_current_buf()
    path = changed_file_on_line(bufnr, vim.api.nvim_win_get_cursor(0)[1])
    if not path then
      notify('put the cursor on a file under "## Files changed"', vim.log.levels.WARN)
      return
    end
  end
  with_current_task(function(client, task, bufnr)
    exec(client, 'baton.task.undo', { { task = task.task, path = path } }, bufnr, function()
      notify(('task %d: undone %s'):format(task.task, path or 'all files'))
    end)
  end)
end

--- Keeps all of the task's changes.
function M.task_keep()
  with_current_task(function(client, task, bufnr)
    exec(client, 'baton.task.keep', { { task = task.task } }, bufnr, function()
      notify(('task %d: kept'):format(task.task))
    end)
  end)
end

--- Opens the task's whole diff (baton shows it with window/showDocument).
function M.task_diff()
  with_current_task(function(client, task, bufnr)
    exec(client, 'baton.task.diff', { { task = task.task } }, bufnr)
  end)
end

--- Sends `text` to the task's agent as a follow-up in the same session; prompts for it
--- (vim.ui.input) when not given.
function M.task_reply(text)
  with_current_task(function(client, task, bufnr)
    local function send(reply)
      if reply and reply:match('%S') then
        exec(client, 'baton.task.reply', { { task = task.task, text = reply } }, bufnr)
      end
    end
    if text then
      send(text)
    else
      vim.ui.input({ prompt = ('baton: reply to task %d: '):format(task.task) }, send)
    end
  end)
end

--- Lists this session's tasks (vim.ui.select, newest first) and opens the chosen task's
--- document where baton shows documents (`show_document`).
function M.tasks()
  local client = running_client()
  if not client then
    return
  end
  exec(client, 'baton.tasks', {}, nil, function(tasks)
    if type(tasks) ~= 'table' or #tasks == 0 then
      notify('no tasks in this session')
      return
    end
    local newest_first = {}
    for index = #tasks, 1, -1 do
      newest_first[#newest_first + 1] = tasks[index]
    end
    vim.ui.select(newest_first, {
      prompt = 'baton tasks',
      kind = 'baton.task',
      format_item = function(task)
        return ('#%d %s [%s] (%s)'):format(task.task, task.title, task.status, task.agent)
      end,
    }, function(task)
      if task and task.document then
        M._open_document(vim.uri_to_fname(task.document), client)
      end
    end)
  end)
end

local steps_headings = { steps = true, checklist = true, plan = true, tasks = true, todo = true }

--- The 1-based number of the plan step at line `row` (1-based) of a plan document, read the
--- way baton reads plans back (crates/plan, `step_at_line`): under a `## Steps` heading (or
--- Checklist, Plan, Tasks, Todo), every non-blank line starts a step unless it is indented two
--- columns more than the step's line or starts with `>` (then it is one of the step's notes);
--- blank lines and horizontal rules belong to no step; a step without text or notes (a bare
--- `- [ ]`) does not count. nil when `row` is not on a step or its notes.
local function plan_step_at(bufnr, row)
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  local in_steps, in_fence = false, false
  local steps = {} -- { first, last, indent, empty }
  local function indent_of(line)
    local width = 0
    for char in line:match('^%s*'):gmatch('.') do
      width = width + (char == '\t' and 4 or 1)
    end
    return width
  end
  for index, line in ipairs(lines) do
    local trimmed = vim.trim(line)
    if not in_steps and (trimmed:match('^```') or trimmed:match('^~~~')) then
      in_fence = not in_fence
    end
    local heading = not in_fence and (line:match('^##%s+(.-)%s*#*%s*$') or (line == '##' and ''))
    if heading then
      in_fence = false
      in_steps = steps_headings[heading:gsub(':$', ''):lower()] or false
    elseif in_steps and trimmed ~= '' and not trimmed:match('^<!%-%- baton plan')
      and not trimmed:gsub('%s', ''):match('^%-%-%-+$') and not trimmed:gsub('%s', ''):match('^%*%*%*+$')
      and not trimmed:gsub('%s', ''):match('^___+$') then
      local open = steps[#steps]
      if open and (indent_of(line) >= open.indent + 2 or trimmed:match('^>')) then
        open.last, open.empty = index, false
      else
        -- A bullet or number, a checkbox and a visible number, and nothing after them.
        local bare = trimmed:gsub('^[-*+]%s*', ''):gsub('^%d+[.)]%s*', ''):gsub('^%[.?%]%s*', ''):gsub('^%d+[.)]%s*', '')
        steps[#steps + 1] = { first = index, last = index, indent = indent_of(line), empty = bare == '' }
      end
    end
  end
  local number = 0
  for _, step in ipairs(steps) do
    if not step.empty then
      number = number + 1
      if row >= step.first and row <= step.last then
        return number
      end
    end
  end
  return nil
end

--- Asks baton to rewrite the plan in the current buffer in place, with your edits and notes.
function M.plan_refine()
  local bufnr, client = current_document('plan')
  if not bufnr then
    return
  end
  exec(client, 'baton.plan.refine', { { document = vim.uri_from_bufnr(bufnr) } }, bufnr)
end

--- Starts an agent task for the whole plan (`step` nil) or for its step `step` (1-based);
--- `agent` names an entry of harness.agents (the default agent when nil). The task's document
--- opens as for :BatonTask.
function M.plan_execute(step, agent)
  local bufnr, client = current_document('plan')
  if not bufnr then
    return
  end
  local argument = { document = vim.uri_from_bufnr(bufnr), step = step }
  if agent and agent:match('%S') then
    argument.agent = agent
  end
  exec(client, 'baton.plan.execute', { argument }, bufnr, function(result)
    if type(result) == 'table' and result.task then
      notify(('task %s started for %s'):format(result.task, step and ('step ' .. step) or 'the plan'))
    end
  end)
end

--- Executes the step under the cursor (see plan_step_at).
function M.plan_step(agent)
  local bufnr = vim.api.nvim_get_current_buf()
  local step = plan_step_at(bufnr, vim.api.nvim_win_get_cursor(0)[1])
  if not step then
    notify('put the cursor on a step under "## Steps" (or its notes)', vim.log.levels.WARN)
    return
  end
  M.plan_execute(step, agent)
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
  local client = running_client()
  if not client then
    return
  end
  exec(client, 'baton.status', {}, nil, function(result)
    notify(vim.inspect(result))
  end)
end

-- Next edits. After a change, baton publishes what it proposes to change next as Hint
-- diagnostics with source `baton`, each with a preferred quick fix carrying the edit (and, when
-- there are several, one more that applies them all): `gra` lists them like any code action.

--- Whether `action` is one of baton's next-edit quick fixes for a single place.
local function is_next_edit_fix(action)
  return action.isPreferred == true
    and action.edit ~= nil
    and (action.title or ''):find('^baton') ~= nil
end

--- The baton next-edit hints on line `row` (0-based) of `bufnr`, the one under byte column `col`
--- first, then by distance from it.
local function next_edit_hints(bufnr, row, col)
  local hints = vim.tbl_filter(function(diagnostic)
    return diagnostic.source == 'baton' and diagnostic.severity == vim.diagnostic.severity.HINT
  end, vim.diagnostic.get(bufnr, { lnum = row }))
  local function distance(diagnostic)
    local last = diagnostic.end_lnum == row and diagnostic.end_col or math.huge
    if col < diagnostic.col then
      return diagnostic.col - col
    end
    return col > last and col - last or 0
  end
  table.sort(hints, function(a, b)
    return distance(a) < distance(b)
  end)
  return hints
end

--- Applies the next edit baton proposes on the cursor's line (the one under the cursor, else
--- the nearest): the preferred quick fix of that hint, through vim.lsp.buf.code_action.
function M.next_edit()
  local bufnr = vim.api.nvim_get_current_buf()
  local cursor = vim.api.nvim_win_get_cursor(0)
  local hint = next_edit_hints(bufnr, cursor[1] - 1, cursor[2])[1]
  if not hint then
    notify('no next edit proposed on this line')
    return
  end
  -- The hint's start, as a mark-like position: baton offers the fixes of the proposals a
  -- requested range touches, and this one touches only the hint's proposal.
  local at = { hint.lnum + 1, hint.col }
  vim.lsp.buf.code_action({
    apply = true,
    range = { start = at, ['end'] = at },
    filter = is_next_edit_fix,
  })
end

-- Inline completion (ghost text) is Neovim 0.12's vim.lsp.inline_completion: it asks baton
-- 200 ms after typing pauses in Insert mode and shows the first suggestion as virtual text.
-- Neovim 0.11 has no such module; there the plugin sets nothing up.

--- Whether this Neovim has inline completion (0.12+).
local function inline_completion_available()
  return type(vim.lsp.inline_completion) == 'table'
    and type(vim.lsp.inline_completion.enable) == 'function'
end

--- On LspAttach of a baton client: inline completion on for that client in that buffer, and the
--- buffer-local Insert-mode keys.
local function attach_inline_completion(bufnr, client)
  if not (options.inline_completion and inline_completion_available()) then
    return
  end
  if not client:supports_method('textDocument/inlineCompletion', bufnr) then
    return
  end
  local inline = vim.lsp.inline_completion
  inline.enable(true, { bufnr = bufnr, client_id = client.id })
  local keys = options.inline_keymaps
  if not keys then
    return
  end
  if keys.accept then
    local accept_key = keys.accept
    vim.keymap.set('i', accept_key, function()
      -- get() accepts what is shown (scheduled, so it works from an <expr> mapping) and says
      -- whether there was anything; with nothing shown the key keeps its own meaning.
      if inline.get({ bufnr = bufnr }) then
        return ''
      end
      return accept_key
    end, { buffer = bufnr, expr = true, replace_keycodes = true, desc = 'baton: accept the inline suggestion' })
  end
  if inline.select then
    for name, count in pairs({ next = 1, previous = -1 }) do
      if keys[name] then
        vim.keymap.set('i', keys[name], function()
          inline.select({ bufnr = bufnr, count = count })
        end, { buffer = bufnr, desc = ('baton: %s inline suggestion'):format(name) })
      end
    end
  end
end

--- What `:checkhealth baton` reports about inline completion.
function M._inline_completion_state()
  local keys = options.inline_keymaps
  return {
    available = inline_completion_available(),
    set_up = setup_done,
    enabled = options.inline_completion and true or false,
    keys = keys == true and default_inline_keys or keys or {},
  }
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

-- window/showDocument: baton shows a task's document (and a task's diff, a plan) with takeFocus.
-- Neovim's own handler then puts the document in the current window, hiding the buffer the user
-- was editing, the one the agent's changes land in. With show_document = 'split' (or 'vsplit',
-- 'tab') a new window is opened for the document first; Neovim's handler, which reuses a window
-- already showing the document, then fills in the rest (focus, selection, jumplist).
--
-- baton's documents live in its state directory, outside the workspace: left to
-- vim.lsp.enable, opening one would start a second baton without a workspace that knows none of
-- the tasks. The handler remembers which baton showed each document, and the plugin's root_dir
-- (see setup) gives the document that baton's workspace, so the same server serves it.

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
    if params and params.uri and not params.external and params.uri:match('^file:') then
      if ctx and ctx.client_id then
        shown_by[vim.fs.normalize(vim.uri_to_fname(params.uri))] = ctx.client_id
      end
      local split = split_commands[where]
      local bufnr = vim.uri_to_bufnr(params.uri)
      if split and not shown_anywhere(bufnr) then
        local previous = vim.api.nvim_get_current_win()
        vim.cmd(split)
        vim.api.nvim_win_set_buf(0, bufnr)
        -- Back to the user's window: Neovim's handler records the jump from there and moves
        -- the focus to the document only when takeFocus asks for it.
        vim.api.nvim_set_current_win(previous)
      end
    end
    local response = default_handler(err, params, ctx, config)
    if params and params.uri and params.uri:match('^file:') then
      local bufnr = vim.uri_to_bufnr(params.uri)
      if vim.api.nvim_buf_is_loaded(bufnr) then
        set_document_keymaps(bufnr)
      end
    end
    return response
  end
end

--- Opens `fname` (one of baton's documents, from `client`) and moves to it: the window already
--- showing it, else a new one placed as `show_document` says (the current window for 'current').
function M._open_document(fname, client)
  if client then
    shown_by[vim.fs.normalize(fname)] = client.id
  end
  local bufnr = vim.fn.bufadd(fname)
  vim.bo[bufnr].buflisted = true
  local window = vim.fn.win_findbuf(bufnr)[1]
  if window then
    vim.api.nvim_set_current_win(window)
    return
  end
  local split = split_commands[options.show_document]
  if split then
    vim.cmd(split)
  end
  vim.api.nvim_win_set_buf(0, bufnr)
end

--- root_dir for vim.lsp.config('baton') when the user sets none: baton's own documents get the
--- workspace of the baton that showed them (else of any running baton); other buffers are left
--- to root_markers, as without the plugin.
local function root_dir(bufnr, on_dir)
  local name = vim.fs.normalize(vim.api.nvim_buf_get_name(bufnr))
  local client = shown_by[name] and vim.lsp.get_client_by_id(shown_by[name])
  if not client and (document_kind(bufnr) or name:match('/tasks/task%-[^/]+%.diff$')) then
    client = vim.lsp.get_clients({ name = 'baton' })[1]
  end
  on_dir(client and client.root_dir or nil)
end

--- Maps `keys[name]` (unless false) in normal mode in buffer `bufnr` to `action`.
local function map_document_keys(bufnr, keys, actions)
  for name, action in pairs(actions) do
    local lhs = keys[name]
    if lhs then
      vim.keymap.set('n', lhs, action[1], { buffer = bufnr, desc = 'baton: ' .. action[2] })
    end
  end
end

local document_actions = {
  task = {
    undo_file = { function() M.task_undo(false) end, "undo this task's changes to the file on this line" },
    undo_all = { function() M.task_undo(true) end, "undo all of this task's changes" },
    keep = { M.task_keep, "keep all of this task's changes" },
    diff = { M.task_diff, "show this task's diff" },
    reply = { function() M.task_reply() end, 'reply to the agent (prompts)' },
  },
  plan = {
    refine = { M.plan_refine, 'refine this plan' },
    execute = { function() M.plan_execute(nil) end, 'execute this plan (an agent task)' },
    step = { function() M.plan_step() end, 'execute the step under the cursor (an agent task)' },
  },
}

--- Sets the buffer-local keymaps of a task or plan document, once per buffer.
function set_document_keymaps(bufnr)
  local keys = options.document_keymaps
  if not keys or vim.b[bufnr].baton_document_keymaps then
    return
  end
  local kind = document_kind(bufnr)
  if not kind then
    return
  end
  if keys == true then
    keys = default_document_keys
  end
  vim.b[bufnr].baton_document_keymaps = kind
  map_document_keys(bufnr, keys[kind] or {}, document_actions[kind])
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
  if keys.next_edit then
    vim.keymap.set('n', keys.next_edit, M.next_edit, { desc = "baton: apply the next edit on this line" })
  end
end

function M.setup(opts)
  if vim.fn.has('nvim-0.11') == 0 then
    notify('needs Neovim 0.11 or newer', vim.log.levels.ERROR)
    return
  end
  opts = vim.tbl_deep_extend('force', defaults, opts or {})
  if opts.document_keymaps == true then
    opts.document_keymaps = default_document_keys
  elseif type(opts.document_keymaps) == 'table' then
    opts.document_keymaps = vim.tbl_deep_extend('force', default_document_keys, opts.document_keymaps)
  end
  if opts.inline_keymaps == true then
    opts.inline_keymaps = default_inline_keys
  elseif type(opts.inline_keymaps) == 'table' then
    opts.inline_keymaps = vim.tbl_extend('force', default_inline_keys, opts.inline_keymaps)
  end
  options = opts
  setup_done = true

  if opts.server ~= false then
    local server = vim.deepcopy(opts.server)
    -- Always wrapped: undojoin = false only stops the joining, not the Insert-mode break.
    server.handlers = server.handlers or {}
    local default_apply = server.handlers['workspace/applyEdit'] or vim.lsp.handlers['workspace/applyEdit']
    server.handlers['workspace/applyEdit'] = undojoin_handler(default_apply, opts.undojoin)
    -- Always wrapped too, for the record of which baton showed a document; with 'current' the
    -- wrapper opens no window.
    local default_handler = server.handlers['window/showDocument'] or vim.lsp.handlers['window/showDocument']
    server.handlers['window/showDocument'] = show_document_handler(default_handler, opts.show_document)
    local configured = vim.lsp.config.baton
    if server.root_dir == nil and not (configured and configured.root_dir) then
      server.root_dir = root_dir
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

  vim.api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(event)
      local client = vim.lsp.get_client_by_id(event.data.client_id)
      if client and client.name == 'baton' then
        attach_inline_completion(event.buf, client)
      end
    end,
  })

  -- Task and plan documents get their keymaps when they are read (or created, for a plan
  -- that has not been written yet) and when baton shows them.
  vim.api.nvim_create_autocmd({ 'BufReadPost', 'BufNewFile', 'BufWinEnter' }, {
    group = group,
    pattern = '*.md',
    callback = function(event)
      set_document_keymaps(event.buf)
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
  vim.api.nvim_create_user_command('BatonTasks', M.tasks, {
    desc = "baton: pick one of this session's tasks and open its document",
  })
  vim.api.nvim_create_user_command('BatonPlan', function(command)
    M.plan(command.args, command_target(command))
  end, {
    nargs = '+',
    range = true,
    desc = 'baton: write a plan (about the range or selection, if given)',
  })
  vim.api.nvim_create_user_command('BatonPlanRefine', M.plan_refine, {
    desc = 'baton: refine the plan in this buffer, keeping your edits',
  })
  vim.api.nvim_create_user_command('BatonPlanExecute', function(command)
    M.plan_execute(nil, command.args)
  end, { nargs = '?', desc = 'baton: execute this plan as an agent task (optionally naming the agent)' })
  vim.api.nvim_create_user_command('BatonPlanStep', function(command)
    M.plan_step(command.args)
  end, { nargs = '?', desc = 'baton: execute the plan step under the cursor as an agent task' })
  vim.api.nvim_create_user_command('BatonCancel', M.cancel, { desc = 'baton: cancel every running job' })
  vim.api.nvim_create_user_command('BatonStatus', M.status, { desc = 'baton: show running jobs' })

  if opts.keymaps then
    set_keymaps(opts.keymaps)
  end
end

-- For tests: the undo wrapper around a `workspace/applyEdit` handler.
M._undojoin_handler = undojoin_handler
M._show_document_handler = show_document_handler
M._plan_step_at = plan_step_at

return M
