"""The Hue-Net colour-transfer application: models, data, training, transfer, evaluation and plots.

It needs the ``[train]`` extra (matplotlib, Pillow, tqdm); the loss library in :mod:`huenet` does not.
The commands are ``python -m huenet.train``, ``huenet.transfer``, ``huenet.evaluate`` and ``huenet.plots``.
"""
