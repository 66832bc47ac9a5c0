"""Configuration: settings from the environment and the Celery configuration built from them."""

from config.settings import ConfigurationError, Settings, get_settings, load_settings

__all__ = ["ConfigurationError", "Settings", "get_settings", "load_settings"]
