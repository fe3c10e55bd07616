() => {
  // Keyboard shortcuts for the annotation tabs: 1-5 choose, Enter submits, S then a digit skips with that
  // reason (Esc cancels). In Rank, digits build the order (each response once), Backspace takes the last back.
  // In Blind A/B, 1 or A votes left, 2 or B right, T tie, X both bad, N deals another pair.
  // "Log out" logs out in this tab (Gradio opens Markdown links in a new one).
  // A refused unqueued call (no choice made, an ended login) is shown as a notice and changes no output:
  // Gradio would cover every output with a red "Error" badge and hide the item still on screen.
  const notice = (text) => {
    let box = document.getElementById("app-notice");
    if (!box) {
      box = document.createElement("div");
      box.id = "app-notice";
      box.setAttribute("role", "alert");
      box.addEventListener("click", () => { box.style.display = "none"; });
      document.body.appendChild(box);
    }
    box.textContent = text;  // text, never markup
    box.style.display = "block";
    clearTimeout(box.hideTimer);
    box.hideTimer = setTimeout(() => { box.style.display = "none"; }, 8000);
  };
  const plain = (escaped) => new DOMParser().parseFromString(escaped, "text/html").documentElement.textContent;
  const realFetch = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const response = await realFetch(input, init);
    const url = typeof input === "string" ? input : (input && input.url) || "";
    if (response.ok || !url.includes("/gradio_api/run/predict") || !init || typeof init.body !== "string") return response;
    let request, body;
    try { request = JSON.parse(init.body); body = await response.clone().json(); } catch (error) { return response; }
    const dependency = (window.gradio_config?.dependencies || []).find((d) => d.id === request.fn_index);
    if (!dependency) return response;
    if (response.status === 401) notice("Your login has ended: reload the page and log in again.");
    else if (typeof body.error === "string") notice(plain(body.error));
    else return response;
    const unchanged = dependency.outputs.map(() => ({ __type__: "update" }));
    return new Response(JSON.stringify({ data: unchanged, is_generating: false, duration: 0, average_duration: 0 }),
      { status: 200, headers: { "content-type": "application/json" } });
  };
  const kinds = ["pairwise", "rating", "ranking", "correction"];
  const visible = (el) => el && el.offsetParent !== null;
  const click = (id) => { const el = document.getElementById(id); if (visible(el)) el.click(); };
  let skipping = null;  // the kind whose skip waits for a reason
  const armSkip = (kind) => {
    skipping = kind;
    document.querySelectorAll("[id$='-reason']").forEach((el) => el.classList.toggle("skip-armed", el.id === `${kind}-reason`));
  };
  const disarmSkip = () => { skipping = null; document.querySelectorAll(".skip-armed").forEach((el) => el.classList.remove("skip-armed")); };

  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[href$='logout']");
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    window.location.assign(link.href);
  }, true);

  const blindKeys = { "1": "left", a: "left", "2": "right", b: "right", t: "tie", x: "bad", n: "next" };
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const typing = target && (target.tagName === "TEXTAREA" ||
      (target.tagName === "INPUT" && !["radio", "checkbox"].includes(target.type)));
    if (visible(document.getElementById("blind-left"))) {
      const action = blindKeys[event.key.toLowerCase()];
      if (!action || typing || event.altKey || event.ctrlKey || event.metaKey) return;
      event.preventDefault();
      click(`blind-${action}`);
      return;
    }
    const kind = kinds.find((k) => visible(document.getElementById(`${k}-submit`)));
    if (!kind || event.altKey) { disarmSkip(); return; }
    if (event.key === "Enter" && (!typing || event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      disarmSkip();
      click(`${kind}-submit`);
      return;
    }
    if (typing || event.ctrlKey || event.metaKey) return;
    if (event.key === "Escape") { disarmSkip(); return; }
    if (event.key === "s" || event.key === "S") {
      event.preventDefault();
      if (document.querySelector(`#${kind}-reason input[type=radio]:checked`)) click(`${kind}-skip`);
      else armSkip(kind);
      return;
    }
    if (/^[1-9]$/.test(event.key)) {
      const n = Number(event.key);
      event.preventDefault();
      if (skipping === kind) {
        const reasons = document.querySelectorAll(`#${kind}-reason input[type=radio]`);
        if (!reasons[n - 1]) return;
        reasons[n - 1].click();
        disarmSkip();
        setTimeout(() => click(`${kind}-skip`), 50);  // after Gradio has the reason
      } else if (kind === "ranking") {
        const box = document.querySelector("#ranking-order textarea, #ranking-order input");
        const shown = [...document.querySelectorAll("[id^='ranking-response-']")].filter(visible).length;
        const order = box ? box.value.trim().split(/\D+/).filter(Boolean) : [];
        if (!box || n > shown || order.includes(String(n))) return;
        box.value = [...order, n].join(" ");
        box.dispatchEvent(new Event("input", { bubbles: true }));
      } else {
        const radios = document.querySelectorAll(`#${kind}-choice input[type=radio]`);
        if (radios[n - 1]) radios[n - 1].click();
      }
      return;
    }
    if (event.key === "Backspace" && kind === "ranking") {
      const box = document.querySelector("#ranking-order textarea, #ranking-order input");
      if (!box) return;
      event.preventDefault();
      box.value = box.value.trim().split(/\D+/).filter(Boolean).slice(0, -1).join(" ");
      box.dispatchEvent(new Event("input", { bubbles: true }));
    }
  });
}
