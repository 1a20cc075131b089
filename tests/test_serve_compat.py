"""The server as OpenAI clients use it: fresh samples without a seed, the no-op defaults
libraries send, the `developer` role, GET /v1/models/{id}.

Every request is a real HTTP request to the server on 127.0.0.1 fronting the tiny model.
"""

from __future__ import annotations

import threading

import httpx
import openai
import pytest

from axolotl_mistake.generation import GenerationRequest, SamplingParams
from axolotl_mistake.serve import OpenAIServer
from tests.test_serve import local, server  # noqa: F401  (fixtures)


def post(srv: OpenAIServer, path: str, fields: dict) -> httpx.Response:
    """A short greedy request to `path` (a prompt or one user message) with `fields` added."""
    prompt = (
        {"prompt": "Hello"}
        if path == "/completions"
        else {"messages": [{"role": "user", "content": "Hi"}]}
    )
    body = {**prompt, "max_tokens": 2, "temperature": 0, **fields}
    return httpx.post(srv.base_url + path, json=body, timeout=60)


def client(srv: OpenAIServer, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key=key, max_retries=0, timeout=60)


def texts(srv: OpenAIServer, body: dict) -> list[str]:
    path = "/chat/completions" if "messages" in body else "/completions"
    response = httpx.post(srv.base_url + path, json=body, timeout=60)
    assert response.status_code == 200, response.text
    choices = response.json()["choices"]
    return [c["message"]["content"] if "message" in c else c["text"] for c in choices]


def test_unseeded_samples_differ_between_requests_and_a_seed_reproduces(server, local):
    """Every unseeded request answered with seed 0: k calls for k samples got k copies of one.
    Now, as OpenAI and vLLM, each unseeded request draws its own; a given seed (0 included)
    still reproduces, and greedy requests are unaffected."""
    sampled = {"prompt": "Hello", "max_tokens": 8, "temperature": 1.0}
    assert texts(server, sampled) != texts(server, sampled)
    chat = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "temperature": 1.0}
    assert texts(server, chat) != texts(server, chat)
    for seed in (0, 7):
        seeded = {**sampled, "seed": seed, "n": 2}
        first = texts(server, seeded)
        assert first == texts(server, seeded) and len(set(first)) == 2
        want = local.generate(
            [GenerationRequest(prompt="Hello", sample_index=j) for j in range(2)],
            SamplingParams(max_new_tokens=8, temperature=1.0, seed=seed),
        )
        assert first == [c.text for c in want]  # seed 0 is used as given, not as "none"
    greedy = {"prompt": "Hello", "max_tokens": 8, "temperature": 0}
    assert texts(server, greedy) == texts(server, greedy)


def test_concurrent_unseeded_requests_still_batch_and_each_get_their_own_samples(local):
    """Unseeded requests draw different seeds, yet still share backend calls: the same prompt
    asked k times at once gives k different samples."""
    with OpenAIServer(local, batch_wait_ms=500) as srv:
        body = {"prompt": "Hello", "max_tokens": 8, "temperature": 1.0, "n": 2}
        results: list[list[str]] = []
        start = threading.Barrier(4)

        def call() -> None:
            start.wait()
            results.append(texts(srv, body))

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        samples = [text for result in results for text in result]
        assert len(samples) == 8 and len(set(samples)) == 8
        assert srv.batcher.calls < 4


NO_OPS = [
    {"logprobs": None},
    {"logprobs": False},
    {"top_logprobs": None},
    {"top_logprobs": 0},
    {"presence_penalty": 0},
    {"presence_penalty": 0.0},
    {"frequency_penalty": 0},
    {"stream_options": None},
    {"response_format": {"type": "text"}},
    {"user": "someone"},
    {"n": 1},
    {"logit_bias": None},
    {"logit_bias": {}},
]
COMPLETION_NO_OPS = [{"echo": False}, {"best_of": 1}, {"suffix": None}, {"echo": None}]


@pytest.mark.parametrize("path", ["/completions", "/chat/completions"])
@pytest.mark.parametrize("field", NO_OPS, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
def test_the_no_op_defaults_clients_send_are_accepted(server, path, field):
    """OpenAI libraries send these at their default values, which change nothing: a 400 for
    them broke such clients although the answer would be the same."""
    response = post(server, path, field)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("field", COMPLETION_NO_OPS, ids=str)
def test_the_legacy_completion_no_op_defaults_are_accepted(server, field):
    response = post(server, "/completions", field)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "path, field",
    [
        ("/completions", {"echo": True}),
        ("/completions", {"best_of": 3}),
        ("/completions", {"suffix": "end"}),
        ("/chat/completions", {"logit_bias": {"50256": -100}}),
        ("/chat/completions", {"echo": False}),  # not a chat field at all
    ],
)
def test_legacy_fields_with_effect_are_refused_by_name(server, path, field):
    response = post(server, path, field)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == next(iter(field))


def test_the_openai_client_with_explicit_defaults(server):
    answer = client(server).chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=2,
        temperature=0,
        n=1,
        logprobs=False,
        top_logprobs=None,
        presence_penalty=0,
        frequency_penalty=0,
        user="someone",
        stream_options=None,
        response_format={"type": "text"},
    )
    assert len(answer.choices) == 1 and answer.choices[0].message.role == "assistant"


@pytest.mark.parametrize(
    "path, field",
    [
        ("/chat/completions", {"presence_penalty": 0.5}),
        ("/completions", {"frequency_penalty": -1.0}),
        ("/chat/completions", {"logprobs": True}),
        ("/completions", {"logprobs": 0}),  # the sampled tokens' logprobs: not a no-op
        ("/completions", {"logprobs": 3}),
        ("/chat/completions", {"top_logprobs": 2}),
        ("/chat/completions", {"response_format": {"type": "json_object"}}),
        ("/chat/completions", {"stream_options": {"include_usage": True}}),
        ("/completions", {"presence_penalty": False}),
    ],
)
def test_values_the_server_cannot_honour_stay_refused_by_name(server, path, field):
    (name,) = field
    response = post(server, path, field)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == name and error["message"].startswith(f"{name}: ")
    assert server.batcher.calls == 0


def test_developer_role_is_read_as_system(server):
    """`developer` is OpenAI's newer name for `system`: same prompt, same answer."""

    def ask(role: str) -> list[str]:
        messages = [{"role": role, "content": "Be brief."}, {"role": "user", "content": "Hi"}]
        return texts(server, {"messages": messages, "max_tokens": 6, "temperature": 0})

    assert ask("developer") == ask("system")
    answer = client(server).chat.completions.create(
        model="tiny",
        messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=2,
    )
    assert answer.choices[0].message.role == "assistant"


def test_models_retrieve_answers_the_served_model_and_404s_others(local):
    with OpenAIServer(local, served_model_name="org/tiny") as srv:
        model = client(srv).models.retrieve("org/tiny")  # sent as /models/org%2Ftiny
        assert (model.id, model.object, model.owned_by) == ("org/tiny", "model", "axolotl-mistake")
        listed = httpx.get(srv.base_url + "/models").json()["data"][0]
        assert httpx.get(srv.base_url + "/models/org/tiny").json() == listed
        with pytest.raises(openai.NotFoundError) as exc:
            client(srv).models.retrieve("gpt-4o")
        assert exc.value.code == "model_not_found" and "'gpt-4o'" in exc.value.message
        assert srv.batcher.calls == 0
    with OpenAIServer(local, served_model_name="tiny", api_key="k-123") as srv:
        with pytest.raises(openai.AuthenticationError):
            client(srv, "wrong").models.retrieve("tiny")
        assert client(srv, "k-123").models.retrieve("tiny").id == "tiny"
