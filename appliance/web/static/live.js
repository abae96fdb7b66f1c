// Live refresh: every few seconds, fetch this page again and swap in its <main>.
// The pages work without it; with it they follow running workflows.
(function () {
  const main = document.getElementById("live");
  const seconds = Number(main && main.dataset.refresh);
  if (!main || !seconds) return;
  async function refresh() {
    if (document.hidden || document.activeElement.closest("form")) return;
    try {
      const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("live");
      if (fresh) main.replaceChildren(...fresh.childNodes);
    } catch (error) { /* offline for a moment: try again next time */ }
  }
  setInterval(refresh, seconds * 1000);
})();
