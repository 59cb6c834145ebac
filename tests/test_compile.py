"""torch.compile of a user's loss function through the public ops (registered as torch custom ops)."""

import pytest
import torch

import huenet
from huenet.losses import HueNetLoss


def test_custom_ops_pass_opcheck():
    g = torch.Generator().manual_seed(0)
    z = torch.rand(2, 20, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 20, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.rand(2, 20, generator=g, dtype=torch.float64) + 0.1
    # The ops take values in bin units (here u in [0, 8) for 8 bins).
    torch.library.opcheck(torch.ops.huenet.eager_soft_histogram.default, (8 * z, w, 8, 0.4, "circular"))
    torch.library.opcheck(torch.ops.huenet.eager_joint_histogram.default, (8 * z, 8 * y, None, 8, 0.4, "reflect"))


@pytest.mark.slow
def test_compiled_loss_matches_eager():
    g = torch.Generator().manual_seed(1)
    src, tgt = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    criterion = HueNetLoss(bins=32, backend="eager")

    def loss_fn(o, s, t):
        return criterion(o, s, t) + huenet.mi_distance(o, s, bins=16, backend="eager").mean()

    torch._dynamo.reset()
    compiled = torch.compile(loss_fn)
    # New data must not recompile: the data-dependent weight check is a custom op, not a host sync.
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(3):
            out = torch.rand(2, 3, 16, 16, generator=g, requires_grad=True)
            want = loss_fn(out, src, tgt)
            (want_grad,) = torch.autograd.grad(want, out)
            got = compiled(out, src, tgt)
            (got_grad,) = torch.autograd.grad(got, out)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(got_grad, want_grad, rtol=1e-4, atol=1e-6)
