"""``python -m llmqueue``: the same command line as the ``llmqueue`` script."""

from .cli import main

main()
