"""The commands room: ``python -m huenet.transfer``, ``huenet.evaluate`` and ``huenet.study``.

Each parses its flags, reports bad input through :mod:`huenet.colortransfer.cli` (one line naming the flag or
file, non-zero exit) and calls the other rooms; ``huenet.train`` and ``huenet.plots`` live with training.
"""
