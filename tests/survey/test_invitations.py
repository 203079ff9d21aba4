"""Invitations: tokens derived from the secret, rows created from sampled units."""

from __future__ import annotations

import pytest

from survey.tokens import TOKEN_LENGTH, looks_like_token, token_for, token_hash

SECRET = bytes(range(32))


def test_token_is_stable_short_and_case_insensitive() -> None:
    token = token_for(SECRET, 42)
    assert token == token_for(SECRET, 42)
    assert len(token) == TOKEN_LENGTH == 16
    assert looks_like_token(token) and looks_like_token(token.upper())
    assert token_hash(token) == token_hash(token.upper()) == token_hash(f" {token} ")
    assert len(token_hash(token)) == 64


def test_tokens_differ_by_invitation_and_by_secret() -> None:
    tokens = {token_for(SECRET, i) for i in range(1, 2001)}
    assert len(tokens) == 2000
    assert token_for(SECRET, 1) != token_for(bytes(32), 1)


@pytest.mark.parametrize("bad", [0, -1, True, "7"])
def test_token_refuses_ids_that_are_not_invitation_ids(bad: object) -> None:
    with pytest.raises(ValueError, match="invitation_id"):
        token_for(SECRET, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("candidate", ["", "short", "0" * 16, "uycuxjh5qmbgxym!", "a" * 17])
def test_shape_check_rejects_non_tokens(candidate: str) -> None:
    assert not looks_like_token(candidate)
