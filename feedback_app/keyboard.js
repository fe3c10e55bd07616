() => {
  // Keyboard shortcuts for the annotation tabs: 1-5 choose, Enter submits, S skips.
  const kinds = ["pairwise", "rating", "ranking", "correction"];
  const visible = (el) => el && el.offsetParent !== null;
  const click = (id) => { const el = document.getElementById(id); if (visible(el)) el.click(); };
  document.addEventListener("keydown", (event) => {
    const kind = kinds.find((k) => visible(document.getElementById(`${k}-submit`)));
    if (!kind || event.altKey) return;
    const target = event.target;
    const typing = target && (target.tagName === "TEXTAREA" ||
      (target.tagName === "INPUT" && !["radio", "checkbox"].includes(target.type)));
    if (event.key === "Enter" && (!typing || event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      click(`${kind}-submit`);
      return;
    }
    if (typing || event.ctrlKey || event.metaKey) return;
    if (event.key === "s" || event.key === "S") {
      event.preventDefault();
      click(`${kind}-skip`);
    } else if (/^[1-9]$/.test(event.key)) {
      const n = Number(event.key);
      if (kind === "ranking") {
        const box = document.querySelector("#ranking-order textarea, #ranking-order input");
        if (!box) return;
        box.value = (box.value.trim() + " " + n).trim();
        box.dispatchEvent(new Event("input", { bubbles: true }));
      } else {
        const radios = document.querySelectorAll(`#${kind}-choice input[type=radio]`);
        if (radios[n - 1]) radios[n - 1].click();
      }
      event.preventDefault();
    }
  });
}
