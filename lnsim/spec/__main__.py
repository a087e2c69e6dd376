"""``python -m lnsim.spec``: print the Markdown table of every spec option (docs/architecture.md holds it)."""

from lnsim.spec.core import options_markdown

print(options_markdown(), end="")
