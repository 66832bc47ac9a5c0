"""Masking URLs: passwords, query values and path segments that look like tokens."""

from __future__ import annotations

import pytest

from notifier.masking import mask_url


@pytest.mark.parametrize(("url", "shown"), [
    ("https://hooks.example.com/hooks/a1b2c3d4e5f6g7h8i9j0",
     "https://hooks.example.com/hooks/****i9j0"),
    ("https://hooks.example.com/T0001/B0001/XXXXXXXXXXXXXXXX0001/in",
     "https://hooks.example.com/T0001/B0001/****0001/in"),
    ("https://h.example.com/v1/6f0c5b8e-2d55-4c7e-9a53-3c1f0e8b9a10",
     "https://h.example.com/v1/****9a10"),
    ("https://h.example.com/repository-notifications/in",  # words, not a token
     "https://h.example.com/repository-notifications/in"),
    ("https://h.example.com/v2/build42", "https://h.example.com/v2/build42"),  # short
])
def test_token_like_path_segments_are_masked(url, shown):
    assert mask_url(url) == shown
