"""`python -m pmws`."""

from pmws.cli import main

main()
