"""Regenerate ``torch.inv``, an offline intersphinx inventory for PyTorch's documentation.

PyTorch's own ``objects.inv`` cannot be fetched during an offline build, so this script derives
one from the installed ``torch`` package: it walks the public modules the vecgrad docs refer to
and writes an entry for each function, class and method. The URLs follow PyTorch's documentation
layout (``generated/<qualified name>.html#<qualified name>``); they are derived, not read from
PyTorch's site, so a rare object documented elsewhere links to a page that redirects or does not
exist.

Run from the repository root after changing the torch version::

    python docs/_intersphinx/make_torch_inv.py
"""

from __future__ import annotations

import inspect
import types
from pathlib import Path

import sphobjinv as soi
import torch

OUT = Path(__file__).with_name("torch.inv")

# Modules whose public names get an entry, with the page that documents the module itself.
MODULES = {
    "torch": "torch.html",
    "torch.autograd": "autograd.html",
    "torch.autograd.functional": "autograd.html",
    "torch.autograd.forward_ad": "autograd.html",
    "torch.func": "func.api.html",
    "torch.nn": "nn.html",
    "torch.nn.functional": "nn.functional.html",
    "torch.nn.utils": "nn.html",
    "torch.optim": "optim.html",
    "torch.testing": "testing.html",
    "torch.linalg": "linalg.html",
    "torch.profiler": "profiler.html",
    "torch.fx": "fx.html",
}
# Classes whose public methods and attributes get an entry too.
CLASSES = [
    "torch.Tensor",
    "torch.nn.Module",
    "torch.autograd.Function",
    "torch.optim.Optimizer",
    "torch.optim.SGD",
    "torch.utils.benchmark.Timer",
]
# Classes documented, members included, on their module's page rather than a generated page.
INLINE_CLASSES = {"torch.utils.benchmark.Timer": "benchmark_utils.html"}
# Where a class is defined, as autodoc writes it in a signature (``nn.Module`` in an annotation
# renders as torch.nn.modules.module.Module): the same page as its public name.
DEFINED_AT = {
    "torch.nn.modules.module.Module": "torch.nn.Module",
    "torch._C.Generator": "torch.Generator",
}
# Objects documented on a shared page rather than on a generated page of their own.
SPECIAL_URIS = {
    "torch.Tensor": "tensors.html#torch.Tensor",
    "torch.testing.assert_close": "testing.html#torch.testing.assert_close",
    "torch.dtype": "tensor_attributes.html#torch.dtype",
    "torch.device": "tensor_attributes.html#torch.device",
    "torch.utils.benchmark.Timer": "benchmark_utils.html#torch.utils.benchmark.Timer",
}


def public_names(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    return sorted(set(names))


def role_of(obj: object, *, in_class: bool) -> str | None:
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "method" if in_class else "function"
    return None


def main() -> None:
    inv = soi.Inventory()
    inv.project = "PyTorch"
    inv.version = torch.__version__.split("+")[0]
    seen: set[tuple[str, str]] = set()

    def add(name: str, role: str, uri: str) -> None:
        if (name, role) in seen:
            return
        seen.add((name, role))
        inv.objects.append(
            soi.DataObjStr(name=name, domain="py", role=role, priority="1", uri=uri, dispname="-")
        )

    for modname, page in MODULES.items():
        module = __import__(modname, fromlist=["_"])
        add(modname, "module", f"{page}#module-{modname}")
        for attr in public_names(module):
            obj = getattr(module, attr, None)
            if obj is None or isinstance(obj, types.ModuleType):
                continue
            role = role_of(obj, in_class=False)
            if role is None:
                continue
            name = f"{modname}.{attr}"
            add(name, role, SPECIAL_URIS.get(name, f"generated/{name}.html#{name}"))
    for clsname in CLASSES:
        modname, _, attr = clsname.rpartition(".")
        cls = getattr(__import__(modname, fromlist=["_"]), attr)
        add(clsname, "class", SPECIAL_URIS.get(clsname, f"generated/{clsname}.html#{clsname}"))
        for member in sorted(n for n in vars(cls) if not n.startswith("_")):
            name = f"{clsname}.{member}"
            role = role_of(getattr(cls, member), in_class=True) or "attribute"
            # Tensor methods have their own generated pages; other classes document members inline.
            if clsname == "torch.Tensor":
                page = f"generated/{name}.html"
            else:
                page = INLINE_CLASSES.get(clsname, f"generated/{clsname}.html")
            add(name, role, f"{page}#{name}")
    for name, uri in SPECIAL_URIS.items():
        add(name, "class" if name in {"torch.dtype", "torch.device"} else "function", uri)
    for name, public in DEFINED_AT.items():
        add(name, "class", SPECIAL_URIS.get(public, f"generated/{public}.html#{public}"))

    OUT.write_bytes(soi.compress(inv.data_file(contract=True)))
    print(f"wrote {OUT} with {len(inv.objects)} objects for torch {inv.version}")


if __name__ == "__main__":
    main()
