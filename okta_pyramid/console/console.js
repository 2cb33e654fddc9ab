// The API console: calls the API with fetch and an Authorization: Bearer header,
// shows what the browser lets the page read, and decodes the token locally.
// Everything is written with textContent, never as HTML: response bodies and
// token claims are untrusted text.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  // Headers worth showing. A cross-origin page can read only the CORS-safelisted
  // ones and those the API lists in Access-Control-Expose-Headers.
  const SHOWN_HEADERS = ["content-type", "www-authenticate", "retry-after", "cache-control"];

  function base64UrlDecode(part) {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "===".slice((b64.length + 3) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  }

  function bearerToken() {
    // Accept a pasted "Bearer eyJ..." as well as the bare token.
    return $("token").value.trim().replace(/^bearer\s+/i, "").trim();
  }

  function when(seconds) {
    return new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
  }

  function relative(seconds) {
    const delta = Math.round(seconds - Date.now() / 1000);
    const abs = Math.abs(delta);
    const text = abs < 120 ? `${abs} s` : abs < 7200 ? `${Math.round(abs / 60)} min`
      : `${Math.round(abs / 3600)} h`;
    return delta >= 0 ? `in ${text}` : `${text} ago`;
  }

  function showClaims() {
    const token = bearerToken();
    const summary = $("token-summary");
    $("jwt-header").textContent = "";
    $("jwt-payload").textContent = "";
    if (!token) {
      summary.dataset.state = "empty";
      summary.textContent = "No token pasted.";
      return;
    }
    const parts = token.split(".");
    let header, payload;
    try {
      if (parts.length !== 3) {
        throw new Error(`a JWT has 3 dot-separated parts, this has ${parts.length}`);
      }
      header = JSON.parse(base64UrlDecode(parts[0]));
      payload = JSON.parse(base64UrlDecode(parts[1]));
      if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
        throw new Error("the payload is not a JSON object");
      }
    } catch (err) {
      summary.dataset.state = "invalid";
      summary.textContent = `Not a readable JWT: ${err.message}. The API will answer 401.`;
      return;
    }
    $("jwt-header").textContent = JSON.stringify(header, null, 2);
    $("jwt-payload").textContent = JSON.stringify(payload, null, 2);
    const facts = [];
    if (payload.sub !== undefined) facts.push(`sub ${payload.sub}`);
    if (payload.cid !== undefined) facts.push(`client ${payload.cid}`);
    if (payload.aud !== undefined) facts.push(`aud ${[].concat(payload.aud).join(" ")}`);
    let state = "decoded";
    if (typeof payload.exp === "number") {
      const expired = payload.exp * 1000 < Date.now();
      if (expired) state = "expired";
      facts.push(`${expired ? "expired" : "expires"} ${when(payload.exp)} (${relative(payload.exp)})`);
    }
    summary.dataset.state = state;
    summary.textContent = facts.length ? facts.join(" · ") : "Decoded; no familiar claims.";
  }

  function setStatus(state, text) {
    const status = $("status");
    status.dataset.state = state;
    status.textContent = text;
  }

  function showHeaders(response) {
    const list = $("headers");
    list.replaceChildren();
    for (const name of SHOWN_HEADERS) {
      const value = response ? response.headers.get(name) : null;
      if (value === null) continue;
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      list.append(dt, dd);
    }
  }

  function finished() {
    const status = $("status");
    status.dataset.seq = String(Number(status.dataset.seq) + 1);
    for (const button of document.querySelectorAll("button.call")) button.disabled = false;
  }

  async function call(path) {
    const base = $("base").value.trim().replace(/\/+$/, "");
    const url = base + path;
    try {
      const parsed = new URL(url);
      if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error();
    } catch (err) {
      setStatus("error", `The API base URL is not an http(s) URL: ${JSON.stringify(base)}`);
      showHeaders(null);
      $("body").textContent = "";
      finished();
      return;
    }
    for (const button of document.querySelectorAll("button.call")) button.disabled = true;
    const headers = { Accept: "application/json" };
    const token = bearerToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    setStatus("pending", `GET ${url} …`);
    showHeaders(null);
    $("body").textContent = "";
    const started = performance.now();
    let response;
    try {
      // credentials "omit": the API authenticates by bearer token only, so no
      // cookies are sent and an Access-Control-Allow-Origin of * is enough. No
      // cache mode: "no-store" would also make Chromium skip its preflight cache.
      response = await fetch(url, { headers, mode: "cors", credentials: "omit" });
    } catch (err) {
      const ms = Math.round(performance.now() - started);
      setStatus("network-error", `Network error after ${ms} ms: ${err.name}: ${err.message}`);
      $("body").textContent = [
        "The browser did not let this page read an answer. Either nothing answers at",
        `${url}, or that API does not allow calls from this page's origin`,
        `(${location.origin}): add it to the API's okta.cors_allowed_origins.`,
        "The browser's developer tools show which of the two it was.",
      ].join(" ");
      finished();
      return;
    }
    const text = await response.text();
    const ms = Math.round(performance.now() - started);
    let shown = text;
    try {
      shown = JSON.stringify(JSON.parse(text), null, 2);
    } catch (err) {
      // Not JSON: show the text as it came.
    }
    setStatus(response.ok ? "ok" : "error",
      `${response.status} ${response.statusText} · ${ms} ms · GET ${url}`);
    showHeaders(response);
    $("body").textContent = shown;
    finished();
  }

  function start() {
    $("origin").textContent = location.origin;
    $("base").value = location.origin;
    $("token").addEventListener("input", showClaims);
    $("clear").addEventListener("click", () => {
      $("token").value = "";
      showClaims();
    });
    for (const button of document.querySelectorAll("button.call")) {
      button.addEventListener("click", () => call(button.dataset.path));
    }
    showClaims();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
