/* The site search's ranking (conf.py's html_search_scorer, read into language_data.js).
 *
 * Sphinx gives most pages the same score for a query word in any heading and orders ties by
 * title, so pages starting with "A" win. Here a result's score says how much of the query its
 * page's title covers, then its best heading, then how much of the title is about the query (a
 * page about X outranks a page that also mentions X); Sphinx's own score only breaks what ties
 * remain. Words are compared as Sphinx's index stores them: stemmed, stop words dropped, and an
 * identifier such as per_sample_grads also read as its parts.
 */
var Scorer = {
  // Sphinx's defaults, used for its own scores (the last tie-breaker below).
  objNameMatch: 11, objPartialMatch: 6, objPrio: {0: 15, 1: 5, 2: -5}, objPrioDefault: 0,
  title: 15, partialTitle: 7, term: 5, partialTerm: 2,

  // Each word of a text as its stemmed forms: [word, ...parts of an identifier].
  words: (text) => splitQuery(text.toLowerCase())
    .filter((word) => !stopwords.has(word))
    .map((word) => [word, ...(word.includes("_") ? word.split("_") : [])]
      .filter((form) => form).map((form) => Scorer.stemmer.stemWord(form))),
  // "grad" matches "gradient", "batch" matches "batched": a prefix of four letters or more.
  same: (a, b) => a === b || (Math.min(a.length, b.length) >= 4 && (a.startsWith(b) || b.startsWith(a))),
  // The share of the query's terms found among the words, and the share of the words matched.
  overlap: (terms, words) => {
    const hit = (forms, term) => forms.some((form) => Scorer.same(form, term));
    return [terms.filter((term) => words.some((forms) => hit(forms, term))).length / terms.length,
            words.filter((forms) => terms.some((term) => hit(forms, term))).length / (words.length || 1)];
  },
  // The terms, in order, as consecutive words of a heading.
  phrase: (terms, words) => words.some((_, start) => terms.every((term, k) =>
    start + k < words.length && words[start + k].some((form) => Scorer.same(form, term)))),
  // Per query: its terms, and each page's title and heading words (read once from the index).
  prepare: () => {
    const query = new URLSearchParams(window.location.search).get("q") || "";
    if (Scorer.query === query) return;
    Scorer.stemmer = Scorer.stemmer || new Stemmer();
    Scorer.query = query;
    Scorer.terms = Scorer.words(query).map((forms) => forms[0]).filter((t) => !/^\d+$/.test(t));
    if (Scorer.pages) return;
    const index = Search._index;
    Scorer.pages = new Map(index.docnames.map((name, file) => [name, {title: Scorer.words(index.titles[file]), headings: []}]));
    // A word in a quarter of the titles or more ("vecgrad" in every API page's) tells pages apart
    // no better than none: left out of a title's share.
    const seen = new Map();
    for (const page of Scorer.pages.values())
      for (const word of new Set(page.title.map((forms) => forms[0]))) seen.set(word, (seen.get(word) || 0) + 1);
    for (const page of Scorer.pages.values())
      page.title = page.title.filter((forms) => seen.get(forms[0]) < Scorer.pages.size / 4);
    for (const [heading, places] of Object.entries(index.alltitles))
      for (const [file] of places) Scorer.pages.get(index.docnames[file]).headings.push(Scorer.words(heading));
  },
  score: (result) => {
    const [docname, , , , score] = result;
    Scorer.prepare();
    const page = Scorer.pages.get(docname);
    if (!page || !Scorer.terms.length) return score;
    const [titleCover, titleShare] = Scorer.overlap(Scorer.terms, page.title);
    const headings = page.headings.map((words) => Scorer.overlap(Scorer.terms, words));
    const heading = Math.max(0, ...headings.map(([cover, share]) => cover + share / 4));
    const whole = headings.filter(([cover]) => cover === 1).length;  // headings on the whole query
    // A query of four words or more found as a phrase in a heading (a pasted error message, a
    // section's name) is that section's own question: it outranks a title sharing some words.
    const phrase = Scorer.terms.length >= 4 && page.headings.some((words) => Scorer.phrase(Scorer.terms, words));
    return 100 * titleCover + 30 * titleShare + 80 * heading + 2 * Math.min(whole, 5) + 100 * phrase + score / 100;
  },
};

/* Search snippets are cut from each page's HTML, where math is still TeX (MathJax typesets it in
 * the page): read it as text instead, "\(v^\top J\)" as "vᵀ J". */
const TEX_SYMBOLS = {top: "ᵀ", partial: "∂", nabla: "∇", times: "×", cdot: "·", to: "→", in: "∈",
  approx: "≈", le: "≤", ge: "≥", ne: "≠", sum: "∑", infty: "∞", alpha: "α", sigma: "σ", lambda: "λ",
  epsilon: "ε", delta: "δ", theta: "θ", mu: "μ"};
const plainMath = (tex) => tex
  .replace(/\\[()[\]]/g, "")
  .replace(/\^\\top/g, "ᵀ")
  .replace(/\\([A-Za-z]+)/g, (_, name) => TEX_SYMBOLS[name] ?? (/^(math|text|operatorname|left|right|[,;!])/.test(name) ? "" : name))
  .replace(/\\./g, " ").replace(/[{}]/g, "").replace(/\s+/g, " ").trim();
const htmlToTextWithTeX = Search.htmlToText;
Search.htmlToText = (html, anchor) => {
  const page = new DOMParser().parseFromString(html, "text/html");
  page.querySelectorAll(".math").forEach((math) => (math.textContent = plainMath(math.textContent)));
  return htmlToTextWithTeX(page.documentElement.outerHTML, anchor);
};
