"""``python -m huenet.transfer``: the command-line door to :mod:`huenet.colortransfer.commands.transfer` (needs the ``[train]`` extra)."""

from .colortransfer.commands.transfer import main

if __name__ == "__main__":
    main()
