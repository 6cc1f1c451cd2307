/* Small behaviours shared by every page (no inline scripts: the CSP forbids them). */
(() => {
  "use strict";

  // Copy buttons: <button data-copy="text"> followed by a <span class="copied" role="status">.
  async function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    // Plain-http deployments have no Clipboard API: fall back to a hidden textarea.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    if (!ok) throw new Error("copy refused");
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const status = button.parentElement.querySelector(".copied");
    try {
      await copy(button.dataset.copy);
      if (status) status.textContent = "Copied";
    } catch (e) {
      if (status) status.textContent = "Copy failed: select the text and copy it by hand";
    }
    if (status) {
      clearTimeout(status._timer);
      status._timer = setTimeout(() => { status.textContent = ""; }, 4000);
    }
  });

  // A file larger than the server accepts is refused here, with a clear message.
  document.addEventListener("change", (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.dataset.maxBytes) return;
    const max = Number(input.dataset.maxBytes);
    const file = input.files && input.files[0];
    input.setCustomValidity(file && file.size > max
      ? `This file is ${(file.size / 1048576).toFixed(1)} MB; at most ${(max / 1048576).toFixed(0)} MB can be uploaded.`
      : "");
    input.reportValidity();
  });

  // htmx: a response that is not HTML (a proxy's or the API's error) becomes a readable line.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const xhr = event.detail.xhr;
    const type = xhr.getResponseHeader("content-type") || "";
    if (xhr.status >= 400 && !type.startsWith("text/html")) {
      let detail = xhr.statusText || "request failed";
      try { detail = JSON.parse(xhr.responseText).detail || detail; } catch (e) { /* not JSON */ }
      const p = document.createElement("p");
      p.className = "error-text";
      p.setAttribute("role", "alert");
      p.textContent = `Error ${xhr.status}: ${detail}`;
      event.detail.serverResponse = p.outerHTML;
      event.detail.shouldSwap = true;
      event.detail.isError = true;
    }
  });
  document.addEventListener("htmx:sendError", (event) => {
    const target = event.detail.target;
    if (target) target.innerHTML = '<p class="error-text" role="alert">The server could not be reached. Check your connection and try again.</p>';
  });
})();
