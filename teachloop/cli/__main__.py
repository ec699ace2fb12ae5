"""`python -m teachloop.cli`."""

from teachloop.cli import main

main()
