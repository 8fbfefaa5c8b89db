"""The OpenAI-compatible vision image-to-report backend against HTTP servers in this process."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from syncxr.reports.i2r_prompt import REPORT_PROMPT, split_report
from syncxr.reports.openai_i2r import OpenAIVisionI2R
from tests.helpers import openai_client
from tests.reports.local_http import LocalChatServer, chat_reply
from tests.reports.test_openai_llm import server_factory  # noqa: F401 - the scripted failing server

IMAGES = [np.full((20, 24), v, np.uint8) for v in (10, 200)]


class VisionServer(LocalChatServer):
    """Decodes the image of each request and reports its size and mean, so the answer proves the
    pixels arrived; answers gibberish for seeds listed in `gibberish`."""

    def __init__(self, gibberish=()):
        self.requests, self.gibberish = [], set(gibberish)
        super().__init__(self.respond)

    def respond(self, body):
        self.requests.append(body)
        parts = body["messages"][-1]["content"]
        url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
        image = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
        answer = (
            "no idea"
            if body["seed"] in self.gibberish
            else (
                f"FINDINGS: An image of {image.shape[1]}x{image.shape[0]} pixels. IMPRESSION: Mean {int(image.mean())}."
            )
        )
        return 200, chat_reply(answer)


@pytest.fixture
def vision_server():
    servers = []

    def make(**kw):
        servers.append(VisionServer(**kw))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_images_go_as_data_urls_with_the_prompt_and_seed(vision_server):
    srv = vision_server(gibberish={8})
    i2r = OpenAIVisionI2R(openai_client(srv.url, "cxr-mllm", concurrency=2))
    out = i2r.describe(IMAGES, [7, 8])
    assert split_report(out[0]) == ("An image of 24x20 pixels.", "Mean 10.")
    assert out[1] == "no idea" and split_report(out[1]) is None
    sent = sorted(srv.requests, key=lambda b: b["seed"])
    assert [b["seed"] for b in sent] == [7, 8] and sent[0]["model"] == "cxr-mllm"
    assert sent[0]["messages"][-1]["content"][1] == {"type": "text", "text": REPORT_PROMPT}


def test_refused_requests_come_back_as_none_and_are_counted(server_factory):  # noqa: F811
    srv = server_factory(["ok", "400", "400"])
    i2r = OpenAIVisionI2R(openai_client(srv.url, "m", concurrency=1, backoff_s=0.01))
    assert i2r.describe(IMAGES[:1], [0])[0].startswith("echo: [{'type': 'image_url'")
    # The server has answered this client, so its setup works: refusals are verdicts on their requests.
    assert i2r.describe(IMAGES, [1, 2]) == [None, None]
    assert i2r.counters()["llm_http_400"] == 2
