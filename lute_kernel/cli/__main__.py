"""``python -m lute_kernel.cli`` runs the command line."""

from lute_kernel.cli import main

main()
