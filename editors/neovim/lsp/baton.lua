-- baton's language server configuration for Neovim 0.11+ (`:help lsp-config`).
--
-- With this directory on 'runtimepath', `vim.lsp.enable('baton')` starts baton in every buffer
-- (no `filetypes`: baton serves any language, next to the language's own server). Override any
-- field with `vim.lsp.config('baton', { ... })`.

---@type vim.lsp.Config
return {
  cmd = { 'baton', 'lsp' },
  root_markers = { 'baton.toml', '.git' },
  -- baton waits for each streamed edit to come back as a didChange before it sends the next one;
  -- Neovim's default 150 ms debounce would hold every one of them back.
  flags = { debounce_text_changes = 0 },
  -- baton's settings (docs/config.schema.json). Endpoints and key variables may also come from
  -- ~/.config/baton/config.toml or BATON_* environment variables.
  init_options = vim.empty_dict(),
}
