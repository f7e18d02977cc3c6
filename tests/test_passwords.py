"""The staff password policy (care.passwords, issue 8 finding 10): one home for the CLI and the dashboard."""

from __future__ import annotations

import pytest

from care.passwords import PasswordProblem, PasswordRejected, check_password, hash_password, password_hasher

SARA = {"username": "sara.sjostrom", "display_name": "Sara Sjöström"}


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("kort", PasswordProblem.TOO_SHORT),
        ("a" * 129, PasswordProblem.TOO_LONG),
        ("aaaaaaaaaaaa", PasswordProblem.REPEATED),
        ("abcabcabcabc", PasswordProblem.REPEATED),
        ("1212121212121", PasswordProblem.REPEATED),
        ("sara.sjostrom2024", PasswordProblem.CONTAINS_NAME),  # the username
        ("Sjöström är bäst 7", PasswordProblem.CONTAINS_NAME),  # a part of the name
        ("SARA sover gott", PasswordProblem.CONTAINS_NAME),
        ("lösenord12345", PasswordProblem.TOO_GUESSABLE),  # Swedish words are on the list
        ("Sommar2024!!", PasswordProblem.TOO_GUESSABLE),
        ("qwertyuiop123", PasswordProblem.TOO_GUESSABLE),
        ("password12345", PasswordProblem.TOO_GUESSABLE),
        ("kaffe cykel under bron", PasswordProblem.TOO_GUESSABLE),  # the form's own example
    ],
)
def test_weak_passwords_are_refused_with_a_code_and_without_repeating_them(
    password: str, problem: PasswordProblem
) -> None:
    with pytest.raises(PasswordRejected) as refused:
        check_password(password, **SARA)
    assert refused.value.problem is problem
    assert password not in str(refused.value) and password.lower() not in str(refused.value).lower()


@pytest.mark.parametrize(
    "password", ["kaffe utan mjölk", "rätt häst batteri häftklammer", "mina tre katter", "GrönBil!2024x"]
)
def test_phrases_of_ordinary_words_are_accepted(password: str) -> None:
    check_password(password, **SARA)


def test_the_new_password_must_differ_from_the_current_one() -> None:
    with pytest.raises(PasswordRejected) as refused:
        check_password("kaffe utan mjölk", **SARA, current="kaffe utan mjölk")
    assert refused.value.problem is PasswordProblem.SAME_AS_CURRENT
    check_password("kaffe utan mjölk", **SARA, current="något helt annat")


def test_one_hasher_stores_argon2id_and_verifies() -> None:
    hashed = hash_password("kaffe utan mjölk")
    assert hashed.startswith("$argon2id$") and "kaffe" not in hashed
    assert password_hasher().verify("kaffe utan mjölk", hashed)
    assert not password_hasher().verify("kaffe utan mjölk!", hashed)
