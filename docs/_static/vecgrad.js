// Code and output blocks scroll sideways rather than wrap (a wrapped line would lose its
// indentation). A block that scrolls gets a tab stop, so it can be scrolled from the keyboard
// (axe: scrollable-region-focusable); one that fits gets none, to keep the tab order short.
function vecgradFocusableScrollers() {
  for (const pre of document.querySelectorAll("div.highlight pre")) {
    if (pre.scrollWidth > pre.clientWidth) pre.setAttribute("tabindex", "0");
    else pre.removeAttribute("tabindex");
  }
}
document.addEventListener("DOMContentLoaded", vecgradFocusableScrollers);
window.addEventListener("resize", vecgradFocusableScrollers);

// furo puts the page's view/edit buttons and the theme toggle above the article, outside every
// landmark (axe: region); name the group as one, so a screen reader lists it with the others.
document.addEventListener("DOMContentLoaded", () => {
  const tools = document.querySelector(".content-icon-container");
  if (tools && tools.querySelector(".view-this-page, .edit-this-page")) {
    tools.setAttribute("role", "navigation");
    tools.setAttribute("aria-label", "This page's source and colour theme");
  }
});
