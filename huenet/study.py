"""``python -m huenet.study``: the command-line door to :mod:`huenet.colortransfer.commands.study` (the ``[train]`` extra)."""

from .colortransfer.commands.study import main

if __name__ == "__main__":
    main()
