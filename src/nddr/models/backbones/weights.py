"""Loading ImageNet (or other) weights into the torchvision networks that stages are cut from."""

from __future__ import annotations

import os
from collections.abc import Mapping

from torch import Tensor, nn

from nddr.errors import NddrError
from nddr.io import PathLike, describe_mismatch, load_state_dict


def load_torchvision_weights(
    model: nn.Module, weights: object, example: str, skip_prefixes: tuple[str, ...] = ()
) -> dict[str, Tensor]:
    """Load ``weights`` into a torchvision model before its stages are cut out.

    ``weights`` is a file (``.safetensors`` or a torch state dict, loaded without executing pickled
    code), a torchvision weights enum, or its name such as ``example`` (an enum fetches its file
    through torchvision, so pass one only where that is wanted). ``None`` leaves the random init.
    Keys under ``skip_prefixes`` (parts that were not built) are not loaded but returned, for the
    caller to use (VGG-16's classifier starts the DeepLab-LargeFOV head); ``{}`` for ``None``.
    """
    if weights is None:
        return {}
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
        else load_backbone_file(weights)
    )
    skipped = {key: value for key, value in state.items() if key.startswith(skip_prefixes)}
    load_module_state(
        model,
        {key: value for key, value in state.items() if key not in skipped},
        f"weights {weights}",
        f"torchvision's {type(model).__name__}",
        f"pass a state dict of that model, e.g. {example}",
    )
    return skipped


def load_backbone_file(path: PathLike) -> dict[str, Tensor]:
    """The state dict in a backbone weights file; an nddr network file is refused in one line.

    A network's state dict (keys ``columns.*`` and ``heads.*``) fits no backbone: its columns
    start a fused network through ``model.init_from`` instead.
    """
    state = load_state_dict(path)
    if any(key.startswith("columns.") for key in state) and any(
        key.startswith("heads.") for key in state
    ):
        raise NddrError(
            f"backbone weights {path} are an nddr network (keys columns.*, heads.*), not a "
            "backbone: to start from single-task networks set model.init_from (task: file) "
            "instead of model.backbone_weights"
        )
    return state


def load_module_state(
    module: nn.Module, state: Mapping[str, Tensor], source: str, target: str, fix: str
) -> None:
    """Load ``state`` into ``module`` exactly: any missing, unexpected or misshaped key is one
    line (:func:`nddr.io.describe_mismatch`) naming ``source``, ``target`` and ``fix``."""
    mismatch = describe_mismatch(state, module.state_dict())
    if mismatch:
        raise NddrError(f"{source}: do not fit {target} ({mismatch}); {fix}")
    module.load_state_dict(state)
