"""The staff password policy and the one password hasher, for the CLI and the dashboard alike.

A password is refused with a `PasswordRejected` carrying a `PasswordProblem` code; the CLI prints
the English message, the dashboard looks up its Swedish text by the code. Neither message ever
contains the password.

Rules (issue 8, finding 10), in the order they are checked:

* 12 to 128 characters. Twelve is where a phrase of three or four words starts, which is what we
  ask staff to choose; 128 is generous for a passphrase and bounds the estimator's work.
* Not containing the username or a part of the person's name (three letters or more).
* Not a repetition ("aaaaaaaaaaaa", "abcabcabcabc") and at least 5 different characters.
* zxcvbn (Dropbox's estimator, maintained on PyPI) must score it 4 (more than 10^10 guesses),
  with the username, the name and the Swedish words staff are most likely to build a password
  from (`LOCAL_WORDS`) as extra dictionary entries, since zxcvbn's own dictionaries are English.
  Score 3 (10^8) still let "Sommar2024!!" through, the pattern Swedish password lists are full
  of; three or four ordinary words ("kaffe utan mjölk") score 4 easily.
"""

from __future__ import annotations

import re
import threading
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pwdlib import PasswordHash

MIN_LENGTH = 12
MAX_LENGTH = 128
MIN_DISTINCT_CHARACTERS = 5
MIN_STRENGTH_SCORE = 4
_NAME_PART_MIN = 3

# Words a Swedish hospital's staff reach for first; zxcvbn knows English words and names only.
LOCAL_WORDS = (
    "hemma", "lösenord", "losenord", "password", "sjukhus", "sjukhuset", "sjuksköterska",
    "sjukskoterska", "läkare", "lakare", "avdelning", "avdelningen", "vården", "varden", "region",
    "regionen", "asih", "hemsjukvård", "välkommen", "valkommen", "sommar", "vinter", "hösten",
    "hosten", "våren", "varen", "januari", "februari", "mars", "april", "maj", "juni", "juli",
    "augusti", "september", "oktober", "november", "december", "måndag", "fredag", "sverige",
    "stockholm", "göteborg", "malmö", "uppsala", "hej", "hejsan", "qwerty", "asdfgh",
)  # fmt: skip

# The example the dashboard's form gives; people copy examples, so it is refused like a name.
EXAMPLE_PHRASE = "kaffe cykel under bron"

# zxcvbn keeps the user inputs of a call in a module-level dictionary, so two threads estimating
# at once could each use the other's words: one estimate at a time.
_ESTIMATOR_LOCK = threading.Lock()


class PasswordProblem(StrEnum):
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    CONTAINS_NAME = "contains_name"
    REPEATED = "repeated"
    TOO_GUESSABLE = "too_guessable"
    SAME_AS_CURRENT = "same_as_current"


_MESSAGES = {
    PasswordProblem.TOO_SHORT: f"password must be at least {MIN_LENGTH} characters",
    PasswordProblem.TOO_LONG: f"password must be at most {MAX_LENGTH} characters",
    PasswordProblem.CONTAINS_NAME: "password must not contain the username or the person's name",
    PasswordProblem.REPEATED: (
        "password must not be a repetition (like 'aaaa' or 'abcabc') and needs at least "
        f"{MIN_DISTINCT_CHARACTERS} different characters"
    ),
    PasswordProblem.TOO_GUESSABLE: "password is too easy to guess: choose a longer phrase of uncommon words",
    PasswordProblem.SAME_AS_CURRENT: "the new password must differ from the current one",
}


class PasswordRejected(ValueError):
    """The password breaks the policy. `problem` is the code; str() is an English sentence without it."""

    def __init__(self, problem: PasswordProblem) -> None:
        super().__init__(_MESSAGES[problem])
        self.problem = problem


def check_password(password: str, *, username: str, display_name: str, current: str | None = None) -> None:
    """Raise PasswordRejected unless `password` is good enough for this member of staff.

    `current`, when given, is the password being replaced (the dashboard's change form).
    """
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(PasswordProblem.TOO_SHORT)
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(PasswordProblem.TOO_LONG)
    if current is not None and password == current:
        raise PasswordRejected(PasswordProblem.SAME_AS_CURRENT)
    folded = password.casefold()
    if any(name in folded for name in _names(username, display_name)):
        raise PasswordRejected(PasswordProblem.CONTAINS_NAME)
    if len(set(folded)) < MIN_DISTINCT_CHARACTERS or re.fullmatch(r"(.+?)\1+", folded, re.DOTALL):
        raise PasswordRejected(PasswordProblem.REPEATED)
    words = [username, *_names(username, display_name), *LOCAL_WORDS, EXAMPLE_PHRASE]
    if _strength(password, words) < MIN_STRENGTH_SCORE:
        raise PasswordRejected(PasswordProblem.TOO_GUESSABLE)


def _names(username: str, display_name: str) -> set[str]:
    """The username, the whole name and each part of either, casefolded, three letters or longer."""
    whole = {username.casefold(), display_name.casefold().replace(" ", "")}
    parts = re.split(r"[\s._\-]+", f"{username} {display_name}".casefold())
    return {name for name in whole | set(parts) if len(name) >= _NAME_PART_MIN}


def _strength(password: str, words: list[str]) -> int:
    from zxcvbn import zxcvbn

    with _ESTIMATOR_LOCK:
        return int(zxcvbn(password, user_inputs=words, max_length=MAX_LENGTH)["score"])


@lru_cache(maxsize=1)
def password_hasher() -> PasswordHash:
    """The one hasher for staff passwords (pwdlib's recommended Argon2id), for storing and checking."""
    from pwdlib import PasswordHash

    return PasswordHash.recommended()


def hash_password(password: str) -> str:
    return password_hasher().hash(password)
