"""Defender's two URL-list syntaxes, each matched over the one URL value (``shared.urls.WebURL``).

- ``tenant_list``: Tenant Allow/Block List entries: allow or block a URL at click time. Its syntax
  (``tenant_list_syntax``), its matching (``tenant_list_pattern``) and its entries and their index
  (``tenant_list_entries``: ``TablEntry``, ``TablIndex``) are modules beside it. Stored by
  ``shared.store.tenant_list``.
- ``do_not_rewrite``: the Safe Links policy's "Do not rewrite the following URLs" entries
  (``RewriteExemptions``): links the bot leaves as they are. Read from the policy file.

The two syntaxes look alike but differ (wildcards, tildes, schemes, what a bare domain covers), so
each module follows its own Defender page and neither borrows the other's matching.
"""
