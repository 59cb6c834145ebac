"""Image sets, the train/validation split and unpaired pairs (huenet.colortransfer.data.folders, .synthetic)."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import pil_to_tensor
from huenet.color import rgb_to_hsv
from huenet.colortransfer.data.folders import (
    ImageFolder,
    UnpairedPairs,
    find_images,
    make_image_set,
    skipped_images,
    split_indices,
)
from huenet.colortransfer.data.synthetic import HUE_FAMILIES, SyntheticImages


def _save(path, size=(40, 30), colour=(200, 30, 30), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(str(path))) % 2**32)
    array = np.clip(np.array(colour) + rng.integers(-20, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    Image.fromarray(array).save(path, format=fmt)
    return path


def _truncated(path, fmt):
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, format=fmt)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


# --------------------------------------------------------------------------------------------- synthetic
def test_synthetic_is_deterministic_by_seed():
    a, b, c = SyntheticImages(8, 48, seed=3), SyntheticImages(8, 48, seed=3), SyntheticImages(8, 48, seed=4)
    for i in range(8):
        assert np.array_equal(np.asarray(a.load(i)), np.asarray(b.load(i)))
    assert not np.array_equal(np.asarray(a.load(0)), np.asarray(c.load(0)))
    # Image i depends on (seed, i) only, not on what was generated before.
    assert np.array_equal(np.asarray(a.load(5)), np.asarray(SyntheticImages(8, 48, seed=3).load(5)))


def test_synthetic_images_vary_in_colour_and_shape():
    images = SyntheticImages(48, 48, seed=0)
    hsv = rgb_to_hsv(torch.stack([pil_to_tensor(images.load(i)) for i in range(48)]))
    hue, sat, val = hsv.unbind(1)
    # Dominant hue family per image: the saturation-weighted circular mean hue, snapped to a family.
    angle = hue * 2 * torch.pi
    mean = torch.atan2((sat * angle.sin()).sum((1, 2)), (sat * angle.cos()).sum((1, 2))) / (2 * torch.pi) % 1
    families = torch.tensor(HUE_FAMILIES)
    nearest = (
        ((mean[:, None] - families[None]).abs().remainder(1))
        .minimum((families[None] - mean[:, None]).abs().remainder(1))
        .argmin(1)
    )
    assert len(set(nearest.tolist())) >= 6, "images should come from many hue families"
    assert sat.mean() > 0.4, "images should be colourful"
    # Structure: brightness varies inside each image (shapes, shading), not flat fills.
    assert bool((val.flatten(1).std(1) > 0.03).all())


def test_synthetic_bad_arguments():
    with pytest.raises(ValueError, match="`count`"):
        SyntheticImages(1)
    with pytest.raises(ValueError, match="`size`"):
        SyntheticImages(4, 4)
    with pytest.raises(IndexError):
        SyntheticImages(4, 16).load(4)


# ------------------------------------------------------------------------------------------------- split
def test_split_is_seeded_disjoint_and_ten_percent():
    train, val = split_indices(100, 0.1, seed=1)
    assert len(val) == 10 and len(train) == 90
    assert sorted(train + val) == list(range(100))
    assert split_indices(100, 0.1, seed=1) == (train, val)
    assert split_indices(100, 0.1, seed=2) != (train, val)
    assert split_indices(2, 0.1) == ([1], [0]) or split_indices(2, 0.1) == ([0], [1])
    with pytest.raises(ValueError, match="`val_fraction`"):
        split_indices(10, 1.0)
    with pytest.raises(ValueError, match="`count`"):
        split_indices(1)


# ------------------------------------------------------------------------------------------------- pairs
def test_pairs_are_unpaired_random_and_new_each_epoch():
    images = SyntheticImages(30, 40, seed=0)
    pairs = UnpairedPairs(images, list(range(30)), 32, train=True, seed=0)
    first = [pairs.target_position(i) for i in range(30)]
    assert all(t != i for i, t in enumerate(first))
    pairs.set_epoch(1)
    second = [pairs.target_position(i) for i in range(30)]
    assert all(t != i for i, t in enumerate(second))
    assert first != second
    pairs.set_epoch(0)
    assert [pairs.target_position(i) for i in range(30)] == first


def test_training_jitter_and_fixed_validation_crops():
    images = SyntheticImages(6, 40, seed=0)
    train = UnpairedPairs(images, range(6), 32, train=True, seed=0)
    source, target, *_ = train[2]
    assert source.shape == target.shape == (3, 32, 32)
    assert source.dtype == torch.float32 and 0 <= source.min() and source.max() <= 1
    again = train[2].source
    assert torch.equal(source, again), "an item must be a function of (seed, epoch, index)"
    crops = set()
    for epoch in range(6):
        train.set_epoch(epoch)
        crops.add(train[2][0].numpy().tobytes())
    assert len(crops) > 1, "the random crop and flip must change between epochs"
    val = UnpairedPairs(images, range(6), 32, train=False, seed=0)
    val.set_epoch(5)  # validation ignores the epoch
    assert torch.equal(val[2][0], UnpairedPairs(images, range(6), 32, train=False, seed=0)[2][0])


def test_non_square_images_give_square_crops(tmp_path):
    _save(tmp_path / "wide.png", size=(90, 40))
    _save(tmp_path / "tall.jpg", size=(33, 120))
    folder = ImageFolder(tmp_path)
    for train in (True, False):
        for source, target, *_ in UnpairedPairs(folder, [0, 1], 32, train=train):
            assert source.shape == target.shape == (3, 32, 32)


def test_pairs_bad_arguments():
    images = SyntheticImages(4, 16)
    with pytest.raises(ValueError, match="`image_size`"):
        UnpairedPairs(images, [0, 1], 4)
    with pytest.raises(ValueError, match="`indices`"):
        UnpairedPairs(images, [], 16)


# ------------------------------------------------------------------------------------------------ folder
def test_folder_finds_nested_images_and_ignores_other_files(tmp_path):
    _save(tmp_path / "a" / "x.png")
    _save(tmp_path / "b" / "c" / "y.JPG", fmt="JPEG")
    (tmp_path / "notes.txt").write_text("not an image")
    folder = ImageFolder(tmp_path)
    assert [folder.name(i) for i in range(len(folder))] == ["a/x.png", "b/c/y.JPG"]
    assert folder.picture(1).rgb.shape == (3, 30, 40)
    assert make_image_set(str(tmp_path), 32, 0).files == folder.files


def test_corrupt_files_are_skipped_with_a_warning_and_counted(tmp_path):
    for i in range(3):
        _save(tmp_path / f"good{i}.png")
    (tmp_path / "text.jpg").write_text("this is not a jpeg")
    _truncated(tmp_path / "cut.png", "PNG")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 3 unreadable"):
        folder = ImageFolder(tmp_path)
    assert len(folder) == 3
    assert sorted(p.name for p in folder.skipped) == ["cut.png", "empty.png", "text.jpg"]


def test_file_that_fails_only_when_decoded_is_skipped_at_load(tmp_path):
    # A truncated JPEG passes PIL's structural check and fails when its pixels are decoded.
    _save(tmp_path / "a.png", colour=(10, 200, 10))
    _save(tmp_path / "b.png", colour=(10, 10, 200))
    _truncated(tmp_path / "0_cut.jpg", "JPEG")
    folder = ImageFolder(tmp_path)
    assert len(folder) == 3 and folder.skipped == []
    pairs = UnpairedPairs(folder, [0, 1, 2], 16, train=False)
    first = pairs[0]
    # Named in the item (a DataLoader worker cannot count it for the trainer), with the decoder's reason.
    assert list(skipped_images(folder, [first])) == ["0_cut.jpg"]
    # The next image was used in its place.
    assert torch.equal(first.source, pairs[1].source)


def test_missing_empty_and_wrong_paths_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_images(tmp_path / "nope")
    with pytest.raises(ValueError, match="no image files"):
        ImageFolder(tmp_path)
    _save(tmp_path / "one.png")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        ImageFolder(tmp_path / "one.png")
    with pytest.raises(ValueError, match="at least 2 readable images"):
        ImageFolder(tmp_path)


# ---------------------------------------------------------------------------------------- bit depth, alpha
def test_16_bit_and_rgba_images_keep_their_range_and_alpha(tmp_path):
    # Values a 16-bit file holds that 8 bits cannot: mid-grey 0.5 of the 16-bit range and a dark 0.0123.
    # Clipping them at 255 (the old bug) reads them as white.
    from huenet.colortransfer.data.images import write_image

    grey = torch.full((3, 40, 48), 0.5)
    grey[:, :20] = 0.0123
    write_image(tmp_path / "rgb16.png", grey, bits=16)
    write_image(tmp_path / "rgb16.tif", grey, bits=16)
    Image.fromarray((grey[0].numpy() * 65535 + 0.5).astype(np.uint16)).save(tmp_path / "grey16.png")
    colour = torch.tensor([0.8, 0.2, 0.1])[:, None, None].expand(3, 40, 48)
    alpha = torch.zeros(1, 40, 48)
    alpha[..., 24:] = 1.0  # the right half is opaque
    write_image(tmp_path / "rgba.png", colour, alpha)
    folder = ImageFolder(tmp_path)
    pairs = UnpairedPairs(folder, range(len(folder)), 32, train=False)
    for i in range(len(folder)):
        pair = pairs[i]
        name = folder.name(i)
        if name == "rgba.png":
            # The colours are kept under the transparent pixels too; the alpha travels beside them.
            assert torch.allclose(pair.source, colour[:, :32, :32], atol=1 / 255)
            assert pair.source_alpha[0, :, :8].max() < 0.01 and pair.source_alpha[0, :, -8:].min() > 0.99
        else:
            # Centre crop of the 40x48 image after resizing its short side to 32: rows 0..15 dark, 16..31 grey.
            assert pair.source[:, -8:].mean().item() == pytest.approx(0.5, abs=1e-3), name
            assert pair.source[:, :8].mean().item() == pytest.approx(0.0123, abs=1e-3), name
            assert pair.source_alpha.min() == 1, name
