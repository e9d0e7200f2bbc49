// The body of each HTML component's js_on_load (ui/app.py): runs once per component, `element` being
// its root. Marker links scroll to their card and flash it; opening an article scrolls its cited
// paragraph into view; the conversation scrolls to the newest turn.
if (!element.dataset.ragBound) {
  element.dataset.ragBound = "1";
  element.addEventListener("click", (ev) => {
    const a = ev.target.closest("a[href^='#']");
    if (!a) return;
    const target = document.getElementById(decodeURIComponent(a.getAttribute("href").slice(1)));
    if (!target) return;
    ev.preventDefault();
    const details = target.closest("details");
    if (details && !details.open) details.open = true;
    target.scrollIntoView({behavior: "smooth", block: "nearest"});
    target.classList.remove("rag-flash");
    void target.offsetWidth;
    target.classList.add("rag-flash");
    setTimeout(() => target.classList.remove("rag-flash"), 1800);
  });
  element.addEventListener("toggle", (ev) => {
    const d = ev.target;
    if (!d || d.tagName !== "DETAILS" || !d.open) return;
    const box = d.querySelector(".rag-article-body");
    const cited = box && box.querySelector(".rag-cited");
    if (box && cited) box.scrollTop = Math.max(0, cited.offsetTop - 8);
  }, true);
  if (element.closest("#rag-conv")) {
    new MutationObserver(() => {
      const conv = document.getElementById("rag-conv");
      const turns = element.querySelectorAll(".rag-turn");
      const last = turns[turns.length - 1];
      if (!conv || !last) return;
      const key = last.dataset.turn + (last.classList.contains("rag-pending") ? "p" : "d");
      if (element.dataset.ragLast === key) return;
      element.dataset.ragLast = key;
      conv.scrollTop += last.getBoundingClientRect().top - conv.getBoundingClientRect().top - 8;
    }).observe(element, {childList: true});
  }
}
