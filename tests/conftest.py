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
#: Every backend, Triton included (interpreted here): for the ops whose tests span all three in one file.
ALL_BACKENDS = (*BACKENDS, "triton")
#: The boundary modes of the soft histograms, and the full-precision dtypes the op tests run in.
BOUNDARIES = ("reflect", "circular", "none")
DTYPES = (torch.float32, torch.float64)
#: The public ops that reduce a joint histogram to an information measure.
INFO_OPS = ("mutual_information", "joint_entropy", "mi_distance", "conditional_entropy")
#: Tiny but real training runs: 32 px images, 8-channel models, 64-bin losses, a small synthetic set.
TINY = dict(image_size=32, batch_size=4, ngf=8, bins=64, cond_bins=16, synthetic_images=48)

import numpy as np  # noqa: E402

np.seterr(over="ignore")

# The tests use tiny tensors: intra-op threads only add synchronisation, and on a busy 2-core machine
# they make the suite several times slower. Override with HUENET_TEST_THREADS=N.
torch.set_num_threads(int(os.environ.get("HUENET_TEST_THREADS", "1")))

# Make `import oracle` work from every test module regardless of rootdir / import mode.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
