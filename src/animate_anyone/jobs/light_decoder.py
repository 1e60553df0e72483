"""``convert light-decoder``: TAESD's public decoder (SD-1.x latents) -> a model directory's ``light_decoder``.

Checked before any weights are read and before anything is written: the TAESD path and its config
(``convert.light_decoder``), the model directory, that its VAE makes the latents TAESD decodes, and that its
``light_decoder`` may be written. The conversion is strict; the component is written by the same writer as
``train light-decoder``'s (``training.light_decoder.write_light_decoder``), so nothing is written on a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def convert_light_decoder(
    taesd: str | Path,
    model: str | Path,
    *,
    overwrite: bool = False,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Convert TAESD at ``taesd`` (an ``AutoencoderTiny`` folder, or TAESD's own ``taesd_decoder.pth`` /
    ``.safetensors``) into the ``light_decoder`` of the model directory ``model`` (listed in model_index.json), which
    a call then chooses with ``decoder="light"``. ``overwrite``: replace an existing one. ``names``: the caller's
    names for ``taesd``, ``model`` and ``overwrite`` in messages (a command's flags). Returns a report: the
    component's folder, the layout read, its parameters and the encoder tensors left out."""
    from ..convert.light_decoder import check_model_vae, layout, light_decoder_state, read_taesd, taesd_config_file
    from ..model_dir import ModelDirectory, read_json
    from ..models import LightDecoder
    from ..training.light_decoder import refuse_light_decoder, write_light_decoder
    from ..weights import load_strict

    names = names or {}
    taesd_name, model_name = names.get("taesd", "taesd"), names.get("model", "model")
    if not Path(taesd).exists():
        raise FileNotFoundError(f"{taesd_name}: {taesd} does not exist")
    config_file = taesd_config_file(taesd)
    if config_file is not None:
        from ..convert.light_decoder import light_decoder_config

        light_decoder_config(read_json(config_file), str(config_file))
    directory = ModelDirectory(model).check()
    check_model_vae(directory.config("vae"), f"{model_name} {directory.path}")
    out = refuse_light_decoder(directory, overwrite, names, "replace it")
    state, config, source = read_taesd(taesd)
    arguments, converted = light_decoder_state(state, config, source)
    decoder = LightDecoder(**arguments)
    load_strict(decoder, converted, source)
    write_light_decoder(directory, decoder.eval(), overwrite)
    return {
        "light_decoder": str(out),
        "source": source,
        "layout": layout(state),
        "config": arguments,
        "parameters": sum(p.numel() for p in decoder.parameters()),
        "encoder_tensors_dropped": sum(k.startswith("encoder.") for k in state),
    }
