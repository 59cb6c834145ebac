"""``python -m huenet.study``: the command-line door to :mod:`huenet.colortransfer.study` (the ``[train]`` extra)."""

from .colortransfer.study import main

if __name__ == "__main__":
    main()
