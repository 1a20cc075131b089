"""Input errors that name the file, line and field at fault.

Every loader and config reader raises `InputError`; the CLI prints it and exits non-zero
before any output file is written. Never raise a bare KeyError/ValueError for user input.
"""

from __future__ import annotations

from axolotl_mistake.redact import redact_text


class FieldError(ValueError):
    """A check across a config's keys that blames one of them: raised in a model validator with
    the dotted key (relative to the validated model), so the config loader names that key, its
    line, or the flag that set it, instead of the config's first line."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class InputError(ValueError):
    """Bad user input, located as precisely as possible."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(f"{self.file}" + (f":{self.line}" if self.line is not None else ""))
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(f"field '{self.field}'")
        prefix = ", ".join(where)
        # a URL a user gave (a presigned data file, a proxy with a password) may be quoted
        # by the message or be its location: printed and recorded without its secrets
        return redact_text(f"{prefix}: {self.message}" if prefix else self.message)


def first_line(exc: BaseException) -> str:
    """An exception's first message line (its type's name when it has none): enough to say
    why a model would not load, without the library's traceback-length detail."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class BuildFailed(RuntimeError):
    """The build ran but its result cannot be used: too many model calls failed, or nothing
    trainable came out. Nothing is written as if it were a result; finished calls stay cached."""
