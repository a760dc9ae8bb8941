"""Static checks of the built site's HTML (no browser): API signatures read as plain types.

The site is the one ``nox -s tests`` builds into ``docs/_build/html``; it is built here with the
project's Sphinx command when it is missing.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "docs" / "_build" / "html"
sys.path.insert(0, str(ROOT / "benchmarks"))

import docs_build  # noqa: E402  (benchmarks/ is not a package)

SIGNATURE = re.compile(r'<dt class="sig sig-object[^"]*"[^>]*>(.*?)</dt>', re.DOTALL)
TAG = re.compile(r"<[^>]+>")
# What leaks when autodoc cannot turn an annotation into a type name.
LEAKS = ("TypeAliasForwardRef", "ForwardRef(", "<class ", "typing.", "~")


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    """Every HTML page of the built site: path from the site root -> text."""
    if not (SITE / "index.html").is_file():
        docs_build.sphinx(ROOT, "auto")
    return {
        path.relative_to(SITE).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(SITE.rglob("*.html"))
    }


def signatures(text: str) -> list[str]:
    """The signatures of a page as a reader sees them (tags dropped, whitespace collapsed)."""
    return [
        " ".join(html.unescape(TAG.sub("", found)).split()).removesuffix("¶")
        for found in SIGNATURE.findall(text)
    ]


def test_no_page_contains_type_alias_forward_ref(pages: dict[str, str]) -> None:
    found = [rel for rel, text in pages.items() if "TypeAliasForwardRef" in text]
    assert not found, f"TypeAliasForwardRef appears in {found}"


def test_api_signatures_read_as_plain_types(pages: dict[str, str]) -> None:
    api = {rel: signatures(text) for rel, text in pages.items() if rel.startswith("api/generated/")}
    assert len(api) >= 9, f"expected the API pages, found {sorted(api)}"
    problems = [f"{rel}: no signature" for rel, sigs in api.items() if not sigs]
    problems += [
        f"{rel}: {leak!r} in {sig}"
        for rel, sigs in api.items()
        for sig in sigs
        for leak in LEAKS
        if leak in sig
    ]
    assert not problems, "\n".join(problems)
    # The annotations the issue named, as a reader sees them.
    jvp = " ".join(api["api/generated/vecgrad.jvp.html"])
    assert "inputs: Tensor, v: Tensor) → tuple[Tensor, Tensor]" in jvp
    assert "inputs: tuple[Tensor, ...], v: tuple[Tensor, ...])" in jvp
    loss_jacobian = " ".join(api["api/generated/vecgrad.loss_jacobian.html"])
    assert "params: Module | Mapping[str, Tensor] | Iterable[tuple[str, Tensor]]" in loss_jacobian
    assert "create_graph: bool = False) → dict[str, Tensor]" in loss_jacobian
    # jacobian's overloads, plain @overload like jvp's
    jacobian = " ".join(api["api/generated/vecgrad.jacobian.html"])
    assert "inputs: Tensor, *, strategy: str = 'auto', chunk_size: int | None = None) → Tensor" in (
        jacobian
    )
    assert "inputs: tuple[Tensor, ...], *, strategy: str = 'auto'" in jacobian
    per_sample = api["api/generated/vecgrad.per_sample_grads.html"][0]
    assert "loss_fn: Callable[[Tensor, Tensor], Tensor]" in per_sample
    assert "model: Module" in per_sample


def test_signature_types_link_to_their_docs(pages: dict[str, str]) -> None:
    """Tensor in a signature links to PyTorch's documentation (the offline inventory)."""
    text = pages["api/generated/vecgrad.jvp.html"]
    signature = SIGNATURE.search(text)
    assert signature is not None
    assert "https://docs.pytorch.org/docs/stable/tensors.html#torch.Tensor" in signature.group(1)
