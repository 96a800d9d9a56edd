"""FinetuneRequest: built once from the stage settings, read back unchanged by each process."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reclora_pipeline.errors import ParameterError, UserInputError
from reclora_pipeline.finetune import launch
from reclora_pipeline.finetune.request import FinetuneRequest, build_request
from reclora_pipeline.finetune.run import user_dim
from reclora_pipeline.finetune.settings import FinetuneStageSettings
from reclora_pipeline.typed_settings import parse


def _settings(tmp_path, **params) -> FinetuneStageSettings:
    training = {"epochs": 3, "max_length": 64, "checkpoint_folder": str(tmp_path / "ckpt")}
    return parse(FinetuneStageSettings, {"training": training, **params}, "finetune")


def test_request_takes_the_prepared_model_unless_one_is_named(tmp_path):
    settings = _settings(tmp_path)
    request = build_request("reclora", settings, "prepared/model", n_users=7, user_dim=4)
    assert request.model == "prepared/model" and request.n_users == 7
    assert request.training is settings.training and request.lora.user_dim == 4
    assert request.checkpoint_dir == str((tmp_path / "ckpt" / "reclora").resolve())
    named = build_request("reclora", _settings(tmp_path, model="hub/model"), "prepared", 7, 4)
    assert named.model == "hub/model"


def test_request_round_trips_through_the_launchers_request_file(tmp_path):
    request = build_request("vanilla_lora", _settings(tmp_path), "some/model", 5, 3)
    rows = pa.table({"sample_id": [1, 2], "user_repr": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]})
    launch.write_request(tmp_path / "run", request, rows)
    text = (tmp_path / "run" / launch.REQUEST_FILE).read_text()
    assert FinetuneRequest.from_dict(json.loads(text)) == request
    assert pq.read_table(tmp_path / "run" / launch.ROWS_FILE).equals(rows)


def test_no_checkpoint_folder_keeps_no_checkpoints(tmp_path):
    settings = parse(FinetuneStageSettings, {"training": {"checkpoint_folder": None}}, "finetune")
    assert build_request("reclora", settings, "m", 1, 2).checkpoint_dir is None


def test_an_unknown_arm_is_refused(tmp_path):
    with pytest.raises(ParameterError, match="unknown arm 'reclora_no_gate'"):
        build_request("reclora_no_gate", _settings(tmp_path), "m", 1, 2)


def test_user_dim_is_the_width_of_the_crm_representation():
    rows = pa.table({"user_repr": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]})
    assert user_dim(rows) == 3
    with pytest.raises(UserInputError, match="rerun the few2many pipeline"):
        user_dim(rows.slice(0, 0))
