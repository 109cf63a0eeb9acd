"""Relative file paths are made absolute for workers that run elsewhere (Ray)."""

import os

from keras_tl.config.paths import absolute_paths


def test_existing_relative_files_become_absolute_and_the_rest_is_unchanged(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.npz").write_bytes(b"")
    (tmp_path / "table.csv").write_text("a,label\n")
    (tmp_path / "images").mkdir()
    (tmp_path / "source.keras").write_bytes(b"")
    config = {
        "sources": [{"task": "npz:data/train.npz", "model": {"file": "source.keras"}},
                    {"task": "digits:0-4", "model": {"keras_hub": "bert_tiny_en"}}],
        "target": {"task": "csv:table.csv?label=label", "train_sizes": [10]},
        "other": {"task": "images:images"},
        "missing": {"task": "npz:not/there.npz"},
        "absolute": {"task": f"npz:{tmp_path}/data/train.npz"},
        "seeds": 3,
    }

    result = absolute_paths(config, str(tmp_path))

    root = os.path.abspath(str(tmp_path))
    assert result == {
        "sources": [{"task": f"npz:{root}/data/train.npz",
                     "model": {"file": f"{root}/source.keras"}},
                    {"task": "digits:0-4", "model": {"keras_hub": "bert_tiny_en"}}],
        "target": {"task": f"csv:{root}/table.csv?label=label", "train_sizes": [10]},
        "other": {"task": f"images:{root}/images"},
        "missing": {"task": "npz:not/there.npz"},
        "absolute": {"task": f"npz:{tmp_path}/data/train.npz"},
        "seeds": 3,
    }
    assert config["sources"][0]["task"] == "npz:data/train.npz"
