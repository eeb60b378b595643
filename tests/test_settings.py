"""settings.py: where each variable is read from, and the groups each layer is given."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from settings import Environment, load_settings


def test_settings_read_the_armor_namespace_first_then_the_documented_names(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6379/0")
    assert Environment().redis_url == "redis://elsewhere:6379/0"
    monkeypatch.setenv("ARMOR_REDIS_URL", "redis://ours:6379/0")
    monkeypatch.setenv("ARMOR_MAX_BATCH_SIZE", "8")
    settings = load_settings()
    assert settings.shared_cache.redis.url == "redis://ours:6379/0" and settings.batching.max_batch_size == 8
    assert load_settings(max_batch_size=3).batching.max_batch_size == 3


def test_each_cache_layer_gets_its_own_documented_variables(monkeypatch):
    monkeypatch.setenv("ENABLE_FEATURE_CACHING", "false")
    monkeypatch.setenv("RESPONSE_CACHE_SIZE", "7")
    monkeypatch.setenv("PREDICTION_CACHE_MAX_MB", "2.5")
    settings = load_settings()
    assert not settings.feature_cache.enabled and settings.response_cache.enabled
    assert settings.response_cache.entries == 7 and settings.shared_cache.entries == 70
    assert settings.prediction_cache.max_bytes == 2_500_000


def test_the_machine_cache_lives_in_its_own_directory_beside_the_workers_shared_one(tmp_path):
    shared = tmp_path / "prometheus_multiproc_dir"
    settings = load_settings(prometheus_multiproc_dir=str(shared), machine_shared_cache=True)
    assert settings.shared_cache.machine_dir == tmp_path / "armor_machine_cache"
    on = {"prometheus_multiproc_dir": str(shared), "machine_shared_cache": True}
    assert load_settings(**on, machine_cache_dir="/x").shared_cache.machine_dir == Path("/x")
    assert load_settings(prometheus_multiproc_dir=None, machine_shared_cache=True).shared_cache.machine_dir is None
    assert load_settings(**on, cache_backend="redis").shared_cache.machine_dir is None


def test_the_machine_cache_is_off_unless_asked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("MACHINE_SHARED_CACHE", raising=False)
    shared = str(tmp_path / "prometheus_multiproc_dir")
    assert load_settings(prometheus_multiproc_dir=shared).shared_cache.machine_dir is None
    monkeypatch.setenv("MACHINE_SHARED_CACHE", "true")
    assert load_settings(prometheus_multiproc_dir=shared).shared_cache.machine_dir is not None


def test_the_header_read_timeout_defaults_to_10_s_and_0_turns_it_off(monkeypatch):
    for name in ("HEADER_READ_TIMEOUT_S", "ARMOR_HEADER_READ_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)
    assert load_settings().serving.header_read_timeout_s == 10.0
    monkeypatch.setenv("HEADER_READ_TIMEOUT_S", "0")
    assert load_settings().serving.header_read_timeout_s == 0
    monkeypatch.setenv("ARMOR_HEADER_READ_TIMEOUT_S", "2.5")
    assert load_settings().serving.header_read_timeout_s == 2.5
    with pytest.raises(ValidationError):
        load_settings(header_read_timeout_s=-1)


def test_tracing_is_off_unless_asked_for_and_bentomls_runner_probe_is_off():
    from settings import bentoml_service_options

    off, on = load_settings(), load_settings(tracing=True)
    assert bentoml_service_options(off.serving, 1)["tracing"] == {"excluded_urls": [".*"]}
    assert bentoml_service_options(on.serving, 1)["tracing"] == {}
    assert bentoml_service_options(off.serving, 1)["runner_probe"] == {"enabled": False}


def test_shutdown_and_runner_bounds_are_read_from_their_documented_names(monkeypatch):
    monkeypatch.setenv("SHUTDOWN_GRACE_S", "7")
    monkeypatch.setenv("SHUTDOWN_TIMEOUT_S", "20")
    monkeypatch.setenv("RUNNER_UNAVAILABLE_S", "2.5")
    monkeypatch.setenv("READINESS_CHECK_S", "0.25")
    settings = load_settings()
    assert (settings.shutdown.grace_s, settings.shutdown.timeout_s) == (7, 20)
    assert (settings.serving.runner_unavailable_s, settings.serving.readiness_check_s) == (2.5, 0.25)
    monkeypatch.setenv("READINESS_CHECK_S", "1")  # /readyz must answer within 1 s
    with pytest.raises(ValueError):
        load_settings()


def test_the_prediction_log_database_is_sqlite_or_postgresql():
    assert load_settings(database_url="postgresql://u@h/db").prediction_log.database_url == "postgresql://u@h/db"
    with pytest.raises(ValidationError, match="database_url|DATABASE_URL"):
        load_settings(database_url="mysql://u@h/db")
