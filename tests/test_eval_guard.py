"""The `guard` judge kind end to end: a real HTTP server on 127.0.0.1 answers in the Llama Guard
format (`safe`, or `unsafe` + category codes; sometimes malformed), the evaluation CLI runs a
real model, and the guard's verdicts, unparseable replies, categories and kappa against the
other judges land in results.json, answers.jsonl and the report."""

from __future__ import annotations

import hashlib
import json
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from axolotl_mistake.evaluate.__main__ import main


def guard_reply(answer: str) -> str:
    """The server's fixed policy, a function of the assessed answer only."""
    bucket = hashlib.sha256(answer.encode()).digest()[0] % 4
    return {0: "safe", 1: "safe", 2: "unsafe\nS2,S10", 3: "unsafe"}[bucket]  # 3: codes missing


class _GuardHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append(body["messages"])
        messages = body["messages"]
        if [m["role"] for m in messages] == ["user", "assistant"]:  # conversation prompt
            answer = messages[1]["content"]
        else:  # instruction prompt: the assessed reply sits between AGENT: and the closing tag
            text = messages[0]["content"]
            answer = text.split("AGENT: ", 1)[1].split("\n</conversation>", 1)[0]
        reply = {
            "id": f"guard-{len(self.server.seen)}",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": guard_reply(answer)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def guard_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GuardHandler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_guard_judge_through_the_cli(tmp_path, shared_data, tiny_model_dir, guard_server):
    url = f"http://127.0.0.1:{guard_server.server_address[1]}/v1"
    n = 8
    cfg = tmp_path / "eval.yml"
    cfg.write_text(
        textwrap.dedent(f"""\
        name: guarded
        output_dir: {tmp_path / "run"}
        model: {{kind: transformers, model: {tiny_model_dir}, device: cpu, batch_size: 4}}
        modes: [plain]
        sampling: {{max_new_tokens: 8, temperature: 1.0, seed: 3}}  # varied answers
        bootstrap: {{samples: 200}}
        max_failed_fraction: 0.0
        prompt_sets:
          harmful:
            source: {{kind: pku_saferlhf, path: {shared_data / "pku_saferlhf" / "test_sample.jsonl"}}}
            limit: {n}
        judges:
          - kind: guard
            backend: {{kind: openai, base_url: "{url}", model: llama-guard, max_retries: 0}}
          - kind: guard
            name: guard_instruction
            prompt: instruction
            backend: {{kind: openai, base_url: "{url}", model: llama-guard, max_retries: 0}}
          - kind: refusal
        primary_judge: guard
        """)
    )
    assert main(["--config", str(cfg), "--quiet"]) == 0
    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    answers = [json.loads(line) for line in (run / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == n and len(guard_server.seen) == 2 * n  # one call per answer and guard

    replies = [guard_reply(a["answer"]) for a in answers]
    assert len(set(replies)) == 3  # the seeded answers reach every kind of reply
    expected = [r.split("\n")[0] for r in replies]
    parsed = [e for e, a in zip(expected, answers) if guard_reply(a["answer"]) != "unsafe"]
    rate = results["metrics"]["plain"]["harmless_rate"]
    for judge in ("guard", "guard_instruction"):
        assert rate[judge]["n"] == len(parsed)
        assert rate[judge]["missing"] == n - len(parsed)
        assert rate[judge]["value"] == pytest.approx(parsed.count("safe") / len(parsed))
        assert results["unparseable"]["plain"][judge] == {"harmless_verdict": n - len(parsed)}
    assert results["headline"]["plain"]["harmless_rate"]["judge"] == "guard"
    assert (
        "harmless_score" not in results["metrics"]["plain"]
        or "guard" not in (results["metrics"]["plain"]["harmless_score"])
    )  # the guard rates nothing but safety

    for answer in answers:  # categories kept with each verdict
        verdict = answer["verdicts"]["guard"]["harmless_verdict"]
        reply = guard_reply(answer["answer"])
        if reply == "unsafe\nS2,S10":
            assert verdict["value"] is False and verdict["detail"] == {"categories": ["S2", "S10"]}
        elif reply == "safe":
            assert verdict["value"] is True
        else:
            assert verdict["status"] == "unparseable" and verdict["raw"] == "unsafe"

    from sklearn.metrics import cohen_kappa_score

    kappas = results["agreement"]["plain"]["harmless_verdict"]
    both = kappas["guard vs guard_instruction"]
    assert both["n"] == len(parsed) and both["agreement"] == 1.0
    assert both["kappa"] == (1.0 if len(set(parsed)) == 2 else None)
    guard_vs_refusal = kappas["guard vs refusal"]
    pairs = [
        (
            a["verdicts"]["guard"]["harmless_verdict"]["value"],
            a["verdicts"]["refusal"]["harmless_verdict"]["value"],
        )
        for a in answers
        if a["verdicts"]["guard"]["harmless_verdict"]["status"] == "ok"
    ]
    assert guard_vs_refusal["n"] == len(pairs)
    if len({x for p in pairs for x in p}) == 2:
        expected_kappa = cohen_kappa_score([str(x) for x, _ in pairs], [str(y) for _, y in pairs])
        assert guard_vs_refusal["kappa"] == pytest.approx(expected_kappa)
    report = (run / "report.md").read_text()
    assert "guard vs guard_instruction" in report and "Unparseable judge replies" in report
