import os

import torch  # noqa: E402  (importing torch does not import triton or the kernels)

# Must happen before anything imports huenet or the kernels, because Triton reads it when a kernel is
# decorated: without a GPU the kernels are tested under the Triton interpreter on CPU tensors; with one,
# they are compiled and tested on CUDA tensors.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
# A user's backend override must not change what the tests compute.
os.environ.pop("HUENET_BACKEND", None)

import sys  # noqa: E402

#: The torch backends every op test runs on; tests/test_kernels*.py test the Triton one.
BACKENDS = ("eager", "reference")

import numpy as np  # noqa: E402

np.seterr(over="ignore")

# The tests use tiny tensors: intra-op threads only add synchronisation, and on a busy 2-core machine
# they make the suite several times slower. Override with HUENET_TEST_THREADS=N.
torch.set_num_threads(int(os.environ.get("HUENET_TEST_THREADS", "1")))

# Make `import oracle` work from every test module regardless of rootdir / import mode.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
