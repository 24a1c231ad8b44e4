"""Password hashing works the same with or without hashlib.scrypt (PyPy 3.9 lacks it)."""

import hashlib

import pytest

from chatservice import passwords


def test_fallback_computes_the_same_scrypt(monkeypatch):
    """A hash made by one implementation verifies with the other, both ways."""
    made = passwords.hash_password("correct horse")
    if hasattr(hashlib, "scrypt"):
        monkeypatch.delattr(hashlib, "scrypt")
    fallback = passwords.hash_password("correct horse")
    assert passwords.verify_password("correct horse", made)
    assert not passwords.verify_password("wrong horse", made)
    monkeypatch.undo()
    assert passwords.verify_password("correct horse", fallback)


@pytest.mark.parametrize("password", ["", "sesame", "pässwörd ✓"])
def test_hash_is_salted_and_not_the_password(password):
    """Two hashes of one password differ (salt) and contain no trace of it."""
    first, second = passwords.hash_password(password), passwords.hash_password(password)
    assert first != second
    assert first.startswith("$scrypt$")
    assert password == "" or password not in first
