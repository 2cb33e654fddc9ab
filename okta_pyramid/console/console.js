// The API console: signs a user in as a single-page app does (authorization code
// with PKCE, RFC 7636; WebCrypto for the challenge and for DPoP proofs, RFC 9449),
// calls the API with fetch and an Authorization: Bearer (or DPoP) header, shows
// what the browser lets the page read, decodes the token locally, and answers a
// step-up refusal (RFC 9470: insufficient_user_authentication) by signing in again
// with the acr_values and max_age the API asked for, then retrying the call.
// Everything is written with textContent, never as HTML: response bodies and
// token claims are untrusted text.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  // Headers worth showing. A cross-origin page can read only the CORS-safelisted
  // ones and those the API lists in Access-Control-Expose-Headers.
  const SHOWN_HEADERS = ["content-type", "www-authenticate", "retry-after", "cache-control"];

  // The sign-in in progress survives the redirect to the issuer in sessionStorage
  // (this tab only); the DPoP key pair in IndexedDB (its private half is not
  // extractable, so no script can read it out). Tokens stay in this page's memory.
  const PENDING = "okta-console-signin";
  const FORM = "application/x-www-form-urlencoded";
  let session = null; // {accessToken, tokenType, refreshToken, idToken, meta, clientId}

  function bytesToB64Url(bytes) {
    let text = "";
    for (const byte of bytes) text += String.fromCharCode(byte);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function textToB64Url(text) {
    return bytesToB64Url(new TextEncoder().encode(text));
  }

  function randomString(bytes) {
    return bytesToB64Url(crypto.getRandomValues(new Uint8Array(bytes)));
  }

  async function sha256(text) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  }

  function keyDatabase() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open("okta-console", 1);
      request.onupgradeneeded = () => request.result.createObjectStore("keys");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  async function keyStore(mode, action) {
    const db = await keyDatabase();
    return new Promise((resolve, reject) => {
      const tx = db.transaction("keys", mode);
      const request = action(tx.objectStore("keys"));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
    });
  }

  async function newDpopKey() {
    const pair = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    await keyStore("readwrite", (store) => store.put(pair, "dpop"));
    return pair;
  }

  async function dpopProof(method, url, accessToken, nonce) {
    const pair = await keyStore("readonly", (store) => store.get("dpop"));
    if (!pair) throw new Error("this browser holds no DPoP key: sign in again");
    const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
    const header = { typ: "dpop+jwt", alg: "ES256",
      jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } };
    const claims = { jti: randomString(16), htm: method, htu: url.split(/[?#]/)[0],
      iat: Math.floor(Date.now() / 1000) };
    if (accessToken) claims.ath = bytesToB64Url(await sha256(accessToken));
    if (nonce) claims.nonce = nonce;
    const input = `${textToB64Url(JSON.stringify(header))}.${textToB64Url(JSON.stringify(claims))}`;
    const signature = await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new TextEncoder().encode(input));
    return `${input}.${bytesToB64Url(new Uint8Array(signature))}`;
  }

  function redirectUri() {
    return location.origin + location.pathname;
  }

  function setSignInStatus(state, text) {
    const status = $("signin-status");
    status.dataset.state = state;
    status.textContent = text;
  }

  async function discover(issuer) {
    const url = `${issuer}/.well-known/openid-configuration`;
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    return response.json();
  }

  // Redirects to the issuer's login page; the answer comes back to this page.
  async function signIn(options = {}) {
    try {
      if (!window.crypto || !crypto.subtle) {
        throw new Error("this page is not a secure context, so it has no WebCrypto: "
          + "open it on https, or on http://localhost or http://127.0.0.1");
      }
      const issuer = $("issuer").value.trim().replace(/\/+$/, "");
      if (!issuer) throw new Error("enter the issuer (the API's metadata names it)");
      const meta = await discover(issuer);
      const verifier = randomString(32);
      const pending = {
        issuer, clientId: $("client-id").value.trim(), verifier,
        state: randomString(16), nonce: randomString(16), redirectUri: redirectUri(),
        dpop: $("use-dpop").checked, base: $("base").value.trim(),
        scopes: $("scopes").value.trim(), retry: options.retry || null,
        stepUp: Boolean(options.acrValues || options.maxAge !== undefined),
      };
      if (pending.dpop) await newDpopKey();
      sessionStorage.setItem(PENDING, JSON.stringify(pending));
      const params = new URLSearchParams({
        client_id: pending.clientId, response_type: "code", scope: pending.scopes,
        redirect_uri: pending.redirectUri, state: pending.state, nonce: pending.nonce,
        code_challenge: bytesToB64Url(await sha256(verifier)), code_challenge_method: "S256",
      });
      if (options.acrValues) params.set("acr_values", options.acrValues);
      if (options.maxAge !== undefined && options.maxAge !== null) {
        params.set("max_age", String(options.maxAge));
      }
      setSignInStatus("pending", "Signing in at the issuer …");
      location.assign(`${meta.authorization_endpoint}?${params}`);
    } catch (err) {
      setSignInStatus("error", `Cannot sign in: ${err.message}`);
    }
  }

  // POSTs a token request; with DPoP, answers the issuer's nonce challenge once.
  async function tokenRequest(meta, body, dpop) {
    let nonce = null;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const headers = { "Content-Type": FORM, Accept: "application/json" };
      if (dpop) headers.DPoP = await dpopProof("POST", meta.token_endpoint, null, nonce);
      const response = await fetch(meta.token_endpoint, { method: "POST", headers, body });
      const answer = await response.json().catch(() => ({}));
      if (response.ok) return answer;
      if (dpop && answer.error === "use_dpop_nonce" && attempt === 0) {
        nonce = response.headers.get("DPoP-Nonce");
        continue;
      }
      throw new Error(`${response.status} ${answer.error || ""}: ${answer.error_description || ""}`);
    }
    throw new Error("the issuer kept asking for a new DPoP nonce");
  }

  function jwtClaims(token) {
    return JSON.parse(base64UrlDecode(token.split(".")[1]));
  }

  function useTokens(tokens, meta, clientId, dpop) {
    session = {
      accessToken: tokens.access_token, tokenType: tokens.token_type || "Bearer",
      refreshToken: tokens.refresh_token || (session && session.refreshToken) || null,
      idToken: tokens.id_token || (session && session.idToken) || null,
      meta, clientId, dpop,
    };
    $("token").value = tokens.access_token;
    showClaims();
    const access = jwtClaims(tokens.access_token);
    $("id-claims").textContent = session.idToken
      ? JSON.stringify(jwtClaims(session.idToken), null, 2) : "";
    const facts = [`Signed in as ${access.sub}`, `${session.tokenType} token`];
    if (access.acr) facts.push(`acr ${access.acr}`);
    if (access.amr) facts.push(`amr ${[].concat(access.amr).join(" ")}`);
    if (access.auth_time) facts.push(`authenticated ${when(access.auth_time)}`);
    if (session.refreshToken) facts.push("refresh token held");
    setSignInStatus("ok", facts.join(" · "));
  }

  async function finishSignIn(query) {
    const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
    sessionStorage.removeItem(PENDING);
    // The code is single use, but it has no business in the address bar or history.
    history.replaceState(null, "", location.pathname);
    if (!pending || query.get("state") !== pending.state) {
      setSignInStatus("error", "The sign-in answer does not match a sign-in this page "
        + "started (state): ignored.");
      return;
    }
    $("issuer").value = pending.issuer;
    $("client-id").value = pending.clientId;
    $("scopes").value = pending.scopes;
    $("use-dpop").checked = pending.dpop;
    if (pending.base) $("base").value = pending.base;
    if (query.has("error")) {
      setSignInStatus("error",
        `The issuer refused: ${query.get("error")}: ${query.get("error_description") || ""}`);
      return;
    }
    try {
      const meta = await discover(pending.issuer);
      const body = new URLSearchParams({
        grant_type: "authorization_code", client_id: pending.clientId,
        code: query.get("code"), code_verifier: pending.verifier,
        redirect_uri: pending.redirectUri,
      });
      const tokens = await tokenRequest(meta, body, pending.dpop);
      if (tokens.id_token && jwtClaims(tokens.id_token).nonce !== pending.nonce) {
        throw new Error("the ID token's nonce is not this sign-in's");
      }
      useTokens(tokens, meta, pending.clientId, pending.dpop);
      if (pending.retry) await call(pending.retry, { afterStepUp: pending.stepUp });
    } catch (err) {
      setSignInStatus("error", `The code exchange failed: ${err.message}`);
    }
  }

  async function refreshTokens() {
    if (!session || !session.refreshToken) {
      setSignInStatus("error", "No refresh token: sign in with the offline_access scope.");
      return;
    }
    try {
      const body = new URLSearchParams({
        grant_type: "refresh_token", client_id: session.clientId,
        refresh_token: session.refreshToken,
      });
      const tokens = await tokenRequest(session.meta, body, session.dpop);
      useTokens(tokens, session.meta, session.clientId, session.dpop);
    } catch (err) {
      setSignInStatus("error", `The refresh failed: ${err.message}`);
    }
  }

  function signOut() {
    const held = session;
    session = null;
    $("token").value = "";
    $("id-claims").textContent = "";
    showClaims();
    setSignInStatus("idle", "Signed out.");
    if (held && held.idToken && held.meta.end_session_endpoint) {
      const params = new URLSearchParams({
        id_token_hint: held.idToken, post_logout_redirect_uri: redirectUri(),
      });
      location.assign(`${held.meta.end_session_endpoint}?${params}`);
    }
  }

  // RFC 9470 §3: the challenge's acr_values and max_age, from the JSON body when
  // the API sends them there, else from WWW-Authenticate.
  function stepUpChallenge(response, text) {
    const header = response.headers.get("www-authenticate") || "";
    let body = {};
    try { body = JSON.parse(text); } catch (err) { body = {}; }
    if (body.error !== "insufficient_user_authentication"
        && !/error="insufficient_user_authentication"/.test(header)) return null;
    const param = (name) => {
      const match = new RegExp(`${name}="([^"]*)"`).exec(header);
      return match ? match[1] : null;
    };
    const acrValues = body.acr_values || param("acr_values");
    const rawMaxAge = body.max_age !== undefined ? body.max_age : param("max_age");
    const maxAge = rawMaxAge === null || rawMaxAge === undefined ? undefined : Number(rawMaxAge);
    return { acrValues, maxAge };
  }

  async function loadResourceMetadata() {
    const base = $("base").value.trim().replace(/\/+$/, "");
    const url = `${base}/.well-known/oauth-protected-resource`;
    $("resource-metadata").textContent = "";
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" },
        credentials: "omit" });
      if (!response.ok) {
        $("resource-status").textContent = `${url} answered ${response.status}: `
          + "this API publishes no protected-resource metadata.";
        return;
      }
      const meta = await response.json();
      $("resource-status").textContent = `From ${url}`;
      $("resource-metadata").textContent = JSON.stringify(meta, null, 2);
      const servers = Array.isArray(meta.authorization_servers) ? meta.authorization_servers : [];
      if (!$("issuer").value.trim() && servers.length) $("issuer").value = servers[0];
    } catch (err) {
      $("resource-status").textContent = `Could not read ${url}: ${err.message}`;
    }
  }

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

  async function call(path, options = {}) {
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
    const token = bearerToken();
    // The signed-in session's DPoP-bound token goes with the DPoP scheme and a proof.
    const dpop = Boolean(session && session.tokenType === "DPoP" && token === session.accessToken);
    setStatus("pending", `GET ${url} …`);
    showHeaders(null);
    $("step-up").hidden = true;
    $("body").textContent = "";
    const started = performance.now();
    let response;
    try {
      let nonce = null;
      for (let attempt = 0; attempt < 2; attempt += 1) {
        const headers = { Accept: "application/json" };
        if (token) headers.Authorization = `${dpop ? "DPoP" : "Bearer"} ${token}`;
        if (dpop) headers.DPoP = await dpopProof("GET", url, token, nonce);
        // credentials "omit": the API authenticates by bearer token only, so no
        // cookies are sent and an Access-Control-Allow-Origin of * is enough. No
        // cache mode: "no-store" would also make Chromium skip its preflight cache.
        response = await fetch(url, { headers, mode: "cors", credentials: "omit" });
        const challenge = response.headers.get("www-authenticate") || "";
        if (!dpop || response.status !== 401 || !/use_dpop_nonce/.test(challenge)) break;
        nonce = response.headers.get("DPoP-Nonce");
      }
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
    const stepUp = response.status === 401 ? stepUpChallenge(response, text) : null;
    if (stepUp) askedToStepUp(path, stepUp, options);
  }

  function askedToStepUp(path, challenge, options) {
    const note = $("step-up");
    note.hidden = false;
    note.dataset.state = "step-up";
    const asked = [];
    if (challenge.acrValues) asked.push(`acr_values ${challenge.acrValues}`);
    if (challenge.maxAge !== undefined) asked.push(`max_age ${challenge.maxAge} s`);
    const what = `Step-up required: the API asks for a stronger or more recent sign-in (${
      asked.join(", ") || "no details"}).`;
    if (options.afterStepUp) {
      // Signed in as asked and still refused: do not loop.
      note.textContent = `${what} The new sign-in did not satisfy it; not retrying.`;
      return;
    }
    if (!$("issuer").value.trim()) {
      note.textContent = `${what} Sign in (above) to step up.`;
      return;
    }
    note.textContent = `${what} Signing in again, then retrying GET ${path} …`;
    signIn({ acrValues: challenge.acrValues, maxAge: challenge.maxAge, retry: path });
  }

  function start() {
    $("origin").textContent = location.origin;
    $("base").value = location.origin;
    $("redirect-uri").textContent = redirectUri();
    $("sign-in").addEventListener("click", () => signIn());
    $("refresh").addEventListener("click", refreshTokens);
    $("sign-out").addEventListener("click", signOut);
    $("load-resource").addEventListener("click", loadResourceMetadata);
    $("token").addEventListener("input", showClaims);
    $("clear").addEventListener("click", () => {
      $("token").value = "";
      showClaims();
    });
    for (const button of document.querySelectorAll("button.call")) {
      button.addEventListener("click", () => call(button.dataset.path));
    }
    showClaims();
    const query = new URLSearchParams(location.search);
    const pending = sessionStorage.getItem(PENDING);
    if (pending) {
      // Keep the API base URL the sign-in started with, before metadata is read.
      const base = JSON.parse(pending).base;
      if (base) $("base").value = base;
    }
    loadResourceMetadata().then(() => {
      if (query.has("state") && (query.has("code") || query.has("error"))) {
        finishSignIn(query);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
