"""Stream a dataset through `datasets.load_dataset(..., streaming=True)` as located records.

Used for Hub ids (PKU-Alignment/PKU-SafeRLHF, Anthropic/hh-rlhf, ...), local folders laid out
like a Hub repo, and the packaged 'json'/'csv'/'parquet' builders with `data_files`. Streaming
keeps memory flat on the large Hub versions. Never downloads a whole split into memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from axolotl_mistake.errors import InputError
from axolotl_mistake.sources.base import Record, SourceBase


def _read_errors() -> tuple[type[BaseException], ...]:
    """What a stream raises when a file or the connection fails mid-read: OSError (files, and
    huggingface_hub's HTTP errors) and httpx's transport errors, which are not OSErrors."""
    try:
        import httpx
    except ImportError:  # huggingface_hub < 1 reads through requests (its errors are OSErrors)
        return (OSError,)
    return (OSError, httpx.HTTPError)


def _one_line(err: BaseException, limit: int = 400) -> str:
    """`Type: message` on one line (the library's messages span lines; the CLI prints one)."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= limit else text[:limit] + "…"


@contextmanager
def _library_errors_unlogged() -> Iterator[None]:
    """The library logs a failed read ("Failed to read file ...") before raising it; the
    InputError carries that message already, so the log line is held back."""
    logger = logging.getLogger("datasets")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _stopped(cfg: SourceBase, row: int, err: BaseException, what: str, why: str) -> InputError:
    """The error for a stream that failed after `row` rows, located at the next row and at the
    key that named the data (`data_files`, else `hub_id`)."""
    return InputError(
        f"{what} ({_one_line(err)}). {why}",
        file=cfg.location,
        line=row + 1,
        field=data_key(cfg),
    )


def no_records(cfg: SourceBase, part: str | None = None) -> InputError:
    """The error for data that holds not a single row (as a local file with no records is):
    a source that silently gives nothing hides a wrong file or split. `part`: what is empty
    (default: the split)."""
    return InputError(
        f"the data holds no records ({part or f'split {cfg.split!r}'} is empty)",
        file=cfg.location,
        field=data_key(cfg),
    )


def data_key(cfg: SourceBase) -> str:
    """The config key that named the data: `data_files`, else `hub_id`."""
    return "data_files" if cfg.data_files is not None else "hub_id"


def iter_hub_records(cfg: SourceBase) -> Iterator[Record]:
    """Yield the rows of `cfg.split` one by one; `line` is the 1-based row number in the split.

    Data without a single row (empty files, blank lines only, `[]`, a CSV header alone) is an
    InputError, as it is for a local file."""
    import datasets
    from datasets.exceptions import DatasetGenerationError

    read_errors = _read_errors()  # here, not at import: httpx comes with datasets anyway

    kwargs = {
        "name": cfg.config,
        "data_dir": cfg.data_dir,
        # a bare file list belongs to the configured split (load_dataset would call it "train")
        "data_files": (
            cfg.data_files
            if cfg.data_files is None or isinstance(cfg.data_files, dict)
            else {cfg.split: cfg.data_files}
        ),
        "split": cfg.split,
        "revision": cfg.revision,
        "streaming": True,
    }
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    where = cfg.location
    # the boundary to a user-named dataset: every failure to open it is a config problem
    try:
        stream = datasets.load_dataset(cfg.hub_id, **kwargs)
    except StopIteration as err:
        # the packaged builders read the first block to infer the columns: there is none
        raise no_records(cfg) from err
    except Exception as err:
        raise InputError(
            f"cannot load dataset '{cfg.hub_id}' ({_one_line(err)}). Check the id, "
            "`config`, `data_dir`, `split` and `revision`, and that the Hub is reachable "
            "(HF_HUB_OFFLINE=1 only finds datasets already cached or local)",
            file=where,
            field="hub_id",
        ) from err
    row = 0
    rows = iter(stream)
    while True:
        try:
            with _library_errors_unlogged():
                data = next(rows)
        except StopIteration:
            if row == 0:
                raise no_records(cfg) from None
            return
        except InputError:
            raise
        except (ValueError, UnicodeError, DatasetGenerationError) as err:
            # datasets parses files in blocks: the bad row is the next one or a later one
            why = (
                "The dataset library cannot name the field; for line-exact errors read a local "
                "file with `path:` instead"
            )
            raise _stopped(cfg, row, err, f"cannot read the rows after row {row}", why) from err
        except read_errors as err:
            # streaming opens each file or Hub shard when it reaches it
            why = (
                "A file of the dataset went missing or the connection to the Hub failed; check "
                "it and rerun (a build resumes from its call cache)"
            )
            raise _stopped(cfg, row, err, f"reading stopped after row {row}", why) from err
        row += 1
        yield Record(data=dict(data), file=where, line=row)
