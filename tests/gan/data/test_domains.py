"""Domains: rendered digits, embedded real data, MNIST-M blending, file layouts, loaders."""

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from counterfeit.gan.data import (
    Augment,
    DigitStyle,
    DomainSpec,
    ImageTensors,
    InfiniteLoader,
    ZipLoader,
    blend_with_photos,
    build_domain,
    load_image_folder,
    load_mnist,
    load_mnistm,
    load_usps,
    mnist_small,
    render_digits,
    sklearn_digits,
)
from counterfeit.gan.data.synthetic import available_fonts
from counterfeit.gan.errors import ConfigError, DataError

# -- rendered synthetic digits ----------------------------------------------------


def test_render_is_deterministic_balanced_and_shaped():
    a = render_digits(50, size=32, seed=7)
    b = render_digits(50, size=32, seed=7)
    c = render_digits(50, size=32, seed=8)
    assert a.images.shape == (50, 3, 32, 32) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)
    assert torch.bincount(a.labels, minlength=10).tolist() == [5] * 10


def test_glyphs_come_from_three_installed_font_sources_and_the_stroke_writers():
    kinds = {font.kind for font in available_fonts()}
    assert kinds == {"ttf", "pil", "hershey", "strokes"}
    assert len([f for f in available_fonts() if f.kind != "strokes"]) >= 20


def test_digit_is_visible_against_its_background():
    images = render_digits(20, size=28, seed=0, style=DigitStyle(noise=(0, 0), blur=(0, 0)))
    spread = images.images.float().amax(dim=(1, 2, 3)) - images.images.float().amin(dim=(1, 2, 3))
    assert bool((spread > 60).all())


def test_grey_style_has_no_colour():
    images = render_digits(10, seed=0, style=DigitStyle(colour=False, noise=(0, 0))).images.float()
    assert (images[:, 0] - images[:, 1]).abs().max() <= 1 and (
        images[:, 1] - images[:, 2]
    ).abs().max() <= 1


def test_style_rejects_unknown_options():
    with pytest.raises(ValueError, match="rotaton"):
        DigitStyle(rotaton=3)


# -- embedded real data -------------------------------------------------------------


def test_mnist_small_split_is_fixed_and_disjoint():
    train, test = mnist_small("train"), mnist_small("test")
    assert (len(train), len(test)) == (4000, 1000)
    assert train.shape == (1, 28, 28) and train.num_classes == 10
    rows = {bytes(x.numpy()) for x in train.images[:500]}
    assert not any(bytes(x.numpy()) in rows for x in test.images)
    assert torch.equal(mnist_small("test").images, test.images)


def test_sklearn_digits_are_rescaled_to_uint8():
    digits = sklearn_digits("all")
    assert len(digits) == 1797 and digits.shape == (1, 8, 8)
    assert digits.images.max() == 255


# -- MNIST-M-style blending -----------------------------------------------------


def test_blend_is_abs_difference_with_the_photo_patch():
    photo = np.full((64, 64, 3), (200, 40, 90), np.uint8)
    digits = ImageTensors(
        torch.tensor([[[[0, 255], [255, 0]]]], dtype=torch.uint8).repeat(3, 1, 1, 1),
        torch.tensor([1, 2, 3]),
        "d",
    )
    out = blend_with_photos(digits, seed=0, photos=(photo,))
    assert out.images.shape == (3, 3, 2, 2)
    assert out.images[0, :, 0, 0].tolist() == [200, 40, 90]  # background: the photo
    assert out.images[0, :, 0, 1].tolist() == [55, 215, 165]  # digit: |photo - 255|
    assert out.labels.tolist() == [1, 2, 3]
    # a faint anti-aliased edge pixel: background by default, full digit at MNIST-M's 0
    faint = ImageTensors(torch.tensor([[[[0, 40]]]], dtype=torch.uint8), None, "faint")
    kept = blend_with_photos(faint, seed=0, photos=(photo,)).images[0, :, 0]
    assert kept[:, 1].tolist() == [200, 40, 90]
    full = blend_with_photos(faint, seed=0, photos=(photo,), threshold=0).images[0, :, 0]
    assert full[:, 1].tolist() == [55, 215, 165] and full[:, 0].tolist() == [200, 40, 90]


def test_blend_is_seeded():
    digits = mnist_small("test").take(20)
    a, b = blend_with_photos(digits, seed=1), blend_with_photos(digits, seed=1)
    c = blend_with_photos(digits, seed=2)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)


def test_blend_rejects_small_or_grey_photos():
    digits = mnist_small("test").take(2)
    with pytest.raises(DataError, match="larger than 28x28"):
        blend_with_photos(digits, photos=(np.zeros((20, 20, 3), np.uint8),))
    with pytest.raises(DataError, match="RGB"):
        blend_with_photos(digits, photos=(np.zeros((64, 64), np.uint8),))


# -- files in a data root ---------------------------------------------------------


def _write_idx(path, array):
    dims = array.shape
    header = struct.pack(">HBB", 0, 0x08, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def test_mnist_from_npz_and_from_torchvision_idx_layout(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (12, 28, 28), dtype=np.uint8)
    y = np.arange(12) % 10
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    assert len(load_mnist(tmp_path, "test")) == 4

    raw = tmp_path / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 12), ("t10k", 4)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", x[:n])
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", y[:n].astype(np.uint8))
    # torchvision reads the uncompressed files; it extracts .gz on download only
    for gz in raw.glob("*.gz"):
        (raw / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    train = load_mnist(tmp_path / "tv", "train")
    assert train.images.shape == (12, 1, 28, 28)
    assert torch.equal(train.images[:, 0], torch.from_numpy(x))
    assert train.labels.tolist() == y.tolist()


def test_missing_mnist_names_the_expected_files(tmp_path):
    with pytest.raises(DataError, match=r"mnist\.npz.*train-images-idx3-ubyte"):
        load_mnist(tmp_path, "train")
    with pytest.raises(DataError, match=r"data\.root"):
        load_mnist(None, "train")


def test_mnistm_original_release_layout(tmp_path):
    folder = tmp_path / "mnist_m" / "mnist_m_test"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            folder / f"{i:08d}.png"
        )
        lines.append(f"{i:08d}.png {i % 10}")
    (tmp_path / "mnist_m" / "mnist_m_test_labels.txt").write_text("\n".join(lines) + "\n")
    data = load_mnistm(tmp_path, "test")
    assert data.images.shape == (5, 3, 32, 32) and data.labels.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(DataError, match=r"mnist_m_train_labels\.txt"):
        load_mnistm(tmp_path, "train")


def test_mnistm_bad_label_line(tmp_path):
    (tmp_path / "mnist_m_test").mkdir()
    (tmp_path / "mnist_m_test_labels.txt").write_text("00000000.png\n")
    with pytest.raises(DataError, match=r"labels.txt:1"):
        load_mnistm(tmp_path, "test")


def test_npz_missing_keys(tmp_path):
    np.savez(tmp_path / "usps.npz", x_train=np.zeros((2, 16, 16), np.uint8))
    with pytest.raises(DataError, match="lacks x_test, y_test"):
        load_usps(tmp_path, "test")


def test_image_folder_labelled_and_flat(tmp_path):
    for label in ("0", "3"):
        (tmp_path / "lab" / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (40, 30), (i * 100, 0, 0)).save(tmp_path / "lab" / label / f"{i}.png")
    labelled = load_image_folder(tmp_path / "lab", size=16)
    assert labelled.images.shape == (4, 3, 16, 16) and labelled.labels.tolist() == [0, 0, 3, 3]
    (tmp_path / "flat").mkdir()
    Image.new("L", (20, 20)).save(tmp_path / "flat" / "a.jpg")
    flat = load_image_folder(tmp_path / "flat", size=16)
    assert not flat.has_labels
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_image_folder(tmp_path / "empty", size=16)


def test_image_folder_names_a_corrupt_image_and_skips_it_only_when_asked(tmp_path):
    for label in ("1", "2"):
        (tmp_path / label).mkdir()
        Image.new("RGB", (20, 20), (200, 0, 0)).save(tmp_path / label / "good.png")
    corrupt = tmp_path / "2" / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DataError, match=r"corrupt\.png"):
        load_image_folder(tmp_path, size=8)
    with pytest.warns(UserWarning, match=r"corrupt\.png"):
        kept = load_image_folder(tmp_path, size=8, skip_unreadable=True)
    assert kept.labels.tolist() == [1, 2]


# -- the registry and shape contract ---------------------------------------------


def test_build_domain_converts_to_the_requested_shape():
    grey = build_domain(DomainSpec(name="sklearn-digits"), "test", image_size=16, channels=3)
    assert grey.shape == (3, 16, 16)
    colour = build_domain(DomainSpec(name="mnistm-style", n_test=10), "test", 32, channels=1)
    assert colour.shape == (1, 32, 32) and len(colour) == 10


def test_center_fit_keeps_the_digit_scale_where_resize_shrinks_it(tmp_path):
    # MNIST-M's layout: a 28 px digit padded by 2 to 32 px
    digits = np.zeros((4, 28, 28), np.uint8)
    digits[:, 4:24, 9:19] = 255
    padded = np.repeat(np.pad(digits, ((0, 0), (2, 2), (2, 2)))[..., None], 3, axis=3)
    labels = np.arange(4)
    np.savez(tmp_path / "mnistm.npz", x_train=padded, y_train=labels, x_test=padded, y_test=labels)

    def load(fit: str) -> ImageTensors:
        spec = DomainSpec(name="mnist-m", root=tmp_path, fit=fit)
        return build_domain(spec, "test", image_size=28, channels=1)

    centre, resized = load("center"), load("resize")
    assert torch.equal(centre.images[:, 0], torch.from_numpy(digits))
    assert centre.images.shape == resized.images.shape == (4, 1, 28, 28)
    rows_inked = (resized.images[0, 0] > 127).any(1).sum().item()
    assert rows_inked < 20  # the 20-row stroke shrinks to 28/32 of its height

    # smaller images are zero-padded around the centre, odd margins bottom / right
    small = ImageTensors(torch.full((1, 1, 3, 3), 9, dtype=torch.uint8), None, "small")
    grown = small.with_shape(1, 6, fit="center").images[0, 0]
    assert grown[1:4, 1:4].eq(9).all() and grown.sum().item() == 81
    with pytest.raises(DataError, match="unknown fit 'crop'"):
        small.with_shape(1, 6, fit="crop")
    with pytest.raises(ValueError, match="fit"):
        DomainSpec(name="mnist-m", fit="crop")


def test_pad_puts_frame_filling_digits_in_mnists_box(tmp_path):
    # USPS's digits fill their 16 px frame; MNIST's sit in a 20 px box of 28
    frame = np.full((2, 16, 16), 255, np.uint8)
    np.savez(tmp_path / "usps.npz", x_train=frame, y_train=[0, 1], x_test=frame, y_test=[0, 1])

    def inked_rows(pad: int) -> int:
        spec = DomainSpec(name="usps", root=tmp_path, pad=pad)
        image = build_domain(spec, "test", image_size=28, channels=1).images[0, 0]
        return int((image > 127).any(1).sum())

    assert inked_rows(0) == 28
    assert inked_rows(3) == 20  # 16 -> 22 px, resized to 28: 16 * 28 / 22 = 20.4
    with pytest.raises(ValueError, match="pad"):
        DomainSpec(name="usps", pad=-1)


def test_binarize_gives_mnist_the_stroke_mask_mnistm_blends(tmp_path, random_digits_npz):
    # MNIST-M = |patch - 255 * (digit > 0)|: the binarised source is the target's mask
    random_digits_npz(tmp_path / "mnist.npz", (28, 28), 3, 3)
    raw = build_domain(DomainSpec(name="mnist", root=tmp_path), "test", 28, channels=1)
    spec = DomainSpec(name="mnist", root=tmp_path, binarize=0, pad=2, fit="center")
    binary = build_domain(spec, "test", 32, channels=1).images[:, 0]
    assert set(binary.unique().tolist()) == {0, 255}
    assert torch.equal(binary[:, 2:30, 2:30] > 0, raw.images[:, 0] > 0)
    assert binary[:, :2].eq(0).all()  # the pad comes after: the frame stays black
    at_128 = build_domain(spec.model_copy(update={"binarize": 128}), "test", 32, 1)
    assert torch.equal(at_128.images[:, 0, 2:30, 2:30] > 0, raw.images[:, 0] > 128)
    with pytest.raises(ValueError, match="binarize"):
        DomainSpec(name="mnist", binarize=255)


def test_mnistm_style_binarize_sets_the_blend_threshold():
    # same photo crops; MNIST-M's threshold 0 adds exactly the faint edge pixels
    from counterfeit.gan.data import embedded

    def blend(**kw):
        spec = DomainSpec(name="mnistm-style", n_test=20, **kw)
        return build_domain(spec, "test", 28).images

    digits = embedded.mnist_small("test").take(20, seed=0).images[:, 0]
    changed = (blend(binarize=0) != blend()).any(1)
    assert torch.equal(changed, (digits > 0) & (digits <= 127))
    assert torch.equal(blend(binarize=127), blend())


def test_unknown_domain_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"known domains: .*mnist-m.*synthetic-digits"):
        build_domain(DomainSpec(name="mnist-n"), "train", 28)


def test_style_only_for_rendered_digits():
    with pytest.raises(ConfigError, match="synthetic-digits only"):
        build_domain(DomainSpec(name="mnist-small", style=DigitStyle()), "train", 28)


def test_image_tensors_contract():
    with pytest.raises(DataError, match="uint8"):
        ImageTensors(torch.rand(2, 3, 8, 8), None, "x")
    with pytest.raises(DataError, match=r"C = 1 or 3, got \(2, 4, 8, 8\)"):
        ImageTensors(torch.zeros(2, 4, 8, 8, dtype=torch.uint8), None, "x")
    with pytest.raises(DataError, match="2 images but labels"):
        ImageTensors(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.zeros(3), "x")
    data = ImageTensors(torch.full((2, 1, 8, 8), 255, dtype=torch.uint8), None, "x")
    x, y = data.get_batch(torch.tensor([0, 1]))
    assert x.dtype == torch.float32 and float(x.max()) == 1.0 and y.tolist() == [-1, -1]


# -- loaders ------------------------------------------------------------------------


def _indexed(n=23):
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1)
    return ImageTensors(images, torch.arange(n), "idx")


def test_each_epoch_visits_every_image_once_in_a_new_order():
    loader = InfiniteLoader(_indexed(24), batch_size=6, seed=0)
    epoch0 = torch.cat([next(loader)[1] for _ in range(4)])
    epoch1 = torch.cat([next(loader)[1] for _ in range(4)])
    assert sorted(epoch0.tolist()) == list(range(24)) == sorted(epoch1.tolist())
    assert epoch0.tolist() != epoch1.tolist() and loader.epoch == 1


def test_loader_resumes_mid_epoch_to_the_same_batches():
    a = InfiniteLoader(_indexed(), batch_size=5, seed=3)
    for _ in range(6):
        next(a)
    state = a.state_dict()
    expected = [next(a)[1].tolist() for _ in range(7)]
    b = InfiniteLoader(_indexed(), batch_size=5, seed=3)
    b.load_state_dict(state)
    assert [next(b)[1].tolist() for _ in range(7)] == expected


def test_ranks_get_disjoint_shards():
    shards = [InfiniteLoader(_indexed(24), 4, seed=0, rank=r, world_size=2) for r in (0, 1)]
    seen = [set(torch.cat([next(s)[1] for _ in range(3)]).tolist()) for s in shards]
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 24


def test_transform_gets_a_reproducible_generator():
    def jitter(batch, generator):
        x, y = batch
        return x + torch.rand(x.shape, generator=generator), y

    a = InfiniteLoader(_indexed(), 4, seed=1, transform=jitter)
    next(a)
    b = InfiniteLoader(_indexed(), 4, seed=1, transform=jitter)
    b.load_state_dict(a.state_dict())
    first, second = next(a)[0], next(b)[0]
    assert torch.equal(first, second)


def test_zip_loader_state_round_trip_and_mismatch():
    zipped = ZipLoader(InfiniteLoader(_indexed(), 4, seed=0), InfiniteLoader(_indexed(), 4, seed=1))
    next(zipped)
    state = zipped.state_dict()
    with pytest.raises(ConfigError, match="2 data streams"):
        ZipLoader(InfiniteLoader(_indexed(), 4)).load_state_dict(state)


def test_too_little_data_for_one_batch():
    with pytest.raises(DataError, match="fewer than one batch of 64"):
        InfiniteLoader(_indexed(10), batch_size=64)


def test_augmentation_is_seeded_by_the_loader_and_keeps_range():
    digits = render_digits(32, seed=0)
    a = InfiniteLoader(digits, 8, seed=5, transform=Augment("strong"))
    b = InfiniteLoader(digits, 8, seed=5, transform=Augment("strong"))
    plain = InfiniteLoader(digits, 8, seed=5)
    xa, ya = next(a)
    xb, _ = next(b)
    xp, yp = next(plain)
    assert torch.equal(xa, xb) and torch.equal(ya, yp)
    assert not torch.equal(xa, xp)
    assert xa.shape == xp.shape and float(xa.min()) >= 0 and float(xa.max()) <= 1
    grey = InfiniteLoader(mnist_small("test"), 4, transform=Augment("light"))
    assert next(grey)[0].shape == (4, 1, 28, 28)
    with pytest.raises(ConfigError, match="unknown augmentation preset"):
        Augment("wild")
