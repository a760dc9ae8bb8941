"""The API pages of the built site: signatures read as plain types, types link to their docs,
and each module's source page shows the module as it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from vecgrad_site import ROOT, no_problems, parse

# What leaks when autodoc cannot turn an annotation into a type name.
LEAKS = ("TypeAliasForwardRef", "ForwardRef(", "<class ", "typing.", "~")


@pytest.fixture(scope="module")
def api(parsed_pages: dict[str, BeautifulSoup]) -> dict[str, list[str]]:
    """API page -> its signatures as a reader sees them (whitespace collapsed)."""
    return {
        rel: [" ".join(dt.get_text().split()).removesuffix("¶") for dt in page.select("dt.sig")]
        for rel, page in parsed_pages.items()
        if rel.startswith("api/generated/")
    }


def test_no_page_contains_type_alias_forward_ref(parsed_pages: dict[str, BeautifulSoup]) -> None:
    found = [rel for rel, page in parsed_pages.items() if "TypeAliasForwardRef" in str(page)]
    assert not found, f"TypeAliasForwardRef appears in {found}"


def test_api_signatures_read_as_plain_types(api: dict[str, list[str]]) -> None:
    problems = [f"{rel}: no signature" for rel, sigs in api.items() if not sigs]
    problems += [
        f"{rel}: {leak!r} in {sig}"
        for rel, sigs in api.items()
        for sig in sigs
        for leak in LEAKS
        if leak in sig
    ]
    no_problems(problems, "API signature problems")
    # The annotations the issue named, as a reader sees them.
    jvp = " ".join(api["api/generated/vecgrad.jvp.html"])
    assert "func: Callable[..., Tensor], inputs: Tensor, v: Tensor, *, has_aux: Literal[False]" in (
        jvp
    )
    assert "= False) → tuple[Tensor, Tensor]" in jvp
    assert "inputs: tuple[Tensor, ...], v: tuple[Tensor, ...], *" in jvp
    loss_jacobian = " ".join(api["api/generated/vecgrad.loss_jacobian.html"])
    assert "params: Module | Mapping[str, Tensor] | Iterable[tuple[str, Tensor]]" in loss_jacobian
    assert "create_graph: bool = False) → dict[str, Tensor]" in loss_jacobian
    # jacobian's overloads, plain @overload like jvp's
    jacobian = " ".join(api["api/generated/vecgrad.jacobian.html"])
    strategy = "strategy: Literal['auto', 'reverse', 'forward', 'loop'] = 'auto'"
    assert f"inputs: Tensor, *, {strategy}, chunk_size: int | None = None, has_aux" in jacobian
    assert f"inputs: tuple[Tensor, ...], *, {strategy}" in jacobian
    assert "has_aux: Literal[True]) → tuple[Tensor, Any]" in jacobian
    per_sample = api["api/generated/vecgrad.per_sample_grads.html"][0]
    assert "loss_fn: Callable[[Tensor, Tensor], Tensor]" in per_sample
    assert "model: Module" in per_sample


def test_signature_types_link_to_their_docs(parsed_pages: dict[str, BeautifulSoup]) -> None:
    """Tensor in a signature links to PyTorch's documentation (the offline inventory)."""
    signature = parsed_pages["api/generated/vecgrad.jvp.html"].select_one("dt.sig")
    assert signature is not None
    links = [a.get("href") for a in signature.select("a")]
    assert "https://docs.pytorch.org/docs/stable/tensors.html#torch.Tensor" in links


def test_module_pages_show_the_current_source(site_dir: Path) -> None:
    """viewcode's page of each module (``[source]``) shows the file as it is now, also after an
    incremental build, which writes again only the pages whose module or API pages changed."""
    modules = site_dir / "_modules/vecgrad"
    pages, stale = sorted(modules.rglob("*.html")), []
    for page in pages:
        html = parse(page)
        for link in html.select("a.viewcode-back"):  # the [docs] links viewcode adds
            link.decompose()
        shown = html.select_one("div.highlight pre")
        source = ROOT / "src/vecgrad" / page.relative_to(modules).with_suffix(".py")
        lines = [
            [line for line in text.splitlines() if line.strip()]
            for text in (shown.get_text() if shown else "", source.read_text(encoding="utf-8"))
        ]
        if lines[0] != lines[1]:
            stale.append(page.relative_to(site_dir).as_posix())
    no_problems(stale, "module pages that differ from their module")
    assert pages, f"no module page under {modules}"
