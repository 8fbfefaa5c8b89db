"""What an OpenAI-compatible server means by refusing a request (HTTP 400, 404, 413, 422).

A refusal is either a verdict on the one request (its prompt is too long for the context) or a sign
that the client is set up wrongly (a model the server does not serve, a parameter it rejects), which
every request would get. The server's error body tells the first from a wrong model:
  OpenAI  {"error": {"message": ..., "type": ..., "code": "context_length_exceeded" | "model_not_found"}}
  vLLM    {"object": "error", "message": "This model's maximum context length is 4096 tokens. ...",
           "type": "BadRequestError", "code": 400}; a wrong model: 404, "The model `x` does not exist."
  TGI     {"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096 ...",
           "error_type": "validation"}
Bad parameters read like any other refusal (vLLM: "temperature must be non-negative"), and a
max_tokens larger than the context reads like a context-length error on every prompt: those are
told apart by the client, which stops when every request of a batch of different prompts is
refused before any was answered (openai_llm.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_MESSAGE_CHARS = 500  # of the server's message kept for a log or an exception

_MISSING_MODEL_CODES = {"model_not_found"}
_MISSING_MODEL = re.compile(
    r"model\b.{0,100}\b(does not exist|not found|is not (served|available|supported))"
    r"|\b(unknown|invalid|no such) model\b",
    re.IGNORECASE | re.DOTALL,
)
_CONTEXT_CODES = {"context_length_exceeded", "string_above_max_length"}
_CONTEXT = re.compile(
    r"maximum context length|context (length|window)|max_model_len|prompt is too long"
    r"|input is too long|too many (input )?tokens|`inputs` tokens \+ `max_new_tokens`",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Refusal:
    """A request the server refused: `status`, the server's `message`, and what it is a sign of:
    "model" (the server does not serve the model asked for), "context" (the prompt does not fit
    the context) or "request" (anything else; the client decides from the other answers)."""

    status: int
    message: str
    kind: str


def _error_fields(body: bytes) -> tuple[str, str]:
    """(message, code) of an error body in the OpenAI, vLLM or TGI shape; the raw text otherwise."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text, ""
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, str):  # TGI: {"error": "...", "error_type": "..."}
        return err, str(data.get("error_type", ""))
    if not isinstance(err, dict):
        return text, ""
    message = err.get("message") or err.get("detail") or text
    codes = " ".join(str(err.get(k) or "") for k in ("code", "type"))
    return (message if isinstance(message, str) else json.dumps(message)), codes


def read_refusal(status: int, body: bytes) -> Refusal:
    message, codes = _error_fields(body)
    code_words = set(codes.lower().split())
    # Context first: its messages name "this model", and reading one as a wrong model would stop a
    # run for one long prompt, where the other mistake is caught by the client's batch rule.
    if code_words & _CONTEXT_CODES or _CONTEXT.search(message):
        kind = "context"
    elif code_words & _MISSING_MODEL_CODES or _MISSING_MODEL.search(message):
        kind = "model"
    else:
        kind = "request"
    return Refusal(status, message[:MAX_MESSAGE_CHARS] or "(no message in the body)", kind)
