"""`python -m keystep`: the keystep command."""

from keystep.cli.app import main

main()
