"""Credentials written into a URL (a proxy's `https://user:token@host/v1`, a presigned data URL's
`?X-Amz-Signature=...`) never land in a manifest, dataset card, results file or report: the
project's rule that secrets come from the environment and never reach any output holds for the
ones users paste into URLs too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from axolotl_mistake.redact import redact_url, redact_urls
from dataset_builders.build import main as build_main
from tests.build_support import SERVED, fast_build_argv, origin_source, server, tiny_backend  # noqa: F401

SECRET = "s3cret-pw-42"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://alice:s3cret@host:8000/v1", "http://***@host:8000/v1"),
        ("https://ghp_tok3n@github.com/x.jsonl", "https://***@github.com/x.jsonl"),
        (
            "https://b.s3.amazonaws.com/d.jsonl?X-Amz-Credential=AK%2F1&X-Amz-Signature=ab12&x=1",
            "https://b.s3.amazonaws.com/d.jsonl?X-Amz-Credential=***&X-Amz-Signature=***&x=1",
        ),
        (
            "https://host/v1?api-key=k1&access_token=t2&sig=s3",
            "https://host/v1?api-key=***&access_token=***&sig=***",
        ),
        ("https://host/v1?download=true", "https://host/v1?download=true"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("data/train.jsonl", "data/train.jsonl"),
        ("not a url: a:b@c", "not a url: a:b@c"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redact_urls_walks_nested_config():
    cfg = {
        "model": {"base_url": f"http://u:{SECRET}@h/v1", "n": 3},
        "files": [f"https://h/f?token={SECRET}"],
    }
    out = redact_urls(cfg)
    assert SECRET not in repr(out)
    assert out["model"]["n"] == 3 and out["files"] == ["https://h/f?token=***"]
    assert SECRET in repr(cfg)  # the config itself is left as it was


def test_a_build_records_no_credential_from_its_base_url(server, tmp_path):
    """A build through an endpoint whose URL carries a password: the calls use it, and the
    manifest, card and data files name the endpoint without it."""
    url = server.base_url.replace("http://", f"http://alice:{SECRET}@", 1)
    out, red = tmp_path / "out", tmp_path / "red.jsonl"
    rows = [
        {"prompt": f"How do I do harmful thing {i}?", "response": f"Bad step {i}."}
        for i in range(3)
    ]
    red.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = fast_build_argv(origin_source(red), out)
    argv += ["--model", yaml.safe_dump({"kind": "openai", "base_url": url, "model": SERVED})]
    assert build_main(argv) == 0
    written = [
        p for p in out.rglob("*") if p.is_file() and p.suffix in {".json", ".jsonl", ".md", ".yml"}
    ]
    assert any(p.name == "manifest.json" for p in written)
    for path in written:
        assert SECRET not in path.read_text(), path
    manifest = (out / "manifest.json").read_text()
    assert "http://***@127.0.0.1" in manifest  # still says which endpoint made the data


def test_results_record_no_credential_from_a_base_url(tmp_path: Path):
    """The evaluator's results.json copies its config: a judge or model URL is redacted."""
    from axolotl_mistake.evaluate.inputs import load_config

    cfg_file = tmp_path / "eval.yml"
    cfg_file.write_text(
        yaml.safe_dump(
            {
                "name": "x",
                "model": {"kind": "openai", "model": "m", "base_url": f"http://u:{SECRET}@h/v1"},
                "output_dir": str(tmp_path / "run"),
                "prompt_sets": {"discrimination": "builtin"},
                "judges": [{"kind": "refusal"}],
            }
        )
    )
    from axolotl_mistake.evaluate.runner import recorded_config

    assert SECRET not in repr(recorded_config(load_config(cfg_file)))


def test_the_openai_backend_names_its_endpoint_without_the_credential():
    """Its repr reaches logs and error messages."""
    from axolotl_mistake.generation.openai import OpenAIBackend, OpenAIConfig

    backend = OpenAIBackend(
        OpenAIConfig(kind="openai", model="m", base_url=f"http://u:{SECRET}@127.0.0.1:9/v1")
    )
    assert SECRET not in repr(backend) and "http://***@127.0.0.1:9/v1" in repr(backend)
    assert SECRET in backend.cache_identity  # the calls themselves still use it


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://h/cb#access_token=t1&state=x", "https://h/cb#access_token=***&state=x"),
        ("https://h/d.jsonl?pwd=p&pass=q&jwt=r", "https://h/d.jsonl?pwd=***&pass=***&jwt=***"),
    ],
)
def test_redact_url_masks_fragments_and_more_secret_names(text, expected):
    assert redact_url(text) == expected


def test_redact_text_masks_every_url_quoted_in_a_message():
    from axolotl_mistake.redact import redact_text

    message = (
        f"Unable to find 'http://bob:{SECRET}@127.0.0.1:9/red.jsonl' (data_files="
        f"https://h/a.json?token={SECRET}, split=train), see https://docs.example/x?download=true."
    )
    out = redact_text(message)
    assert SECRET not in out
    assert "'http://***@127.0.0.1:9/red.jsonl'" in out and "token=***, split=train)" in out
    assert "https://docs.example/x?download=true." in out


def test_a_presigned_data_url_is_in_no_row_id_location_or_error(tmp_path, capsys):
    """The source tag (every row's id prefix, hence the training data and the manifest) kept
    a data_files URL's query string, and the location (manifest, card, errors) the whole URL;
    the datasets library's own error message quoted it too."""
    from axolotl_mistake.errors import InputError
    from axolotl_mistake.sources import iter_rows, parse_source_config

    url = f"http://bob:{SECRET}@127.0.0.1:9/red.jsonl?X-Amz-Signature={SECRET}"
    src = parse_source_config(
        {"kind": "jsonl", "hub_id": "json", "data_files": url, "fields": {"instruction": "q"}}
    )
    assert src.source_tag == "jsonl:json/red.jsonl:train"
    assert SECRET not in src.location and "http://***@127.0.0.1:9/red.jsonl" in src.location
    with pytest.raises(InputError) as info:
        list(iter_rows(src))
    assert SECRET not in str(info.value)
    argv = ["--redteam", yaml.safe_dump([src.model_dump(exclude_none=True)]), "--helpful", "[]"]
    assert build_main([*argv, "--output", str(tmp_path / "out"), "--model.model", "x"]) == 2
    assert SECRET not in capsys.readouterr().err


def test_redacting_filter_masks_urls_in_log_records(caplog, monkeypatch):
    """The filter the openai backend puts on httpx's loggers: the record's formatted message
    loses the user info and secret query values; other records and a malformed call pass as
    they are (logging itself reports a bad format)."""
    import logging

    from axolotl_mistake.redact import RedactingFilter, redact_logger

    logger = logging.getLogger("axm.test.redact")
    # Axolotl's logging setup, run in-process by earlier tests, gives loggers made after it a
    # filter of its own that drops INFO
    monkeypatch.setattr(logger, "filters", [])
    redact_logger("axm.test.redact")
    redact_logger("axm.test.redact")  # once only
    assert [type(f) for f in logger.filters] == [RedactingFilter]
    caplog.set_level(logging.INFO, logger="axm.test.redact")
    logger.info("HTTP Request: POST %s %r", "http://bob:pw-9x@h:1/v1/x?api_key=k-77&n=2", "OK")
    logger.info("plain %d", 3)
    text = caplog.text
    assert "http://***@h:1/v1/x?api_key=***&n=2 'OK'" in text and "plain 3" in text
    assert "pw-9x" not in text and "k-77" not in text and "bob" not in text
    bad = logging.LogRecord("x", logging.INFO, __file__, 1, "bad %s %s", ("only one",), None)
    assert RedactingFilter().filter(bad) and bad.msg == "bad %s %s"  # left to logging


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            '127.0.0.1:5 - "GET /v1/models?api-key=sk-1&limit=5 HTTP/1.1" 200',
            '127.0.0.1:5 - "GET /v1/models?api-key=***&limit=5 HTTP/1.1" 200',
        ),
        (
            "see /data/x.jsonl?X-Amz-Signature=abc, then",
            "see /data/x.jsonl?X-Amz-Signature=***, then",
        ),
        ("a plain /path?page=2 stays", "a plain /path?page=2 stays"),
        (
            "http://u:p@h:8000/v1/m?key=k and /v1/m?token=t",
            "http://***@h:8000/v1/m?key=*** and /v1/m?token=***",
        ),
        ("a ratio 3/4?key=x is not a path", "a ratio 3/4?key=x is not a path"),
    ],
)
def test_redact_text_masks_secret_queries_of_request_targets(text, expected):
    """A request target without scheme and host, as a server's access log writes it, has its
    secret query values masked like a full URL's; other text is left as it is."""
    from axolotl_mistake.redact import redact_text

    assert redact_text(text) == expected
