"""``python -m huenet.evaluate``: the command-line door to :mod:`huenet.colortransfer.commands.evaluate` (needs the ``[train]`` extra)."""

from .colortransfer.commands.evaluate import main

if __name__ == "__main__":
    main()
