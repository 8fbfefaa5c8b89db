"""Reading what a server's error body says: a prompt too long, a model it does not serve, or other."""

import json

import pytest

from syncxr.reports.server_errors import read_refusal
from tests.reports.local_http import CONTEXT_TOO_LONG, NO_SUCH_MODEL, openai_error, vllm_error

TGI_TOO_LONG = json.dumps(
    {
        "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. "
        "Given: 4000 `inputs` tokens and 384 `max_new_tokens`",
        "error_type": "validation",
    }
).encode()


@pytest.mark.parametrize(
    "status, body, kind",
    [
        (400, vllm_error(CONTEXT_TOO_LONG), "context"),
        (400, openai_error("Too long.", code="context_length_exceeded"), "context"),
        (422, TGI_TOO_LONG, "context"),
        (404, vllm_error(NO_SUCH_MODEL, 404, "NotFoundError"), "model"),
        (
            404,
            openai_error("The model `gpt-9` does not exist or you do not have access to it.", code="model_not_found"),
            "model",
        ),
        (400, b"Unknown model: llama", "model"),
        (400, vllm_error("temperature must be non-negative, got -1.0."), "request"),
        (404, b'{"detail": "Not Found"}', "request"),  # a wrong route, not a wrong model
        (400, b"", "request"),
    ],
)
def test_refusals_are_read_from_openai_vllm_and_tgi_bodies(status, body, kind):
    refusal = read_refusal(status, body)
    assert refusal.kind == kind and refusal.status == status
    assert refusal.message and len(refusal.message) <= 500


def test_the_servers_message_is_kept():
    assert read_refusal(404, vllm_error(NO_SUCH_MODEL, 404)).message == NO_SUCH_MODEL
    assert read_refusal(400, TGI_TOO_LONG).message.startswith("Input validation error")
