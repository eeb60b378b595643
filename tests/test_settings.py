"""settings.py: where each variable is read from."""

from settings import Settings


def test_settings_read_the_armor_namespace_first_then_the_documented_names(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6379/0")
    assert Settings().redis_url == "redis://elsewhere:6379/0"
    monkeypatch.setenv("ARMOR_REDIS_URL", "redis://ours:6379/0")
    monkeypatch.setenv("ARMOR_MAX_BATCH_SIZE", "8")
    settings = Settings()
    assert settings.redis_url == "redis://ours:6379/0" and settings.max_batch_size == 8
    assert Settings(max_batch_size=3).max_batch_size == 3
