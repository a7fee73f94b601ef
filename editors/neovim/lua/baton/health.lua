-- `:checkhealth baton`: the Neovim version, the server command, the running server, and what the
-- plugin does about inline completion on this Neovim.

local M = {}

local function version_text()
  local version = vim.version()
  return ('%d.%d.%d'):format(version.major, version.minor, version.patch)
end

function M.check()
  local health = vim.health
  health.start('baton')
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim ' .. version_text())
  else
    health.error('Neovim ' .. version_text() .. ': baton needs Neovim 0.11 or newer')
  end

  local config = vim.lsp.config.baton
  local cmd = config and config.cmd
  if type(cmd) == 'table' and cmd[1] then
    if vim.fn.executable(cmd[1]) == 1 then
      health.ok(('server command: %s'):format(table.concat(cmd, ' ')))
    else
      health.error(('`%s` is not an executable'):format(cmd[1]), {
        'cargo install --path server (in the baton repository), or set cmd with vim.lsp.config',
      })
    end
  elseif cmd then
    health.info('server command: a function (set with vim.lsp.config)')
  else
    health.warn('no vim.lsp.config("baton"): put editors/neovim on the runtime path')
  end

  local clients = vim.lsp.get_clients({ name = 'baton' })
  if #clients == 0 then
    health.info('baton is not running (it starts for a file in a workspace once enabled)')
  end
  for _, client in ipairs(clients) do
    health.ok(('running: client %d, workspace %s'):format(client.id, client.root_dir or '(none)'))
  end

  health.start('baton: inline completion')
  local state = require('baton')._inline_completion_state()
  if not state.available then
    health.info(
      ('inline completion (ghost text) needs Neovim 0.12 (vim.lsp.inline_completion); this is '
        .. 'Neovim %s, so the plugin sets none up. Next edits (hint diagnostics, `gra`) and '
        .. 'everything else work.'):format(version_text())
    )
  elseif not state.set_up then
    health.info('require("baton").setup() was not called: turn it on with '
      .. 'vim.lsp.inline_completion.enable() and map vim.lsp.inline_completion.get()')
  elseif not state.enabled then
    health.info('off (inline_completion = false)')
  else
    local keys = {}
    for _, name in ipairs({ 'accept', 'next', 'previous' }) do
      if state.keys[name] then
        keys[#keys + 1] = ('%s %s'):format(name, state.keys[name])
      end
    end
    health.ok(('on in the buffers baton serves; Insert-mode keys: %s'):format(
      #keys > 0 and table.concat(keys, ', ') or 'none'
    ))
  end
end

return M
