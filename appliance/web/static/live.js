// Live refresh without losing your place. Every few seconds the page asks for
// itself again with its ETag (a fingerprint of what it shows): while nothing
// changed the answer is a bodiless 304 of a few hundred bytes. When it did change,
// each region of the page (the elements of <main> marked data-region, with an id)
// is replaced by its new version, except one holding the keyboard focus or a
// selection (it waits for the next change); scroll positions are kept, a log
// scrolled to its end stays at its end, and the filter forms are never touched.
// One request at a time: the next is planned only when the last has ended.
// The pages work without this script; with it they follow running workflows.
(function () {
  "use strict";
  const main = document.getElementById("live");
  const seconds = Number(main && main.dataset.refresh);
  if (!main || !seconds) return;
  let etag = main.dataset.etag || "";
  let stop = false;
  let problem;
  let updated = Date.now();
  let paused = false;

  const status = document.createElement("p");
  status.className = "live-status";
  const text = document.createElement("span");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "live-pause";
  button.setAttribute("aria-pressed", "false");
  button.textContent = "Pause";
  button.addEventListener("click", function () {
    paused = !paused;
    button.setAttribute("aria-pressed", String(paused));
    button.textContent = paused ? "Resume" : "Pause";
    showStatus();
  });
  status.append(text, " ", button);
  main.prepend(status);

  function showStatus(problem) {
    const ago = Math.round((Date.now() - updated) / 1000);
    const when = ago < 2 ? "just now" : ago + " s ago";
    text.textContent = (paused ? "paused" : problem ? "live (" + problem + ")" : "live") + " · updated " + when;
  }

  function busy(region) {
    const active = document.activeElement;
    if (active && active !== document.body && region.contains(active)) return true;
    const selection = window.getSelection();
    return selection && !selection.isCollapsed && selection.rangeCount > 0 &&
      region.contains(selection.getRangeAt(0).commonAncestorContainer);
  }

  function scrolled(region) {
    // Scroll positions of the region's scrollable parts, by id: a part at its end stays at its end.
    const places = {};
    region.querySelectorAll("[id]").forEach(function (element) {
      if (element.scrollHeight > element.clientHeight || element.scrollTop) {
        const atEnd = element.scrollTop + element.clientHeight >= element.scrollHeight - 4;
        places[element.id] = { top: element.scrollTop, left: element.scrollLeft, atEnd: atEnd };
      }
    });
    return places;
  }

  function restore(region, places) {
    Object.keys(places).forEach(function (id) {
      const element = region.querySelector("#" + CSS.escape(id));
      if (!element) return;
      const place = places[id];
      element.scrollTop = place.atEnd ? element.scrollHeight : place.top;
      element.scrollLeft = place.left;
    });
  }

  function swap(page) {
    let waiting = false;
    page.querySelectorAll("#live [data-region][id]").forEach(function (fresh) {
      const old = document.getElementById(fresh.id);
      if (!old) return;
      if (busy(old)) { waiting = true; return; }
      const places = scrolled(old);
      old.replaceWith(fresh);
      restore(fresh, places);
    });
    return waiting;
  }

  async function refresh() {
    if (paused || document.hidden) return;
    const headers = { Accept: "text/html" };
    if (etag) headers["If-None-Match"] = etag;
    const response = await fetch(window.location.href, { headers: headers, cache: "no-store" });
    if (response.status === 304) { updated = Date.now(); return; }
    if (!response.ok) return "the server answered " + response.status;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("live");
    if (!fresh) return;
    // A region left as it was (focus or selection in it) is fetched again next time.
    if (!swap(page)) etag = response.headers.get("ETag") || "";
    updated = Date.now();
    if (!Number(fresh.dataset.refresh)) stop = true;  // the run finished: nothing more will come
  }

  async function loop() {
    try { problem = await refresh(); } catch (error) { problem = "offline for a moment"; }
    showStatus(problem);
    if (stop) { text.textContent = "finished · no more updates"; button.hidden = true; return; }
    setTimeout(loop, seconds * 1000);
  }
  showStatus();
  setInterval(function () { if (!stop) showStatus(problem); }, 1000);
  setTimeout(loop, seconds * 1000);
})();
