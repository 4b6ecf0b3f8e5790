"""The model file: one ``torch.save`` of plain containers, opened with ``weights_only=True``.

Layout (format ``cwsc-resnet``, version 3)::

    {"format": "cwsc-resnet", "version": 3,
     "metadata": "<JSON text>",            # everything but the weights, see ModelBundle
     "members": [state_dict, ...],         # one dict of tensors per ensemble member
     "trees": {name: tensor, ...}}         # only with trees: TreeEnsemble.arrays()

Version 2 added the gradient-boosted trees ``train`` averages with the network (the
metadata's ``"trees"`` says which, on which features, and with what weight); a version 1 file
is a network alone and still loads. Version 3: the network also takes each cell's position
(``"position": true`` in the metadata); a file without it is still written as version 2, so
an older backend reads it.

Loading never unpickles code: ``torch.load(weights_only=True)`` accepts tensors, dicts,
lists, strings and numbers only, and the metadata is JSON text parsed by ``json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cwsc.errors import InputFileError
from cwsc.io import rasters as io
from cwsc.io.jsonable import jsonable
from cwsc.machine.versions import software_versions
from cwsc.ml.network import ResNetConfig, build_network
from cwsc.ml.patches import Scaling
from cwsc.ml.trees import TREES_WEIGHT, TreeEnsemble

FORMAT = "cwsc-resnet"
VERSION = 3


@dataclass
class ModelBundle:
    """Everything needed to predict, and what the training measured."""

    members: list[dict[str, torch.Tensor]]
    network: ResNetConfig
    scaling: Scaling
    channels: list[str]  # predictor channel names, in input order (the mask channel excluded)
    patch_size: int
    grid: dict  # {"crs": WKT, "resolution": [x, y], "transform": [...], "width", "height"}
    recipe: dict
    metrics: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)  # seed, split, kge threshold, histories, ...
    versions: dict = field(default_factory=dict)
    #: per channel the 1st, 50th and 99th percentiles at training ({"p1", "p50", "p99"})
    channel_statistics: list = field(default_factory=list)
    #: a model learned from runoff (``learn``): {"head": ParameterHead.to_dict(),
    #: "kge_margin": float | None, "kge_threshold": float, ...}; empty for a label-route model
    physics: dict = field(default_factory=dict)
    #: the gradient-boosted trees averaged with the network (label-route models; None: the
    #: network alone) and what they are: {"name": a key of cwsc.ml.baseline.BASELINES,
    #: "neighbourhoods": [3, 11] (sides of the neighbourhood means among the features),
    #: "weight": TREES_WEIGHT, "val_r2", "test_r2", "iterations"}
    trees: TreeEnsemble | None = None
    trees_info: dict = field(default_factory=dict)
    #: the network also takes each cell's position (cwsc.ml.position.POSITION_CHANNELS, after
    #: the predictors; the scaling covers them too)
    position: bool = False

    @property
    def network_channels(self) -> int:
        """Channels the network takes, the mask excluded: the predictors, then the position."""
        from cwsc.ml.position import POSITION_CHANNELS

        return len(self.channels) + (len(POSITION_CHANNELS) if self.position else 0)

    @property
    def trees_weight(self) -> float:
        """The trees' share of the map (0 without trees)."""
        return float(self.trees_info.get("weight", TREES_WEIGHT)) if self.trees is not None else 0.0

    @property
    def tree_neighbourhoods(self) -> tuple[int, ...]:
        """Sides (cells) of the neighbourhood means among the trees' features (empty: the
        cell's own predictors only)."""
        return tuple(int(s) for s in self.trees_info.get("neighbourhoods", ()))

    @property
    def predictions(self) -> int:
        """How many predictions make the map: the network members, and the trees when carried."""
        return len(self.members) + (1 if self.trees is not None else 0)

    def metadata(self) -> dict:
        return {
            "network": self.network.to_dict(),
            "scaling": self.scaling.to_dict(),
            "channels": list(self.channels),
            "patch_size": int(self.patch_size),
            "grid": self.grid,
            "recipe": self.recipe,
            "metrics": self.metrics,
            "sizes": self.sizes,
            "training": self.training,
            "versions": self.versions or software_versions(),
            "channel_statistics": self.channel_statistics,
            "ensemble": len(self.members),
            **({"physics": self.physics} if self.physics else {}),
            **({"trees": self.trees_info} if self.trees is not None else {}),
            **({"position": True} if self.position else {}),
        }

    def parameter_head(self):
        """The :class:`~cwsc.ml.physics.ParameterHead` of a model learned from runoff, else
        None."""
        if not self.physics:
            return None
        from cwsc.ml.physics import ParameterHead

        return ParameterHead.from_dict(self.physics["head"])

    def networks(self, device: torch.device | str = "cpu", fuse: bool = True) -> list[torch.nn.Module]:
        """The members as networks in eval mode on ``device`` (channels-last), batch norms
        folded into convolutions where exact (``fuse``)."""
        from cwsc.ml.network import fuse_for_inference

        nets = []
        for state in self.members:
            net = build_network(self.network)
            net.load_state_dict(state)
            net.eval()
            if fuse:
                net = fuse_for_inference(net)
            nets.append(net.to(device).to(memory_format=torch.channels_last))
        return nets


def grid_summary(grid: io.Grid) -> dict:
    return {**grid.to_dict(), "resolution": list(grid.resolution)}


def save_model(path: str | Path, bundle: ModelBundle) -> Path:
    """Write the model file to ``path`` (a command writes to its
    :class:`~cwsc.runtime.outputs.Outputs` temporary, committed at the end)."""
    payload = {
        "format": FORMAT,
        "version": VERSION if bundle.position else 2,
        "metadata": json.dumps(jsonable(bundle.metadata()), allow_nan=False),
        "members": [{k: v.detach().cpu().contiguous() for k, v in m.items()} for m in bundle.members],
    }
    if bundle.trees is not None:
        payload["trees"] = {
            k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bundle.trees.arrays().items()
        }
    torch.save(payload, path)
    return Path(path)


def load_model(path: str | Path, label: str = "MODEL") -> ModelBundle:
    """Open a model file; anything that is not a readable CWSC model is a ``BadInput``."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{label}: model file '{p}' does not exist")
    import zipfile

    if not zipfile.is_zipfile(p):  # torch.save writes a zip archive: anything else is not ours
        raise InputFileError(
            f"{label}: '{p}' is not a CWSC model file (not a PyTorch archive); "
            "give a file written by the train step"
        )
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to unpack means "not our model"
        raise InputFileError(
            f"{label}: '{p}' is corrupted or not a CWSC model file (a weights-only "
            f"load failed: {type(exc).__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputFileError(
            f"{label}: '{p}' is not a CWSC model file (no '{FORMAT}' format mark); "
            "give a file written by the train step"
        )
    if int(payload.get("version", 0)) > VERSION:
        raise InputFileError(
            f"{label}: '{p}' is model format version {payload.get('version')}, newer "
            f"than this backend reads ({VERSION}); update the plugin"
        )
    try:
        meta = json.loads(payload["metadata"])
        members = list(payload["members"])
        bundle = ModelBundle(
            members=members,
            network=ResNetConfig.from_dict(meta["network"]),
            scaling=Scaling.from_dict(meta["scaling"]),
            channels=list(meta["channels"]),
            patch_size=int(meta["patch_size"]),
            grid=meta["grid"],
            recipe=meta["recipe"],
            metrics=meta.get("metrics", {}),
            sizes=meta.get("sizes", {}),
            training=meta.get("training", {}),
            versions=meta.get("versions", {}),
            channel_statistics=list(meta.get("channel_statistics", [])),
            physics=dict(meta.get("physics") or {}),
            position=bool(meta.get("position", False)),
        )
        if "trees" in meta or "trees" in payload:
            if "trees" not in meta or "trees" not in payload:
                raise ValueError("the trees' arrays or their description is missing")
            bundle.trees = TreeEnsemble.from_arrays({k: v.numpy() for k, v in payload["trees"].items()})
            bundle.trees_info = dict(meta["trees"])
            want = len(bundle.channels) * (1 + len(bundle.tree_neighbourhoods))
            if bundle.trees.n_features != want:
                raise ValueError(f"the trees take {bundle.trees.n_features} features, not {want}")
            if bundle.physics:
                raise ValueError("a model learned from runoff carries trees")
        if not members:
            raise ValueError("no ensemble member")
        net = build_network(bundle.network)
        for k, m in enumerate(members):
            net.load_state_dict(m)  # strict: every weight present and the right shape
            broken = [
                name
                for name, w in m.items()
                if torch.is_tensor(w) and w.is_floating_point() and not bool(torch.isfinite(w).all())
            ]
            if broken:
                raise ValueError(
                    f"member {k + 1}'s weights {', '.join(broken[:3])} hold NaN or infinite values"
                )
        if (
            len(bundle.scaling.mean) != bundle.network_channels
            or bundle.network.in_channels != bundle.network_channels + 1
        ):
            raise ValueError("channel count disagrees with the network")
        head = bundle.parameter_head()
        if (head.outputs if head else 1) != bundle.network.outputs:
            raise ValueError("the network's outputs disagree with its parameter head")
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise InputFileError(
            f"{label}: '{p}' is a damaged CWSC model file ({type(exc).__name__}: {first})"
        ) from None
    return bundle
