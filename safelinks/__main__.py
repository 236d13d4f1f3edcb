"""``python -m safelinks``: the same as the ``safelinks`` command."""

from safelinks.cli import main

main()
