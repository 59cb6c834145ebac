"""The methods room: the colour-transfer methods by name, and how they are run and scored.

- :mod:`~.registry`: every method's one name, shared by transfer, evaluate and study;
- :mod:`~.scoring`: scoring a trained network and the baselines on validation pairs;
- :mod:`~.refine`: a network's output refined by a few steps of the training-free fit;
- :mod:`~.lut`: a colour mapping measured on a small image, carried to full size as a LUT.

The classical baselines themselves (:mod:`huenet.colortransfer.baselines`) and the metrics
(:mod:`huenet.colortransfer.metrics`) sit one level up, since the networks and the training loop use them too.
"""
