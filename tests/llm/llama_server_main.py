"""``python -m llama_cpp.server`` with llama.cpp's extra buffer types off (run as a script).

llama.cpp repacks a model's weights into "extra" CPU buffer types for its fastest kernels; on
a CPU with AMX (Intel Sapphire Rapids and later) llama-cpp-python 0.3.36's AMX path dies with a
general protection fault on the first completion (SmolLM2 135M Q4_1: exit 139 with them on,
34 tokens/s with them off on the same host). The server has no option for the model's
``use_extra_bufts`` parameter, so the defaults it builds the model from are wrapped here; all
arguments go to the server unchanged.
"""

from __future__ import annotations

import llama_cpp.llama_cpp as llama_cpp_c

_library_defaults = llama_cpp_c.llama_model_default_params


def _model_defaults() -> llama_cpp_c.llama_model_params:
    params: llama_cpp_c.llama_model_params = _library_defaults()
    params.use_extra_bufts = False
    return params


if __name__ == "__main__":
    llama_cpp_c.llama_model_default_params = _model_defaults  # read by Llama() at each load
    from llama_cpp.server.__main__ import main

    main()  # type: ignore[no-untyped-call]  # llama-cpp-python's own, unannotated
