"""The Serve config that `make cluster` deploys is the one KubeRay's RayService embeds, and it
names importable applications with valid engine settings."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from speech_backend.config import EngineSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_rayservice_embeds_the_serve_config_unchanged():
    serve_config = yaml.safe_load((DEPLOY / "serve.yaml").read_text())
    service = yaml.safe_load((DEPLOY / "rayservice.yaml").read_text())
    assert yaml.safe_load(service["spec"]["serveConfigV2"]) == serve_config


def test_each_application_imports_and_its_engine_settings_validate():
    config = yaml.safe_load((DEPLOY / "serve.yaml").read_text())
    assert [app["name"] for app in config["applications"]] == ["speech-synthesis", "speech-recognition"]
    for app in config["applications"]:
        module, name = app["import_path"].split(":")
        assert callable(getattr(importlib.import_module(module), name))
        EngineSettings.model_validate(app["args"]["engines"])
        for deployment in app["deployments"]:
            scaling = deployment["autoscaling_config"]
            assert 1 <= scaling["min_replicas"] <= scaling["max_replicas"]
            assert set(deployment["ray_actor_options"]) == {"num_cpus", "num_gpus"}


def test_ray_workers_run_at_normal_priority_on_kubernetes_as_locally():
    service = yaml.safe_load((DEPLOY / "rayservice.yaml").read_text())
    cluster = service["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for group in groups:
        env = {e["name"]: e.get("value") for e in group["template"]["spec"]["containers"][0]["env"]}
        assert env["RAY_worker_niceness"] == "0"
