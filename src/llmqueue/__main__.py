"""``python -m llmqueue``: the command line."""

from .cli import main

main()
