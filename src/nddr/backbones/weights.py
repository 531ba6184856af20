"""Loading ImageNet (or other) weights into the torchvision networks that stages are cut from."""

from __future__ import annotations

import os

from torch import nn

from nddr.errors import NddrError, describe_keys
from nddr.io import load_state_dict


def load_torchvision_weights(
    model: nn.Module, weights: object, example: str, skip_prefixes: tuple[str, ...] = ()
) -> None:
    """Load ``weights`` into a torchvision model before its stages are cut out.

    ``weights`` is a file (``.safetensors`` or a torch state dict, loaded without executing pickled
    code), a torchvision weights enum, or its name such as ``example`` (an enum fetches its file
    through torchvision, so pass one only where that is wanted). ``None`` leaves the random init.
    Keys under ``skip_prefixes`` (parts that were not built) are ignored.
    """
    if weights is None:
        return
    from torchvision.models import WeightsEnum, get_weight

    if (
        isinstance(weights, str)
        and not os.path.exists(weights)
        and "." in weights
        and "/" not in weights
    ):
        try:
            weights = get_weight(weights)
        except (KeyError, ValueError, AttributeError):
            raise NddrError(
                f"weights {weights!r}: no such file, and not a torchvision weights name "
                f"such as {example!r}"
            ) from None
    state = (
        weights.get_state_dict(progress=True)
        if isinstance(weights, WeightsEnum)
        else load_state_dict(weights)
    )
    state = {key: value for key, value in state.items() if not key.startswith(skip_prefixes)}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[-1].strip()
        raise NddrError(
            f"weights {weights}: shapes do not fit torchvision's {type(model).__name__} ({first_line})"
        ) from None
    if missing or unexpected:
        raise NddrError(
            f"weights {weights}: do not fit torchvision's {type(model).__name__} "
            f"(missing {describe_keys(missing)}, unexpected {describe_keys(unexpected)}); pass a state dict "
            f"of that model, e.g. {example}"
        )
