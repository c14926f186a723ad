"""The real model server's fixture itself: its chat template is Gemma 3's, and a server that
cannot start says why."""

from __future__ import annotations

from importlib.util import find_spec

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tests.llm.real_server import (
    GEMMA3_CHAT_TEMPLATE,
    LlamaServer,
    ServerUnavailable,
)


def render(messages: list[dict[str, str]]) -> str:
    # As llama-cpp-python renders a tokenizer config's template: trimmed blocks, and an
    # empty assistant message appended to ask for the answer.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(GEMMA3_CHAT_TEMPLATE)
    return template.render(messages=[*messages, {"role": "assistant", "content": ""}],
                           bos_token="<bos>")  # fmt: skip


def test_the_system_prompt_opens_the_first_user_turn_and_the_model_turn_is_left_open():
    prompt = render(
        [
            {"role": "system", "content": "Rules."},
            {"role": "user", "content": " Explain. "},
            {"role": "assistant", "content": '{"intro": "Hi"}'},
            {"role": "user", "content": "Shorter."},
        ]
    )
    assert prompt == (
        "<bos><start_of_turn>user\nRules.\n\nExplain.<end_of_turn>\n"
        '<start_of_turn>model\n{"intro": "Hi"}<end_of_turn>\n'
        "<start_of_turn>user\nShorter.<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_without_a_system_prompt_the_user_turn_stands_alone():
    assert render([{"role": "user", "content": "Hi"}]) == (
        "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    )


def test_a_server_that_exits_while_starting_is_reported_with_its_log(tmp_path):
    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_bytes(b"GGUF? no")
    with pytest.raises(ServerUnavailable) as failed:
        LlamaServer(bogus, tmp_path / "server.log").start()
    message = str(failed.value)
    if find_spec("llama_cpp") is None:
        assert "not installed" in message
    else:
        assert "exited with code" in message and str(bogus) in message
