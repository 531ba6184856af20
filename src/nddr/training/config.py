"""Experiment configs: typed, validated, one YAML file per experiment.

A config has four sections (``data``, ``model``, ``optim``, ``run``) plus a ``name``. The field
defaults are the one default experiment, what ``nddr train`` runs with no config (or an empty
one): NDDR-CNN on the tiny backbone and built-in Scenes (segmentation + normals), a few minutes
on a laptop CPU. The paper's recipe (fusion layers at 100x, §4.2; the released code's numbers
where the paper gives none: crop 321, batch 10, 20k steps, SGD momentum 0.9, base lr 1e-3, poly
decay 0.9, weight decay 5e-4 single-task / 2.5e-4 two-task, last classifier at 10x / 20x; see
``docs/fidelity.md``) is written out in the paper's configs (``configs/nyuv2/recipe_base.yaml``,
``configs/imdb_wiki/recipe_base.yaml``). ``key=value`` overrides use dotted keys
(``optim.steps=200``). An unknown key or a bad value is a one-line
:class:`~nddr.errors.NddrError` naming the closest valid key.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nddr.data import DATASETS, USER_DATASET
from nddr.errors import NddrError
from nddr.models.fusion.registry import (
    DEFAULT_VARIANT,
    SINGLE_TASK,
    variant_choices,
    variant_error,
)
from nddr.training.balancing.registry import (
    DEFAULT_BALANCING,
    balancing_choices,
    balancing_entry,
    check_balancing,
)

if TYPE_CHECKING:
    from nddr.io import PathLike


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(_Section):
    """Which dataset, which of its targets, augmentation and batching."""

    name: str = Field(
        "scenes", description="dataset: " + ", ".join(DATASETS) + f", or {USER_DATASET}"
    )
    root: str | None = Field(None, description="dataset folder (built-in: cache folder)")
    tasks: list[str] | None = Field(
        ["segmentation", "normals"],
        description="targets to train on (null: all; another data.name: all unless given)",
    )
    options: dict[str, Any] = Field(
        {"size": 64}, description="dataset options (another data.name: none unless given)"
    )
    crop_size: int | None = Field(
        64, ge=1, description="training crop (null: whole image); at most the scaled image"
    )
    scale_range: tuple[float, float] | None = Field(
        (0.5, 1.5), description="random scale range lo <= hi, both > 0 (null: none)"
    )
    flip: bool = Field(True, description="random horizontal flip (normals' x negated)")
    batch_size: int = Field(16, ge=1, description="global batch, over processes and accumulation")
    eval_batch_size: int = Field(50, ge=1, description="evaluation batch per process")
    workers: int = Field(0, ge=0, description="data loader processes per training process")

    @model_validator(mode="before")
    @classmethod
    def _dataset_defaults(cls, data: Any) -> Any:
        """The default tasks and options are the default dataset's: another ``name`` given
        without them gets all its targets and no options, not Scenes' ``size``."""
        default_name = cls.model_fields["name"].default
        if isinstance(data, Mapping) and data.get("name", default_name) != default_name:
            return {"tasks": None, "options": {}, **data}
        return data

    @field_validator("scale_range")
    @classmethod
    def _scale_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 < value[0] <= value[1]:
            raise ValueError("use [lo, hi] with 0 < lo <= hi, e.g. [0.5, 1.5], or null")
        return value


class ModelConfig(_Section):
    """What :func:`nddr.build_network` builds, and where its weights start (§4.3)."""

    backbone: str = Field("tiny", description="backbone name or timm:MODEL (nddr models)")
    variant: str = Field(DEFAULT_VARIANT, description=variant_choices())
    shortcut: bool = Field(False, description="route every stage to the heads (§3.3)")
    backbone_weights: str | None = Field(None, description="ImageNet weights file of the backbone")
    backbone_options: dict[str, Any] = Field(
        default_factory=dict, description="e.g. {output_stride: 16}"
    )
    fusion_options: dict[str, Any] = Field(
        default_factory=dict,
        description="e.g. {init: [0.9, 0.1]} or {init: xavier} (NDDR only); single and multi "
        "have no fusion",
    )
    head_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per head kind the network uses, e.g. {lfov: {dropout: 0.5}}",
    )
    bn_momentum: float | None = Field(
        None,
        description="momentum of the columns' and heads' batch norms, in [0, 1] (released code: "
        "0.05 = TF decay 0.95; null: the backbone's own); not NDDR's (fusion_options) or the "
        "shortcut's",
    )
    bn_eps: float | None = Field(
        None,
        description="epsilon of the columns' and heads' batch norms, in [0, 1] (released code: "
        "1e-3; null: the backbone's own); not NDDR's (fusion_options) or the shortcut's",
    )
    init_from: dict[str, str] | None = Field(
        None, description="task -> single-task model file (§4.3)"
    )
    execution: Literal["columns", "grouped"] = Field(
        "columns", description="run the K columns one by one or as one grouped-conv network"
    )
    sync_bn: bool = Field(False, description="synchronise batch norm over processes")
    freeze_bn: bool = Field(False, description="keep batch-norm statistics fixed in training")

    @field_validator("variant", mode="before")
    @classmethod
    def _variant(cls, value: object) -> object:
        """A registered variant (:mod:`nddr.models.fusion.registry`), checked when the config is read."""
        problem = variant_error(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("backbone_options")
    @classmethod
    def _backbone_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from nddr.models.backbones import check_backbone_options

        if "backbone" in info.data:
            try:
                check_backbone_options(info.data["backbone"], value)
            except NddrError as error:
                raise ValueError(str(error)) from None
        return value

    @field_validator("fusion_options")
    @classmethod
    def _fusion_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from nddr.models.builder import check_fusion_options

        if "variant" in info.data:
            check_fusion_options(info.data["variant"], value)
        return value

    @field_validator("head_options")
    @classmethod
    def _head_options(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from nddr.models.builder import check_head_options

        check_head_options(value)
        return value

    @field_validator("bn_momentum", "bn_eps")
    @classmethod
    def _batch_norm(cls, value: float | None, info: ValidationInfo) -> float | None:
        from nddr.models.builder import check_batch_norm

        check_batch_norm(**{info.field_name: value})
        return value


class OptimConfig(_Section):
    """SGD with poly decay (§4.2) and its knobs.

    The defaults train the default experiment from random weights (no ImageNet model): base
    rate 5e-2, fusion multiplier 2 (the paper's absolute fusion rate, 1e-3 x 100), no classifier
    multipliers, equal task weights. The paper's values are in its configs.
    """

    lr: float = Field(5e-2, gt=0, description="base learning rate")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum, in [0, 1)")
    weight_decay: float = Field(5e-4, ge=0, description="on conv / linear weights only")
    fusion_lr_mult: float = Field(
        2.0, gt=0, description="fusion layers' lr multiplier (and the shortcut's by default)"
    )
    shortcut_lr_mult: float | None = Field(
        None,
        gt=0,
        description="shortcut lr multiplier (null: fusion_lr_mult, as the released "
        "NDDR-CNN-Shortcut; its single- and multi-task baselines: 1)",
    )
    classifier_lr_mult: float = Field(1.0, gt=0, description="last classifier weights")
    classifier_bias_lr_mult: float = Field(1.0, gt=0, description="last classifier biases")
    poly_power: float = Field(0.9, ge=0, description="lr = base (1 - step/steps)^power")
    steps: int = Field(1000, ge=1, description="optimizer steps")
    accumulate: int = Field(1, ge=1, description="micro-batches per step (gradient accumulation)")
    loss_weights: dict[str, float] = Field(
        default_factory=dict,
        description="per-task loss weight >= 0 (others: 1), e.g. {normals: 20}",
    )
    task_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="task -> options of that task, e.g. {normals: {space: encoded}} (the released "
        "code's normal loss)",
    )
    balancing: str = Field(
        DEFAULT_BALANCING,
        description=f"how the task losses combine: {balancing_choices()} (README: Loss balancing)",
    )
    balancing_options: dict[str, Any] = Field(
        default_factory=dict,
        description="options of optim.balancing, e.g. {temperature: 2, window: 50} (dwa), "
        "{c: 0.5} (cagrad)",
    )
    grad_clip: float | None = Field(None, gt=0, description="clip the gradient norm (null: no)")
    skip_nonfinite: bool = Field(
        False,
        description="skip a batch whose loss is NaN/Inf (its step makes no update) instead of "
        "stopping; stops anyway past 10% of the steps",
    )

    @field_validator("loss_weights")
    @classmethod
    def _loss_weights(cls, value: dict[str, float]) -> dict[str, float]:
        negative = [task for task, weight in value.items() if weight < 0]
        if negative:
            raise ValueError(f"the weight of {negative[0]!r} is negative: use a weight >= 0")
        return value

    @field_validator("balancing", mode="before")
    @classmethod
    def _balancing(cls, value: object) -> object:
        """A registered method (:mod:`nddr.training.balancing.registry`)."""
        try:
            check_balancing(value, {})
        except NddrError as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("balancing_options")
    @classmethod
    def _balancing_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "balancing" in info.data:
            try:
                check_balancing(info.data["balancing"], value)
            except NddrError as error:
                raise ValueError(str(error)) from None
        return value


class RunConfig(_Section):
    """Where outputs go, how often to log / evaluate / save, and how to run (device, AMP, ...)."""

    out: str = Field("runs", description="runs go to OUT/NAME")
    seed: int = Field(
        0, ge=-(2**63), lt=2**64, description="seed of weights, data order and augmentation"
    )
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    amp: Literal["none", "bf16", "fp16"] = Field("none", description="autocast: none, bf16, fp16")
    compile: bool = Field(False, description="torch.compile the network")
    channels_last: bool = Field(True, description="channels-last memory format")
    keep_freed_memory: bool = Field(
        True, description="glibc: keep freed host memory for reuse (fewer page faults)"
    )
    log_every: int = Field(20, ge=1, description="steps between log lines")
    eval_every: int = Field(500, ge=0, description="steps between evaluations (0: at the end)")
    checkpoint_every: int = Field(
        500, ge=0, description="steps between checkpoints (and at the end)"
    )
    keep_checkpoints: int = Field(2, ge=1, description="newest checkpoints kept")
    progress: bool = Field(True, description="progress bar")
    inspect_every: int = Field(50, ge=0, description="steps between NDDR share logs (0: never)")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value not in ("auto", "cpu") and not value.startswith(("cuda", "mps")):
            raise ValueError("use auto, cpu, cuda, cuda:N or mps")
        return value


class Config(_Section):
    """One experiment; the defaults are ``nddr train``'s default experiment, NDDR-CNN on the
    tiny backbone and built-in Scenes (segmentation + normals)."""

    name: str = "scenes-nddr-tiny"
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    @model_validator(mode="after")
    def _balancing_fits(self) -> Config:
        """A gradient method needs parameters the tasks share (the single-task baseline has none)
        and an eager network (torchjd differentiates through ``torch.vmap``)."""
        method = self.optim.balancing
        if not balancing_entry(method).gradient_based:
            return self
        if self.model.variant == SINGLE_TASK:
            raise ValueError(
                f"optim.balancing={method} aggregates the tasks' gradients of shared parameters "
                "and model.variant=single shares none: use fixed, uncertainty or dwa"
            )
        if self.run.compile:
            raise ValueError(
                f"optim.balancing={method} differentiates through torch.vmap, which does not run "
                "on a compiled network: set run.compile=false"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @property
    def run_dir(self) -> Path:
        return Path(self.run.out) / self.name


def build_config(
    base: Mapping[str, Any] | None = None, overrides: Sequence[str] = (), where: str = "config"
) -> Config:
    """A validated :class:`Config` from a dict and ``key=value`` overrides (dotted keys)."""
    data = _deep_copy(base or {})
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key:
            raise NddrError(f"override {override!r} is not key=value, e.g. optim.steps=200")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise NddrError(
                f"override {override!r}: the value is not valid YAML (quote it, e.g. {key}='...')"
            ) from None
        _set_dotted(data, key.strip(), value)
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise NddrError(_describe(error, data, where)) from None


def load_config(path: PathLike | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config (``None``: the defaults) and apply ``key=value`` overrides."""
    base: dict[str, Any] = {}
    where = "config"
    if path is not None:
        path = Path(path)
        where = str(path)
        base = _resolve_base(_read_yaml(path, "config file"), path, ())
    return build_config(base, overrides, where)


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    """A YAML file holding a mapping (empty file: ``{}``), read with the safe loader."""
    if not path.is_file():
        raise NddrError(f"{what} {str(path)!r} does not exist: pass a .yaml config")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise NddrError(f"{what} {str(path)!r} is not UTF-8 text: save it as UTF-8") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise NddrError(f"{what} {str(path)!r} is not valid YAML{line}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise NddrError(f"{what} {str(path)!r} must hold a mapping of sections")
    return loaded or {}


def _resolve_base(data: dict[str, Any], path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """``base: other.yaml`` (relative to the file) is read first and overlaid by this file."""
    if "base" not in data:
        return data
    parent_path = (path.parent / str(data.pop("base"))).resolve()
    if parent_path in (*seen, path.resolve()):
        raise NddrError(f"config {str(path)!r}: base {str(parent_path)!r} leads back to itself")
    parent = _read_yaml(parent_path, f"config {str(path)!r}: base file")
    merged = _resolve_base(parent, parent_path, (*seen, path.resolve()))
    _merge(merged, data)
    return merged


def _merge(target: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict) and key != "options":
            _merge(target[key], value)
        else:
            target[key] = _deep_copy(value)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1], start=1):
        child = node.setdefault(part, {})
        if not isinstance(child, dict) or ".".join(parts[:depth]) in _plain_keys():
            raise NddrError(f"override {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _plain_keys() -> set[str]:
    """The keys whose value is not a mapping: a dotted key cannot go into them."""
    plain = set()
    for key in _known_keys():
        section, _, name = key.partition(".")
        field = Config.model_fields[section]
        if name:
            field = field.annotation.model_fields[name]
        kinds = (field.annotation, *get_args(field.annotation))
        if not any(get_origin(kind) is dict for kind in kinds):
            plain.add(key)
    return plain


def config_reference() -> str:
    """Every config key with its default and meaning, as a markdown table."""
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    defaults = Config().to_dict()
    for key in _known_keys():
        section, _, name = key.partition(".")
        if not name:
            continue
        field = Config.model_fields[section].annotation.model_fields[name]
        default = json.dumps(defaults[section][name])
        lines.append(f"| `{key}` | `{default}` | {field.description} |")
    return "\n".join(lines)


def _known_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_known_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _describe(error: ValidationError, data: Mapping[str, Any], where: str) -> str:
    """The first problem of a validation error as one line, with the closest valid key."""
    problem = error.errors()[0]
    key = ".".join(str(part) for part in problem["loc"])
    if problem["type"] == "extra_forbidden":
        candidates = [*Config.model_fields, *_known_keys()]
        close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.5)
        hint = f": did you mean {close[0]!r}?" if close else ": see `nddr train --config-help`"
        return f"{where}: unknown key {key!r}{hint}"
    message = problem["msg"].removeprefix("Value error, ")
    if not problem["loc"]:
        return f"{where}: {message}"
    value = data
    for part in problem["loc"]:
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            value = None
    return f"{where}: {key} = {value!r} is not valid ({message})"
