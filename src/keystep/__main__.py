"""`python -m keystep`: the keystep command."""

from keystep.cli.app import main

if __name__ == "__main__":  # not when a spawned worker process imports it
    main()
