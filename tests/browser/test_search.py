"""The site's search box puts the page that answers a question among its first three pages.

``SEARCHES`` is the table of questions: a query as a reader types it, and the pages that answer
it (any of them among the first three pages listed passes). Add a row for each question a new
page answers. The snippets under the results show what a reader sees, never raw TeX.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser

from .conftest import PageLog, watch

pytestmark = pytest.mark.browser
API, GALLERY = "api/generated/vecgrad.", "gallery/"
SEARCHES: dict[str, tuple[str, ...]] = {
    "per-sample gradients": (f"{API}per_sample_grads",),
    "per-sample gradients from a vector of losses": (
        f"{GALLERY}03_batched/plot_02_masked_backward",
    ),
    "per_sample_grads": (f"{API}per_sample_grads",),
    "batch jacobian": (f"{API}batch_jacobian", f"{GALLERY}03_batched/plot_01_batch_jacobian"),
    "jacobian": (f"{API}jacobian",),
    "jacobian several inputs": (f"{GALLERY}02_jacobians/plot_02_several_inputs",),
    "grad_outputs": (f"{GALLERY}01_gradients/plot_02_grad_outputs",),
    "retain_graph": ("concepts/graph",),
    "create_graph": ("concepts/graph",),
    "Hessian": (f"{GALLERY}04_second_order/plot_01_hessians", f"{API}hessian"),
    "hessian-vector product": (f"{GALLERY}04_second_order/plot_01_hessians", f"{API}hvp"),
    "jvp forward mode": (f"{GALLERY}02_jacobians/plot_03_forward_mode", f"{API}jvp"),
    "vmap": (f"{GALLERY}06_extending/plot_02_composing_transforms", "concepts/composing"),
    "sparse jacobian colouring": (f"{GALLERY}07_sparse/plot_01_coloring", f"{API}sparse_jacobian"),
    "hutchinson trace": (f"{API}hutchinson",),
    "custom autograd.Function": (f"{GALLERY}06_extending/plot_01_custom_function",),
    "numerical jacobian finite differences": (f"{API}numerical_jacobian",),
    "neural tangent kernel": (f"{GALLERY}05_applications/plot_03_ntk",),
    "log determinant of a jacobian": (f"{GALLERY}05_applications/plot_02_log_determinant",),
    "gradient penalty": (f"{GALLERY}05_applications/plot_06_gradient_penalty",),
    "DP-SGD gradient clipping": (f"{GALLERY}05_applications/plot_05_dp_sgd",),
    "choose forward or reverse mode": ("choosing",),
    "hessian with respect to model parameters": (f"{API}param_hessian",),
    "several outputs has_aux": (f"{GALLERY}02_jacobians/plot_02_several_inputs",),
    "torch.func vs torch.autograd.functional": ("concepts/apis",),
    "complex numbers Wirtinger": (f"{GALLERY}02_jacobians/plot_04_complex",),
}
# Error messages as readers paste them: the field guide's section must be the first result.
ERRORS = (
    "grad can be implicitly created only for scalar outputs",
    "Trying to backward through the graph a second time",
    "appears to not have been used in the graph. Set allow_unused=True",
    "element 0 of tensors does not require grad and does not have a grad_fn",
    "a leaf Variable that requires grad is being used in an in-place operation",
    "one of the variables needed for gradient computation has been modified by an inplace "
    "operation",
    "It looks like you're calling .item() on a Tensor",
    "use a Tensor in some data-dependent control flow",
    "called random operation while in randomness error mode",
    "Batch norm got a batched tensor as input while the running_mean or running_var",
    "calling Tensor.requires_grad_() inside of a function being transformed by a functorch "
    "transform",
    "Trying to use forward AD with that does not support it because it has not been implemented",
)
SEARCHES.update({message: ("errors",) for message in ERRORS})
RESULTS = """() => Array.from(document.querySelectorAll("#search-results ul.search li"), (li) =>
  [li.querySelector("a").getAttribute("href"), li.querySelector("p.context")?.textContent ?? ""])"""
DONE = "() => document.querySelector('#search-results .search-summary')?.textContent.trim()"
TEX = re.compile(r"\\[()[\]]|\\(?:frac|mathbb|mathrm|top|partial|nabla|cdot|times|sum)\b")


def ranked_pages(links: list[str]) -> list[str]:
    """The pages of the results, each once, in the order listed (a page can hold several hits)."""
    return list(dict.fromkeys(link.split("#")[0].removesuffix(".html") for link in links))


@pytest.fixture(scope="module")
def searches(
    browser: Browser, browser_context_args: dict[str, Any], site_dir: Path, stats: Counter[str]
) -> dict[str, dict[str, Any]]:
    """Each query of ``SEARCHES`` typed into the search box: ranked pages, snippets, problems."""
    context = browser.new_context(**browser_context_args)
    logs, page, found = watch(context, site_dir), context.new_page(), {}
    page.goto("index.html")
    for query in SEARCHES:
        logs.append(PageLog())
        page.fill("input.sidebar-search", query)  # furo's search box, on every page
        page.press("input.sidebar-search", "Enter")
        page.wait_for_url(lambda url, q=query: parse_qs(urlsplit(url).query).get("q") == [q])
        page.wait_for_function(DONE, timeout=20_000)  # filled once the last result is listed
        page.wait_for_load_state("networkidle")  # every snippet fetched
        results = page.evaluate(RESULTS)
        log = logs[-1]
        found[query] = {
            "pages": ranked_pages([link for link, _ in results]),
            "snippets": [snippet for _, snippet in results],
            "problems": log.errors + log.failed + log.offsite,
        }
    context.close()
    stats["searches run"] = len(found)
    return found


@pytest.mark.parametrize("query", SEARCHES)
def test_search_ranks_the_answer_in_the_top_three(
    searches: dict[str, dict[str, Any]], query: str
) -> None:
    found = searches[query]
    assert not found["problems"], f"search page for {query!r}: {found['problems']}"
    top = found["pages"][:3]
    assert set(SEARCHES[query]) & set(top), f"{query!r}: top three {top}, wanted {SEARCHES[query]}"


@pytest.mark.parametrize("message", ERRORS)
def test_error_messages_find_the_field_guide_first(
    searches: dict[str, dict[str, Any]], message: str
) -> None:
    pages = searches[message]["pages"]
    assert pages[:1] == ["errors"], f"{message!r}: first results {pages[:3]}"


def test_search_snippets_show_no_tex(searches: dict[str, dict[str, Any]]) -> None:
    tex = [
        f"{query!r}: {snippet[:160]!r}"
        for query, found in searches.items()
        for snippet in found["snippets"]
        if TEX.search(snippet)
    ]
    assert not tex, "raw TeX in search snippets:\n  " + "\n  ".join(tex)
    assert sum(len(found["snippets"]) for found in searches.values()), "no snippet shown"
