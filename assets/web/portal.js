// kyso's pages: a PIN strength hint, the check that both PINs match, dropping a file on the
// verification form, and the ledger search's digest computed here with WebCrypto (the file
// itself is never sent). Plain script, no dependency; the pages work without it.
"use strict";

function pinScore(pin) {
  if (pin.length < 6) return 0;
  if (/^(.)\1+$/.test(pin)) return 0;
  const digits = /^\d+$/.test(pin);
  if (digits) {
    let up = true, down = true;
    for (let i = 1; i < pin.length; i++) {
      const d = pin.charCodeAt(i) - pin.charCodeAt(i - 1);
      if (d !== 1) up = false;
      if (d !== -1) down = false;
    }
    if (up || down) return 0;
  }
  let kinds = 0;
  for (const re of [/\d/, /[a-z]/, /[A-Z]/, /[^\da-zA-Z]/]) if (re.test(pin)) kinds++;
  if (pin.length >= 10 && kinds >= 2) return 2;
  if (pin.length >= 8 || kinds >= 2) return 1;
  return digits && pin.length >= 6 ? 1 : 0;
}

function setupPinForm(form) {
  const pin = form.querySelector("#pin");
  const pin2 = form.querySelector("#pin2");
  const out = form.querySelector("#pin-strength");
  const vi = document.documentElement.lang !== "en";
  const mismatch = vi ? "Hai lần nhập mã PIN không khớp nhau." : "The two PINs do not match.";
  const update = () => {
    const score = pinScore(pin.value);
    out.textContent = pin.value ? out.dataset[["weak", "fair", "strong"][score]] : "";
    out.className = "hint strength-" + score;
    pin2.setCustomValidity(pin2.value && pin2.value !== pin.value ? mismatch : "");
  };
  pin.addEventListener("input", update);
  pin2.addEventListener("input", update);
}

function setupDrop(form) {
  const input = form.querySelector("input[type=file]");
  form.addEventListener("dragover", (e) => { e.preventDefault(); form.classList.add("over"); });
  form.addEventListener("dragleave", () => form.classList.remove("over"));
  form.addEventListener("drop", (e) => {
    e.preventDefault();
    form.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) {
      const files = Array.from(e.dataTransfer.files);
      const sig = files.find((f) => /\.(p7s|p7m)$/i.test(f.name));
      const doc = files.find((f) => f !== sig);
      const set = (el, f) => { const dt = new DataTransfer(); dt.items.add(f); el.files = dt.files; };
      if (doc) set(input, doc);
      const sigInput = form.querySelector("#signature");
      if (sig && sigInput) set(sigInput, sig);
    }
  });
}

// What a signed PDF's ledger entry names is the digest of its last signature's byte ranges
// (the file minus the signature's /Contents); any other file is hashed whole.
function signedRanges(bytes) {
  if (bytes.length < 5 || String.fromCharCode(...bytes.subarray(0, 5)) !== "%PDF-") return null;
  const text = new TextDecoder("latin1").decode(bytes);
  const re = /\/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]/g;
  let m, last = null;
  while ((m = re.exec(text)) !== null) last = m;
  if (!last) return null;
  const [a, b, c, d] = last.slice(1, 5).map(Number);
  if (a !== 0 || b > c || c + d > bytes.length) return null;
  const joined = new Uint8Array(b + d);
  joined.set(bytes.subarray(a, a + b), 0);
  joined.set(bytes.subarray(c, c + d), b);
  return joined;
}

function setupDigest(form) {
  const source = form.querySelector("[data-digest-source]");
  const field = form.querySelector("#digest");
  source.addEventListener("change", async () => {
    const file = source.files && source.files[0];
    if (!file || !window.crypto || !crypto.subtle) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    const hash = await crypto.subtle.digest("SHA-256", signedRanges(bytes) || bytes);
    field.value = "sha256:" + Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
    field.dispatchEvent(new Event("input"));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-pin-form]").forEach(setupPinForm);
  document.querySelectorAll("[data-drop]").forEach(setupDrop);
  document.querySelectorAll("[data-digest-form]").forEach(setupDigest);
});
