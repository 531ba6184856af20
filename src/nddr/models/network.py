"""The multi-task network: task columns, fusion at stage ends, head inputs and heads (paper §3.2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from nddr.errors import unknown_choice
from nddr.models.backbones import StagedBackbone
from nddr.models.fusion.base import Fusion
from nddr.models.fusion.shortcut import LastStage, Shortcut
from nddr.models.grouped import GroupedColumns, group_columns

EXECUTIONS: dict[str, str] = {
    "columns": "each task column runs its own layers; fusion concatenates and splits",
    "grouped": "the K columns run as one network of grouped convolutions (no concatenation)",
}


class MultiTaskNetwork(nn.Module):
    """Columns of one staged backbone, optionally fused after every stage, and one head per task.

    Each variant of the paper is this module with different parts (built by
    :func:`nddr.build_network`): ``single`` has K columns and no fusion, ``multi`` one column
    shared by all heads, a fusion kind (:mod:`nddr.models.fusion.registry`) K columns with a fusion
    module after every stage. Each column has one head input, which its tasks' heads read: the
    column's last stage output, or all of its stage outputs through a
    :class:`~nddr.models.fusion.Shortcut` or the fusion kind's own head input (such as
    :class:`~nddr.models.fusion.LayerSelection`; ``multi``'s one shortcut is part of its shared trunk).

    ``forward(images)`` returns ``{task name: head output}``; dense heads answer at the backbone's
    output stride. :meth:`set_execution` switches how the K columns run without changing the
    function or the state dict.
    """

    def __init__(
        self,
        columns: Sequence[StagedBackbone],
        fusions: Sequence[Fusion] | None,
        head_inputs: Sequence[nn.Module],
        heads: Mapping[str, nn.Module],
        config: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__()
        task_names = tuple(heads)
        if len(columns) not in (1, len(task_names)):
            raise ValueError(
                f"{len(columns)} columns for {len(task_names)} tasks: give one or one per task"
            )
        if len(head_inputs) != len(columns):
            raise ValueError(
                f"{len(head_inputs)} head inputs for {len(columns)} columns: give one per column"
            )
        fusions = list(fusions or [])
        if fusions and len(fusions) != columns[0].num_stages:
            raise ValueError(f"{len(fusions)} fusions for {columns[0].num_stages} stages")
        self.columns = nn.ModuleList(columns)
        self.fusions = nn.ModuleList(fusions)
        self.head_inputs = nn.ModuleList(head_inputs)
        self.heads = nn.ModuleDict(heads)
        self.task_names = task_names
        self.config = dict(config) if config is not None else None
        self._keeps_all_stages = any(not isinstance(m, LastStage) for m in self.head_inputs)

    @property
    def num_stages(self) -> int:
        return (
            self.columns[0].num_stages if self.execution == "columns" else self.columns.num_stages
        )

    @property
    def execution(self) -> str:
        """How the columns run: ``"columns"`` or ``"grouped"`` (see :data:`EXECUTIONS`)."""
        return "grouped" if isinstance(self.columns, GroupedColumns) else "columns"

    def set_execution(self, execution: str) -> MultiTaskNetwork:
        """Run the K columns one by one (``"columns"``) or as one grouped network (``"grouped"``).

        Grouping is checked numerically and refused with a one-line error for layers that mix
        channels; the single-column ``multi`` baseline has nothing to group and stays as it is.
        Switch before building the optimizer: the parameters are replaced.
        """
        if execution not in EXECUTIONS:
            raise unknown_choice("execution", execution, EXECUTIONS)
        if execution == self.execution or len(self.columns) == 1:
            return self
        if execution == "columns":
            raise ValueError(
                "a grouped network goes back to columns through its state dict: build a new "
                "network and load_state_dict(grouped.state_dict())"
            )
        self.columns = group_columns(list(self.columns))
        return self

    def column_index(self, task: str) -> int:
        """Which column (and head input) feeds ``task``'s head (0 for the shared-column baseline)."""
        return 0 if len(self.columns) == 1 else self.task_names.index(task)

    def head_input(self, task: str) -> nn.Module:
        """The head input that ``task``'s head reads (its column's)."""
        return self.head_inputs[self.column_index(task)]

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        if images.dim() != 4:
            raise ValueError(f"expected images of shape [N, C, H, W], got {list(images.shape)}")
        if self.execution == "grouped":
            return self._forward_grouped(images)
        features = [images] * len(self.columns)
        history: list[list[Tensor]] = [[] for _ in self.columns]
        for stage in range(self.num_stages):
            features = [column.stages[stage](x) for column, x in zip(self.columns, features)]
            if self.fusions:
                features = self.fusions[stage](features)
            if self._keeps_all_stages or stage == self.num_stages - 1:
                for outputs, feature in zip(history, features):
                    outputs.append(feature)
        return self._heads([head_input(h) for head_input, h in zip(self.head_inputs, history)])

    def _heads(self, inputs: Sequence[Tensor]) -> dict[str, Tensor]:
        """Every task's head on its column's head input (computed once per column)."""
        return {task: self.heads[task](inputs[self.column_index(task)]) for task in self.task_names}

    def _forward_grouped(self, images: Tensor) -> dict[str, Tensor]:
        columns: GroupedColumns = self.columns
        features = columns.stem_input(images)
        history: list[Tensor] = []
        for stage in range(self.num_stages):
            features = columns.stages[stage](features)
            if self.fusions:
                features = self.fusions[stage].forward_stacked(features)
            if self._keeps_all_stages or stage == self.num_stages - 1:
                history.append(features)
        first = self.num_stages - len(history)
        per_column = list(
            zip(*(columns.split(x, stage) for stage, x in enumerate(history, start=first)))
        )
        return self._heads(
            [head_input(list(h)) for head_input, h in zip(self.head_inputs, per_column)]
        )

    def auxiliary_loss(self) -> Tensor | None:
        """Extra loss terms of the last forward: the sum of the fusion layers'
        :meth:`~nddr.models.fusion.Fusion.auxiliary_loss` (``None`` when none has one)."""
        losses = [loss for fusion in self.fusions if (loss := fusion.auxiliary_loss()) is not None]
        return sum(losses[1:], losses[0]) if losses else None

    def fusion_modules(self) -> list[nn.Module]:
        """Modules trained at the fusion learning rate: stage fusions and the head inputs other
        than shortcuts (such as sluice's layer selection)."""
        return [*self.fusions, *(m for m in self.head_inputs if not isinstance(m, Shortcut))]

    def shortcut_modules(self) -> list[Shortcut]:
        """The shortcuts (NDDR-CNN-Shortcut's head inputs), trained at their own learning rate."""
        return [m for m in self.head_inputs if isinstance(m, Shortcut)]

    def classifier_layers(self) -> list[nn.Module]:
        """The heads' last classifier layers (trained at 10x / 20x the base learning rate)."""
        return [layer for head in self.heads.values() for layer in head.final_layers()]

    def parameter_summary(self) -> dict[str, int]:
        """Parameter counts by part: columns, fusion (stage fusions), head_inputs (one per column),
        heads, total."""

        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())

        summary = {
            "columns": count(self.columns),
            "fusion": count(self.fusions),
            "head_inputs": count(self.head_inputs),
            "heads": count(self.heads),
        }
        summary["total"] = sum(summary.values())
        return summary
