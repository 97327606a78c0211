"""`--init-from`: start a modular network from weights someone already has (a plain state dict).

The file is read with `weights_only=True` (a pickle that is not plain tensors is refused). Its
names are the plain network's (torchvision's, for a `torchvision:` model); `GatingPlan.translate`
maps them to the gated blocks the convs and BNs moved into. A tensor whose shape differs is left
at its fresh value: the classifier when the class count differs, for one; a first conv trained on
RGB taking grayscale gets its filters summed over the colour channels instead (the same response
to a gray image). The mask generators always start fresh, and so does the preprocessing's
mean and std: they describe the images this run trains on, not what the file's network learned
(an mwt checkpoint of another dataset holds its own).
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mwt.core.errors import MwtError, first_line
from mwt.models.gate import Preprocess


@dataclass(frozen=True)
class InitReport:
    """What `init_from` loaded into the network and what it left at the fresh values."""

    loaded: int  # tensors copied from the file
    skipped: tuple[str, ...]  # "name [file shape] vs [network shape]" of tensors that did not fit
    unused: tuple[str, ...]  # names in the file the network has no tensor for

    def line(self, path: str | Path) -> str:
        """One line for the user: counts, and the first few tensors that did not fit."""
        text = f"initialized {self.loaded} tensors from {path}"
        if self.skipped:
            text += f"; {len(self.skipped)} kept fresh values (shapes differ: {', '.join(self.skipped[:3])}" + (
                " ...)" if len(self.skipped) > 3 else ")")
        if self.unused:
            text += f"; {len(self.unused)} in the file unused ({', '.join(self.unused[:3])}" + (
                " ...)" if len(self.unused) > 3 else ")")
        return text


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A file of plain tensors (a state dict, or a dict holding one under 'state_dict'), checked:
    weights only, every value a tensor, every float finite. Any problem is one MwtError."""
    path = Path(path)
    if not path.is_file():
        raise MwtError(f"--init-from: {path} does not exist" if not path.exists() else f"--init-from: {path} is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            d = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise MwtError(f"--init-from: {path} holds pickled objects that are not plain tensors; refusing to load it "
                       "(save the weights with torch.save(model.state_dict(), path))") from None
    except Exception as e:  # a damaged or foreign file raises many types
        raise MwtError(f"--init-from: {path} is not a readable weights file: {first_line(e)}") from None
    if isinstance(d, dict) and isinstance(d.get("state_dict"), dict):
        d = d["state_dict"]
    if not isinstance(d, dict) or not d:
        raise MwtError(f"--init-from: {path} holds no state dict (a dict of named tensors)")
    for name, t in d.items():
        if not isinstance(name, str) or not isinstance(t, torch.Tensor):
            raise MwtError(f"--init-from: {path}: entry {name!r} is not a named tensor")
        if t.dtype.is_floating_point and not bool(torch.isfinite(t).all()):
            raise MwtError(f"--init-from: {path}: tensor '{name}' holds NaN or infinite values")
    return d


def init_from(model: nn.Module, state: dict[str, torch.Tensor], label: str = "the file") -> InitReport:
    """Copy the tensors of `state` that fit into `model` (in place); MwtError if none does."""
    plan = getattr(model, "plan", None)
    translate = plan.translate if plan is not None else (lambda k: k)
    target = model.state_dict()
    data_owned = tuple(f"{n}." for n, m in model.named_modules() if isinstance(m, Preprocess))
    target = {k: v for k, v in target.items() if not k.startswith(data_owned)}
    updates: dict[str, torch.Tensor] = {}
    skipped, unused = [], []
    for key, value in state.items():
        name = translate(key) if translate(key) in target else key
        ref = target.get(name)
        if ref is None:
            unused.append(key)
            continue
        if value.shape != ref.shape and value.dim() == 4 and ref.dim() == 4 and ref.shape[1] == 1 and (
                value.shape[0], *value.shape[2:]) == (ref.shape[0], *ref.shape[2:]):
            value = value.sum(dim=1, keepdim=True)  # RGB filters on a grayscale input
        if value.shape != ref.shape:
            skipped.append(f"{key} {list(value.shape)} vs {list(ref.shape)}")
            continue
        updates[name] = value.to(ref.dtype)
    if not updates:
        first = ", ".join(list(state)[:3])
        raise MwtError(f"--init-from: nothing in {label} matches the network (its first names: {first}); "
                       "is it the same architecture at width 1?")
    model.load_state_dict(updates, strict=False)
    return InitReport(len(updates), tuple(skipped), tuple(unused))
