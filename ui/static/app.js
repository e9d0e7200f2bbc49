// The body of each HTML component's js_on_load (ui/app.py): runs once per component, `element` being
// its root. Marker links scroll to their card and flash it; opening an article scrolls its cited
// paragraph into view; the conversation scrolls to the newest turn; "Copy answer" buttons copy
// the turn's plain text or Markdown (rendered by ui/render.py into data attributes).
if (!element.dataset.ragBound) {
  element.dataset.ragBound = "1";
  const copyText = async (text) => {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (e) {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      let ok = false;
      try { ok = document.execCommand("copy"); } catch (e2) { ok = false; }
      area.remove();
      return ok;
    }
  };
  element.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button.rag-copy");
    if (button) {
      const box = button.closest(".rag-actions");
      const data = box && box.querySelector(".rag-copy-data");
      if (!data) return;
      const text = button.dataset.format === "md" ? data.dataset.md : data.dataset.text;
      window.__ragCopied = text;  // what was copied last (the page's tests read it)
      const ok = await copyText(text);
      const said = box.querySelector(".rag-copied");
      if (said) {
        said.textContent = ok ? "Copied." : "Could not copy: select the text instead.";
        setTimeout(() => { said.textContent = ""; }, 2500);
      }
      return;
    }
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
