"""Data loading: labels.csv folders, CT2 parquet (wide and long), bad data, augmentation."""

from __future__ import annotations

import csv
import random
from dataclasses import replace

import numpy as np
import torch
import pytest
from PIL import Image

from genspot.training.data.augment import Augmenter, quantized
from genspot.training.config import AugmentConfig
from genspot.training.data.data import (
    IMAGE_STORE_ENV,
    DataError,
    DetectorDataset,
    collate,
    generator_names,
    load_samples,
    split_samples,
)
from genspot.training.data.losses import IGNORE_INDEX


def test_labels_csv_folder_skips_corrupt_image_and_logs_it(synthetic_dataset, caplog):
    with caplog.at_level("WARNING"):
        samples = load_samples(synthetic_dataset, progress=False)
    assert len(samples) == 24  # 25 rows, the corrupt file skipped
    assert "skipped 1 unreadable image" in caplog.text and "corrupt.png" in caplog.text
    assert generator_names(samples) == ["blocky_gan", "stripe_diffusion"]
    assert any(s.caption == "" for s in samples)
    assert all(s.digest and len(s.digest) == 64 for s in samples)


def test_split_column_is_used_and_hold_out_is_stratified(synthetic_dataset):
    samples = load_samples(synthetic_dataset, progress=False)
    train, val = split_samples(samples, 0.5)
    assert {s.split for s in val} == {"val"} and len(val) == 6 and len(train) == 18
    unsplit = [s.__class__(**{**s.__dict__, "split": None}) for s in samples]
    train, val = split_samples(unsplit, 0.25, seed=1)
    assert len(val) == 6 and {s.label_b for s in val} == {"real", "blocky_gan", "stripe_diffusion"}
    assert not {s.key for s in train} & {s.key for s in val}


def test_missing_column_is_a_one_line_error(tmp_path):
    (tmp_path / "labels.csv").write_text("image,caption,label_a\nx.png,,1\n")
    with pytest.raises(DataError, match="missing column 'label_b'") as info:
        load_samples(tmp_path, progress=False)
    assert "\n" not in str(info.value)


def test_bad_label_value_names_the_line(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    (tmp_path / "labels.csv").write_text("image,caption,label_a,label_b\nx.png,,maybe,real\n")
    with pytest.raises(DataError, match="labels.csv:2: label_a must be 0 or 1"):
        load_samples(tmp_path, progress=False)


def test_unlabelled_folder_of_images(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    samples = load_samples(tmp_path, require_labels=False, progress=False)
    assert [(s.key, s.label_a, s.caption) for s in samples] == [("a.png", -1, "")]
    with pytest.raises(DataError, match="no labels.csv"):
        load_samples(tmp_path, progress=False)


def test_ct2_parquet_wide_and_long_rows(ct2_parquet, image_store):
    samples = load_samples(ct2_parquet, progress=False)
    wide = [s for s in samples if s.key.startswith("train_wide")]
    long = [s for s in samples if s.key.startswith("val_long")]
    assert len(wide) == 12 and len(long) == 6
    assert {s.split for s in wide} == {"train"} and {s.split for s in long} == {"val"}
    assert sorted(s.label_b for s in wide[:6]) == sorted(["real", "sd21", "sdxl", "sd3", "dalle", "midjourney"])
    assert [s.label_a for s in wide[:6]] == [0, 1, 1, 1, 1, 1]
    assert [s.label_b for s in long] == ["real", "sd21", "sdxl", "sd3", "dalle", "midjourney"]
    assert wide[6].caption == "" and wide[0].caption == "a red bus on a street"
    assert generator_names(samples) == ["dalle", "midjourney", "sd21", "sd3", "sdxl"]
    assert samples[0].open_image().size == (64, 64)
    assert all(s.data is None and s.stored and s.path == image_store / s.digest[:2] / s.digest for s in samples)  # not in memory


def test_parquet_images_are_stored_once_and_an_unwritable_store_is_one_clear_error(ct2_parquet, tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv(IMAGE_STORE_ENV, str(store))
    first = load_samples(ct2_parquet, progress=False)
    stored = {path: path.stat().st_mtime_ns for path in store.rglob("*") if path.is_file()}
    assert sorted(p.name for p in stored) == sorted({s.digest for s in first})  # one file per distinct image
    second = load_samples(ct2_parquet, progress=False)
    assert [s.path for s in second] == [s.path for s in first]
    assert {path: path.stat().st_mtime_ns for path in store.rglob("*") if path.is_file()} == stored  # not rewritten
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(IMAGE_STORE_ENV, str(tmp_path / "a-file" / "store"))
    with pytest.raises(DataError, match="cannot write the image store .* point GENSPOT_IMAGE_STORE at a writable folder"):
        load_samples(ct2_parquet, progress=False)


def test_ct2_parquet_missing_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"Caption": ["x"], "Image": [b""], "Label_A": [1]}), tmp_path / "test.parquet")
    with pytest.raises(DataError, match="missing column 'Label_B'"):
        load_samples(tmp_path, progress=False)


def test_unknown_dataset_name_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not a local folder or parquet file|cannot load Hugging Face dataset"):
        load_samples(str(tmp_path / "nowhere" / "dataset"), progress=False)


def test_dataset_items_and_collate(synthetic_dataset):
    samples = load_samples(synthetic_dataset, progress=False)
    labels_b = generator_names(samples)
    dataset = DetectorDataset(samples, labels_b, image_size=32, blank_captions=True)
    batch = collate([dataset[i] for i in range(len(dataset))])
    assert batch["image"].shape == (24, 3, 32, 32) and 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    assert set(batch["caption"]) == {""}
    real = batch["label_a"] == 0
    assert (batch["label_b"][real] == IGNORE_INDEX).all() and (batch["label_b"][~real] >= 0).all()


def test_dataset_re_encodes_as_jpeg_or_skips_pixels(synthetic_dataset):
    samples = load_samples(synthetic_dataset, progress=False)[:4]
    clean = DetectorDataset(samples, [], image_size=32)[0]["image"]
    recompressed = DetectorDataset(samples, [], image_size=32, jpeg_quality=30)[0]["image"]
    assert recompressed.shape == clean.shape and 0 < (recompressed - clean).abs().mean() < 0.1
    gone = [replace(s, path=s.path.with_name("deleted.png")) for s in samples]  # never opened
    batch = collate([DetectorDataset(gone, [], image_size=32, pixels=False)[i] for i in range(4)])
    assert batch["image"].numel() == 0 and len(batch["caption"]) == 4


def test_augmenter_changes_pixels_and_drops_captions():
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    always = AugmentConfig(flip_prob=0, crop_prob=1, resize_prob=1, blur_prob=1, jpeg_prob=1, noise_prob=1, caption_dropout=1.0)
    augmenter = Augmenter(always, random.Random(0))
    out = augmenter.picture(picture)
    assert out.mode == "RGB" and out.size != picture.size  # cropped and resized
    assert augmenter.drop_caption("a cat") == ""
    disabled = Augmenter(AugmentConfig(enabled=False, caption_dropout=0.0), random.Random(0))
    assert disabled.picture(picture) is picture and disabled.drop_caption("a cat") == "a cat"


def test_augmenter_is_reproducible_with_a_seed():
    picture = Image.fromarray(np.random.default_rng(1).integers(0, 255, (48, 48, 3), dtype=np.uint8))
    config = AugmentConfig(crop_prob=0.5, jpeg_prob=0.5, noise_prob=0.5, blur_prob=0.5)
    first = [np.asarray(Augmenter(config, random.Random(7)).picture(picture)) for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])
    # ... and the seed decides: other seeds give other copies, none of them the picture itself
    copies = [first[0]] + [np.asarray(Augmenter(config, random.Random(seed)).picture(picture)) for seed in (1, 2, 3)]
    distinct = {(copy.shape, copy.tobytes()) for copy in copies} - {(np.asarray(picture).shape, np.asarray(picture).tobytes())}
    assert len(distinct) == len(copies)


def test_train_crop_keeps_the_pixel_grid():
    image = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(2, 8, 8).repeat_interleave(2, 1).repeat_interleave(2, 2)[:1].expand(3, 16, 16)
    config = AugmentConfig(train_crop=6, noise_prob=0.0)
    for seed in range(5):
        crop = Augmenter(config, random.Random(seed)).tensor(image)
        assert crop.shape == (3, 6, 6)
        assert torch.equal(crop[:, 0::2, 0::2], crop[:, 1::2, 1::2])  # 2x2 cells intact: even offsets


def test_noisy_copies_keep_the_8_bit_levels_of_served_pictures():
    picture = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (3, 16, 16))).float() / 255
    noisy = Augmenter(AugmentConfig(noise_prob=1.0, noise_std=(0.01, 0.01)), random.Random(0)).tensor(picture)
    levels = noisy * 255
    assert not torch.equal(noisy, picture)  # noise was added ...
    assert torch.equal(levels, levels.round()) and 0 <= levels.min() and levels.max() <= 255  # ... on 8-bit levels
    assert torch.equal(quantized(picture), picture)  # already 8-bit: unchanged


def test_unlabelled_ct2_long_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.fixtures.data import png_bytes, synthetic_picture

    picture = png_bytes(synthetic_picture("real", np.random.default_rng(0)))
    pq.write_table(pa.table({"Caption": ["a", None], "Image": [picture, picture]}), tmp_path / "test.parquet")
    samples = load_samples(tmp_path, require_labels=False, progress=False)
    assert [(s.label_a, s.label_b, s.caption, s.split) for s in samples] == [(-1, "", "a", "test"), (-1, "", "", "test")]
    with pytest.raises(DataError, match="missing column 'Label_A', 'Label_B'"):
        load_samples(tmp_path, progress=False)


# -- the CT2 schemas, told apart by their columns ------------------------------------------------
def test_ct2_test_split_loads_unlabelled_with_row_numbers_over_shards(tmp_path):
    from tests.fixtures.ct2 import write_test_shards

    truth = write_test_shards(tmp_path / "Defactify4_Test" / "data", (3, 2))
    samples = load_samples(tmp_path / "Defactify4_Test", require_labels=False, progress=False)
    assert [s.row for s in samples] == list(range(5)) == list(range(len(truth)))
    assert [s.key for s in samples] == [f"train-00000-of-00002.parquet#{i}" for i in range(3)] + \
        [f"train-00001-of-00002.parquet#{i}" for i in range(2)]
    # named train-* on the hub, but rows without labels are the test split
    assert {(s.split, s.label_a, s.label_b) for s in samples} == {("test", -1, "")}
    assert samples[4].caption == "test caption 4"
    with pytest.raises(DataError, match="missing column 'Label_A', 'Label_B'"):
        load_samples(tmp_path / "Defactify4_Test", progress=False)  # training needs labels


def test_ct2_long_columns_in_any_case_and_optional_labels(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.fixtures.data import png_bytes, synthetic_picture

    picture = png_bytes(synthetic_picture("real", np.random.default_rng(0)))
    pq.write_table(pa.table({"caption": ["x", "y"], "image": [picture] * 2, "label_a": [1, 0], "label_b": [3, 0]}),
                   tmp_path / "validation.parquet")
    samples = load_samples(tmp_path, progress=False)
    assert [(s.label_a, s.label_b, s.split, s.row) for s in samples] == [(1, "sd3", "val", 0), (0, "real", "val", 1)]


def test_ct2_train_wide_rows_keep_their_row_and_caption_group(tmp_path):
    from tests.fixtures.ct2 import write_train_wide

    write_train_wide(tmp_path / "train.parquet", 2)
    samples = load_samples(tmp_path, progress=False)
    assert [s.row for s in samples] == [0] * 6 + [1] * 6
    assert {s.group for s in samples[:6]} == {"wide caption 0"}


def test_unknown_parquet_schema_names_the_columns_found_and_expected(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"prompt": ["x"], "picture": [b""]}), tmp_path / "odd.parquet")
    with pytest.raises(DataError) as info:
        load_samples(tmp_path, require_labels=False, progress=False)
    message = str(info.value)
    assert "unknown CT2 schema, found columns prompt, picture" in message
    assert "coco_image" in message and "Caption, Image, Label_A, Label_B" in message and "(caption, image)" in message
    assert "\n" not in message


# -- splits by caption / prompt group ----------------------------------------------------------
def test_hold_out_keeps_each_ct2_caption_on_one_side(tmp_path):
    from tests.fixtures.ct2 import write_long

    write_long(tmp_path / "data.parquet", n_captions=10)  # no split in the name: a hold-out
    samples = [s for s in load_samples(tmp_path, progress=False)]
    assert {s.split for s in samples} == {None}
    train, val = split_samples(samples, 0.2, seed=3)
    assert len(val) == 12 and len(train) == 48  # two whole captions of six images
    assert not {s.caption for s in train} & {s.caption for s in val}
    assert sorted(s.label_b for s in val) == sorted(["real", "sd21", "sdxl", "sd3", "dalle", "midjourney"] * 2)
    again = split_samples(samples, 0.2, seed=3)[1]
    assert [s.key for s in again] == [s.key for s in val]  # repeatable
    assert {s.caption for s in split_samples(samples, 0.2, seed=4)[1]} != {s.caption for s in val}


def test_hold_out_keeps_each_prompt_on_one_side_in_folder_data(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    rows = ["image,caption,label_a,label_b"]
    rows += [f"x.png,Prompt {p}  Number,1,gen" for p in range(6) for _ in range(3)]  # 6 prompts x 3 images
    rows += ["x.png,,1,gen"] * 2 + ["x.png,a photo,0,real"] * 4
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    samples = load_samples(tmp_path, progress=False)
    train, val = split_samples(samples, 0.25, seed=0)
    assert not {s.caption.lower() for s in train if s.caption} & {s.caption.lower() for s in val if s.caption}
    assert {s.label_b for s in val} == {"gen"}  # the only real prompt group (4 images) is too big for 1 val image
    assert 4 <= sum(s.label_b == "gen" for s in val) <= 6
