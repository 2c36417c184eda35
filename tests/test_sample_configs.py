"""The sample configs users copy from are valid against the config models."""

from __future__ import annotations

from pathlib import Path

import yaml

from cloud_broker.config import CloudConfig
from edge_agent.config import GatewayConfig

ROOT = Path(__file__).resolve().parent.parent


def test_edge_sample_is_valid() -> None:
    config = GatewayConfig.model_validate(yaml.safe_load(
        (ROOT / "edge_agent" / "sample.yaml").read_text(encoding="utf-8")))
    assert config.devices[0].profile == "dc-smartpole-v1"


def test_cloud_sample_is_valid() -> None:
    config = CloudConfig.model_validate(yaml.safe_load(
        (ROOT / "cloud_broker" / "sample.yaml").read_text(encoding="utf-8")))
    assert config.rule_overrides[0].rule == "sump_level_high"
