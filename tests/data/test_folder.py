"""Image folders: decoding, resizing, skipping unreadable files, labels, and the cache."""
import os
import warnings

import numpy as np
import pytest
from PIL import Image

import minigan.data.folder as folder_mod
from minigan.data import DatasetError, image_folder, list_images
from minigan.data.errors import DataWarning


def _save(path, array, mode=None, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path, **kwargs)
    return path


def _rgb(h, w, colour):
    return np.broadcast_to(np.array(colour, np.uint8), (h, w, 3)).copy()


@pytest.fixture
def mixed(tmp_path):
    """png + jpg + bmp + webp, RGB and grey, a text file posing as a png, and a README."""
    root = tmp_path / "icons"
    _save(root / "a.png", _rgb(40, 30, (255, 0, 0)))
    _save(root / "sub" / "b.JPG", _rgb(30, 50, (0, 0, 255)), quality=95)
    _save(root / "sub" / "deeper" / "c.bmp", np.full((20, 20), 128, np.uint8))
    _save(root / "d.webp", _rgb(24, 24, (0, 255, 0)), lossless=True)
    (root / "broken.png").write_text("this is not a png")
    (root / "README.txt").write_text("ignored: not an image extension")
    _save(root / ".hidden" / "e.png", _rgb(8, 8, (1, 2, 3)))  # hidden: ignored
    return root


def test_list_images_is_recursive_sorted_and_skips_hidden(mixed):
    names = [p.relative_to(mixed).as_posix() for p in list_images(mixed)]
    assert names == ["a.png", "broken.png", "d.webp", "sub/b.JPG", "sub/deeper/c.bmp"]


def test_mixed_folder(mixed):
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image file\(s\): broken.png") \
            as rec:
        ds = image_folder(mixed, image_size=16)
    # a message for the user: one line, without the file and source line of the code
    w = next(r for r in rec if "unreadable" in str(r.message))
    text = warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line)
    assert text == f"warning: {w.message}\n" and issubclass(w.category, DataWarning)
    assert ds.data.shape == (4, 3, 16, 16) and ds.data.dtype == np.uint8
    assert ds.kind == "image" and ds.labels is None
    mean = ds.data.reshape(4, 3, -1).mean(axis=2)  # order: a.png, d.webp, sub/b.JPG, c.bmp
    np.testing.assert_allclose(mean, [[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]],
                               atol=3)


def test_one_warning_for_many_unreadable(tmp_path):
    _save(tmp_path / "ok.png", _rgb(8, 8, (9, 9, 9)))
    for i in range(5):
        (tmp_path / f"bad{i}.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = image_folder(tmp_path, image_size=8)
    assert len(ds) == 1
    assert len(caught) == 1 and "skipped 5 unreadable" in str(caught[0].message)


def test_grey_folder_gives_one_channel_unless_asked(tmp_path):
    _save(tmp_path / "g1.png", np.full((10, 12), 7, np.uint8))
    _save(tmp_path / "g2.png", np.full((12, 10), 200, np.uint8))
    ds = image_folder(tmp_path, image_size=8)
    assert ds.data.shape == (2, 1, 8, 8)
    np.testing.assert_array_equal(ds.data[:, 0, 0, 0], [7, 200])
    assert image_folder(tmp_path, image_size=8, channels=3).data.shape == (2, 3, 8, 8)


def test_colour_to_grey_when_asked(tmp_path):
    _save(tmp_path / "c.png", _rgb(8, 8, (255, 0, 0)))
    ds = image_folder(tmp_path, image_size=8, channels=1)
    assert ds.data.shape == (1, 1, 8, 8) and ds.data[0, 0, 0, 0] == 76  # ITU-R 601 luma


def test_shorter_side_resized_then_centre_cropped(tmp_path):
    image = _rgb(20, 40, (0, 255, 0))
    image[:, :5] = (255, 0, 0)   # cut off by the crop
    image[:, 35:] = (0, 0, 255)  # cut off by the crop
    _save(tmp_path / "wide.png", image)
    ds = image_folder(tmp_path, image_size=16)  # 40x20 -> 32x16 -> centre 16x16
    assert ds.data.shape == (1, 3, 16, 16)
    assert ds.data[0, 1].min() >= 250 and ds.data[0, 0].max() <= 5 and ds.data[0, 2].max() <= 5


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:4] = (0, 0, 0, 255)
    _save(tmp_path / "t.png", rgba)
    ds = image_folder(tmp_path, image_size=8)
    assert ds.data.shape == (1, 3, 8, 8)
    assert (ds.data[0, :, :3] == 0).all() and (ds.data[0, :, 5:] == 255).all()


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    _save(tmp_path / "g16.png", np.full((8, 8), 32768, np.uint16))  # opens as I;16
    ds = image_folder(tmp_path, image_size=8)
    assert ds.data.shape == (1, 1, 8, 8) and (ds.data == 128).all()


def test_class_labels_from_subfolders(tmp_path):
    for i, cls in enumerate(["dog", "cat", "cat"]):
        _save(tmp_path / cls / f"{i}.png", _rgb(8, 8, (i, i, i)))
    ds = image_folder(tmp_path, image_size=8)
    assert ds.classes == ("cat", "dog") and ds.num_classes == 2
    assert ds.labels.tolist() == [0, 0, 1]  # cat/1.png, cat/2.png, dog/0.png


def test_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty: no image files \(.png, .jpg"):
        image_folder(tmp_path / "empty")
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="no image files"):
        image_folder(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_text("not an image")
    with pytest.raises(DatasetError, match="none of the 1 image files could be read"):
        image_folder(tmp_path / "bad")
    with pytest.raises(DatasetError, match="none of the 1 image files could be read"):
        image_folder(tmp_path / "bad", channels=3)
    with pytest.raises(DatasetError, match="image_size"):
        image_folder(tmp_path / "bad", image_size=0)
    with pytest.raises(DatasetError, match="channels"):
        image_folder(tmp_path / "bad", channels=2)


def _forbid_decoding(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("decoded again despite a valid cache")

    monkeypatch.setattr(folder_mod, "_decode_all", fail)


def test_second_call_hits_the_cache(mixed, monkeypatch, isolated):
    with pytest.warns(UserWarning):
        first = image_folder(mixed, image_size=16)
    assert len(list((isolated / "folders").glob("*.npz"))) == 1
    _forbid_decoding(monkeypatch)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):  # still reported
        second = image_folder(mixed, image_size=16)
    np.testing.assert_array_equal(first.data, second.data)


def test_cache_key_follows_files_and_settings(tmp_path, isolated):
    path = _save(tmp_path / "a.png", _rgb(8, 8, (10, 10, 10)))
    image_folder(tmp_path, image_size=8)
    _save(path, _rgb(8, 8, (90, 90, 90)))
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    assert image_folder(tmp_path, image_size=8).data[0, 0, 0, 0] == 90
    assert len(list((isolated / "folders").glob("*.npz"))) == 1  # the stale entry is gone
    assert image_folder(tmp_path, image_size=4).data.shape == (1, 3, 4, 4)


def test_corrupt_cache_is_rebuilt(tmp_path, isolated):
    _save(tmp_path / "a.png", _rgb(8, 8, (10, 10, 10)))
    image_folder(tmp_path, image_size=8)
    (entry,) = (isolated / "folders").glob("*.npz")
    entry.write_bytes(b"garbage")
    assert image_folder(tmp_path, image_size=8).data.shape == (1, 3, 8, 8)
    assert entry.stat().st_size > 100


def _rewrite_entry(entry, **replace):
    """Rewrite a cache entry with some arrays replaced and the others (its key digest) kept."""
    with np.load(entry) as z:
        arrays = {name: z[name] for name in z.files}
    np.savez(entry, **{**arrays, **replace})


@pytest.mark.parametrize("shape", [(1, 1, 4, 4), (1, 2, 8, 8), (1, 3, 8, 4)])
def test_cache_of_another_shape_is_rebuilt(tmp_path, isolated, shape):
    """A cache file whose images are not (channels, image_size, image_size) is damaged or
    foreign: decoded again, as any other corruption, never trained on."""
    _save(tmp_path / "a.png", _rgb(8, 8, (10, 10, 10)))
    image_folder(tmp_path, image_size=8)
    (entry,) = (isolated / "folders").glob("*.npz")
    _rewrite_entry(entry, images=np.zeros(shape, np.uint8))
    ds = image_folder(tmp_path, image_size=8)
    assert ds.data.shape == (1, 3, 8, 8) and ds.data[0, 0, 0, 0] == 10
    with np.load(entry) as z:  # and the cache holds the right array again
        assert z["images"].shape == (1, 3, 8, 8)


def test_cache_is_checked_against_the_channels_asked_for(tmp_path, isolated):
    _save(tmp_path / "a.png", np.full((8, 8), 40, np.uint8))
    image_folder(tmp_path, image_size=8, channels=1)
    (entry,) = (isolated / "folders").glob("*.npz")
    _rewrite_entry(entry, images=np.zeros((1, 3, 8, 8), np.uint8))
    assert image_folder(tmp_path, image_size=8, channels=1).data.shape == (1, 1, 8, 8)


@pytest.fixture
def twenty(tmp_path):
    root = tmp_path / "twenty"
    for i in range(20):
        _save(root / f"{i:02d}.png", _rgb(8, 8, (10 * i, 0, 0)))
    return root


@pytest.mark.parametrize("damage", ["empty, other files", "other files", "empty", "no key"])
def test_cache_not_matching_the_folder_is_rebuilt(twenty, isolated, damage):
    """An entry that is a valid npz but does not describe the folder (none of its files, or
    no image at all) is decoded again and replaced, not trained on at every later run."""
    first = image_folder(twenty, image_size=8)
    (entry,) = (isolated / "folders").glob("*.npz")
    empty = np.zeros((0, 3, 8, 8), np.uint8)
    if damage == "no key":  # as a cache of version 1 would be, under this name
        with np.load(entry) as z:
            np.savez(entry, images=z["images"], kept=z["kept"])
    else:
        others = np.array([f"gone{i}.png" for i in range(3)])
        _rewrite_entry(entry, **{"empty, other files": {"images": empty, "kept": others[:0]},
                                 "other files": {"images": first.data[:3], "kept": others},
                                 "empty": {"images": empty, "kept": others[:0]}}[damage])
    for _ in range(2):  # and the entry is good again
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "skipped ... unreadable" warning
            ds = image_folder(twenty, image_size=8)
        np.testing.assert_array_equal(ds.data, first.data)
    with np.load(entry) as z:
        assert len(z["images"]) == 20 and len(z["kept"]) == 20


def test_cache_entry_of_another_folder_state_is_rebuilt(twenty, isolated):
    """An entry copied over the current one from an older state of the folder (one image
    fewer): its file list is a subset, but its key digest is not the folder's."""
    (twenty / "19.png").rename(twenty.parent / "19.png")
    image_folder(twenty, image_size=8)
    (old,) = (isolated / "folders").glob("*.npz")
    stale = old.read_bytes()
    (twenty.parent / "19.png").rename(twenty / "19.png")
    full = image_folder(twenty, image_size=8)
    (entry,) = (isolated / "folders").glob("*.npz")
    entry.write_bytes(stale)
    assert len(image_folder(twenty, image_size=8)) == len(full) == 20


def test_cache_can_be_disabled(tmp_path, isolated):
    _save(tmp_path / "a.png", _rgb(8, 8, (10, 10, 10)))
    image_folder(tmp_path, image_size=8, cache=False)
    assert not (isolated / "folders").exists()
