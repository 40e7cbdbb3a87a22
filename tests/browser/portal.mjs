// kyso's pages in a real browser (Playwright driving Debian's Chromium), as a citizen, a
// registration officer and an anonymous visitor would use them:
//   register → the RA approves at the desk → sign a PDF → check it on the verification page →
//   find it in the ledger → revoke → the verification page shows the revocation,
// with the bad inputs a user makes (wrong CCCD, PINs that differ, a file that is not a PDF, a
// file too large, an ended session, a forged form) each answered by a message in the page's
// language. A screenshot of every page goes to $KYSO_SCREENSHOTS.
//
//   KYSO_URL=http://127.0.0.1:PORT KYSO_ADMIN_TOKEN=… KYSO_PDF=doc.pdf KYSO_WORK=dir \
//   KYSO_SCREENSHOTS=dir KYSO_MAX_PDF_BYTES=N node tests/browser/portal.mjs
import { chromium } from "playwright-core";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const BASE = env("KYSO_URL");
const ADMIN = env("KYSO_ADMIN_TOKEN");
const PDF = env("KYSO_PDF");
const WORK = env("KYSO_WORK");
const SHOTS = env("KYSO_SCREENSHOTS");
const MAX_PDF = Number(env("KYSO_MAX_PDF_BYTES"));
mkdirSync(SHOTS, { recursive: true });

let step = 0;
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok ${++step} - ${what}`);
}
async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${String(step).padStart(2, "0")}-${name}.png`), fullPage: true });
}
async function text(page) {
  return page.locator("main").innerText();
}
/** Submits a form without the browser's own checks, so the server's answer is what shows. */
async function submitUnchecked(page, selector) {
  await page.locator(selector).evaluate((f) => { f.noValidate = true; });
  await Promise.all([page.waitForNavigation(), page.locator(`${selector} button[type=submit]`).click()]);
}
async function everyFieldLabelled(page) {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll("input:not([type=hidden]), select")).every((el) => el.labels && el.labels.length > 0));
}
async function fitsWidth(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  // A registration officer's account, made by the admin through the API.
  const made = await fetch(`${BASE}/api/v1/accounts`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "Cán bộ tiếp nhận", role: "ra" }),
  });
  check(made.status === 201, "the admin creates an RA account");
  const raToken = (await made.json()).token;

  // ---- The citizen, on a phone.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, acceptDownloads: true });
  const citizen = await phone.newPage();
  const cspErrors = [];
  citizen.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });
  await citizen.goto(`${BASE}/`);
  check((await citizen.locator("html").getAttribute("lang")) === "vi", "the pages are in Vietnamese by default");
  await citizen.keyboard.press("Tab");
  check(await citizen.evaluate(() => document.activeElement.classList.contains("skip")), "the first Tab reaches the skip link");
  await shot(citizen, "home");
  await citizen.goto(`${BASE}/register`);
  check(await everyFieldLabelled(citizen), "every field of the registration form has a label");
  check(await fitsWidth(citizen), "the registration page fits a 390 px wide phone");
  await shot(citizen, "register");

  // Bad input: a CCCD that is not 12 digits.
  await citizen.fill("#full_name", "Nguyễn Thị Bình");
  await citizen.fill("#citizen_id", "07919900");
  await citizen.fill("#contact", "binh@example.vn");
  await citizen.fill("#pin", "Hà-Giang-2468");
  await citizen.fill("#pin2", "Hà-Giang-2468");
  await submitUnchecked(citizen, "form[action='/register']");
  check((await text(citizen)).includes("Số CCCD phải gồm đúng 12 chữ số."), "a wrong CCCD is refused, in Vietnamese");
  check((await citizen.inputValue("#full_name")) === "Nguyễn Thị Bình", "the name typed is kept, diacritics and all");
  await shot(citizen, "register-bad-cccd");

  // Bad input: the two PINs differ (the page's own check says so too).
  await citizen.fill("#citizen_id", "079199001234");
  await citizen.fill("#pin", "Hà-Giang-2468");
  await citizen.fill("#pin2", "Hà-Giang-2469");
  check(await citizen.locator("#pin2").evaluate((e) => !e.checkValidity()), "the page flags PINs that differ before sending");
  check((await citizen.locator("#pin-strength").innerText()).startsWith("Độ mạnh"), "a PIN strength hint is shown");
  await submitUnchecked(citizen, "form[action='/register']");
  check((await text(citizen)).includes("Hai lần nhập mã PIN không khớp nhau."), "PINs that differ are refused, in Vietnamese");

  // The same mistake in English.
  await citizen.goto(`${BASE}/register?lang=en`);
  check((await citizen.locator("h1").innerText()) === "Register for a certificate", "the English switch works");
  await citizen.fill("#full_name", "Nguyễn Thị Bình");
  await citizen.fill("#citizen_id", "079199001234");
  await citizen.fill("#contact", "binh@example.vn");
  await citizen.fill("#pin", "Hà-Giang-2468");
  await citizen.fill("#pin2", "another pin");
  await submitUnchecked(citizen, "form[action='/register']");
  check((await text(citizen)).includes("The two PINs do not match."), "PINs that differ are refused, in English");
  await shot(citizen, "register-pin-mismatch-en");

  // The registration itself, back in Vietnamese.
  await citizen.goto(`${BASE}/register?lang=vi`);
  await citizen.fill("#full_name", "Nguyễn Thị Bình");
  await citizen.fill("#citizen_id", "079199001234");
  await citizen.fill("#contact", "binh@example.vn");
  await citizen.fill("#pin", "Hà-Giang-2468");
  await citizen.fill("#pin2", "Hà-Giang-2468");
  await Promise.all([citizen.waitForURL(/\/me/), citizen.click("form[action='/register'] button[type=submit]")]);
  let me = await text(citizen);
  check(me.includes("Đã gửi yêu cầu"), "the registration is filed");
  check(me.includes("đang chờ bàn tiếp nhận duyệt"), "the request waits for the registration desk");
  await shot(citizen, "me-pending");

  // ---- The registration officer, at a desktop.
  const desk = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const ra = await desk.newPage();
  // With the keyboard only: Tab to the token field, type it, Enter.
  await ra.goto(`${BASE}/login`);
  const focused = () => ra.evaluate(() => document.activeElement && document.activeElement.id);
  for (let i = 0; i < 30 && (await focused()) !== "login-token"; i++) await ra.keyboard.press("Tab");
  check((await focused()) === "login-token", "the token field is reached with the keyboard");
  await ra.keyboard.type(raToken);
  await Promise.all([ra.waitForURL(/\/desk/), ra.keyboard.press("Enter")]);
  const card = ra.locator("article.card", { hasText: "079199001234" });
  check((await card.count()) === 1, "the desk shows the citizen's request with the CCCD");
  check((await card.innerText()).includes("binh@example.vn"), "the desk shows the citizen's contact");
  await shot(ra, "desk");
  // A forged form: the anti-forgery token changed.
  await card.locator("input[name=csrf]").first().evaluate((e) => { e.value = "0".repeat(64); });
  await card.locator("input[name=checked]").check();
  await Promise.all([ra.waitForNavigation(), card.locator("form[action$='/approve'] button").click()]);
  check((await text(ra)).includes("mã chống giả mạo sai"), "a forged form is refused, in Vietnamese");
  await shot(ra, "desk-forged");
  await ra.goto(`${BASE}/desk`);
  const card2 = ra.locator("article.card", { hasText: "079199001234" });
  await card2.locator("input[name=checked]").check();
  await Promise.all([ra.waitForNavigation(), card2.locator("form[action$='/approve'] button").click()]);
  check((await ra.locator("article.card", { hasText: "079199001234" }).count()) === 0, "the approved request leaves the queue");

  // ---- The citizen: certificate, signing.
  await citizen.goto(`${BASE}/me`);
  me = await text(citizen);
  check(me.includes("còn hiệu lực"), "the citizen's certificate is active");
  const [certDownload] = await Promise.all([citizen.waitForEvent("download"), citizen.click("a[href='/me/certificate.pem']")]);
  const certPath = join(WORK, "citizen.pem");
  await certDownload.saveAs(certPath);
  check(readFileSync(certPath, "utf8").startsWith("-----BEGIN CERTIFICATE-----"), "the certificate downloads as PEM");
  check(await everyFieldLabelled(citizen), "every field of the citizen's page has a label");
  check(await fitsWidth(citizen), "the citizen's page fits the phone");
  await shot(citizen, "me-active");

  // Bad input: not a PDF, and a file too large.
  writeFileSync(join(WORK, "note.txt"), "không phải PDF");
  await citizen.setInputFiles("#pdf", join(WORK, "note.txt"));
  await citizen.fill("#sign-pin", "Hà-Giang-2468");
  await Promise.all([citizen.waitForNavigation(), citizen.click("form[action='/me/sign'] button[type=submit]")]);
  check((await text(citizen)).includes("Tệp đã chọn không phải là văn bản PDF."), "a file that is not a PDF is refused");
  await shot(citizen, "sign-not-pdf");
  await citizen.goto(`${BASE}/me`);
  const big = Buffer.concat([Buffer.from("%PDF-1.7\n"), Buffer.alloc(MAX_PDF + 4096, 0x20)]);
  writeFileSync(join(WORK, "big.pdf"), big);
  await citizen.setInputFiles("#pdf", join(WORK, "big.pdf"));
  await citizen.fill("#sign-pin", "Hà-Giang-2468");
  await Promise.all([citizen.waitForNavigation(), citizen.click("form[action='/me/sign'] button[type=submit]")]);
  check((await text(citizen)).includes("Tệp quá lớn"), "a file too large is refused");
  await shot(citizen, "sign-too-large");

  // Signing: upload, a visible position, the PIN; the signed PDF and the receipt download.
  await citizen.goto(`${BASE}/me`);
  await citizen.setInputFiles("#pdf", PDF);
  await citizen.fill("#page", "1");
  await citizen.selectOption("#position", "bottom-right");
  await citizen.fill("#reason", "Đơn đề nghị");
  await citizen.fill("#sign-pin", "Hà-Giang-2468");
  await Promise.all([citizen.waitForNavigation(), citizen.click("form[action='/me/sign'] button[type=submit]")]);
  check((await text(citizen)).includes("Đã ký xong văn bản."), "the PDF is signed");
  await shot(citizen, "signed");
  const [pdfDownload] = await Promise.all([citizen.waitForEvent("download"), citizen.click("a[href*='part=pdf']")]);
  const signedPath = join(WORK, "signed.pdf");
  await pdfDownload.saveAs(signedPath);
  const signed = readFileSync(signedPath);
  check(signed.subarray(0, 5).toString() === "%PDF-" && signed.length > readFileSync(PDF).length, "the signed PDF downloads");
  const [receiptDownload] = await Promise.all([citizen.waitForEvent("download"), citizen.click("a[href*='part=receipt']")]);
  const receiptPath = join(WORK, "receipt.json");
  await receiptDownload.saveAs(receiptPath);
  const receipt = JSON.parse(readFileSync(receiptPath, "utf8"));
  const entry = JSON.parse(Buffer.from(receipt.entry, "base64").toString("utf8"));
  check(Number.isInteger(receipt.index) && entry.kind === "document.signed", "the receipt names the ledger entry of the signature");

  // An ended session: the form says so, and nothing happens.
  const cookies = await phone.cookies();
  await phone.addCookies(cookies.map((c) => (c.name === "__Host-kyso_session" ? { ...c, value: "f".repeat(64) } : c)));
  await citizen.goto(`${BASE}/login`);
  check((await text(citizen)).includes("Phiên làm việc trước đã hết hạn."), "the log-in page says the session ended");
  await phone.addCookies(cookies);

  // ---- Anyone: the verification page (drop a PDF) and the ledger page.
  const visitor = await (await browser.newContext()).newPage();
  await visitor.goto(`${BASE}/verify`);
  check(await everyFieldLabelled(visitor), "every field of the verification form has a label");
  await visitor.setInputFiles("#file", signedPath);
  await Promise.all([visitor.waitForNavigation(), visitor.click("form[action='/verify'] button[type=submit]")]);
  let verdict = visitor.locator("article.verdict").first();
  check((await verdict.getAttribute("data-indication")) === "TOTAL_PASSED", "the verification page finds the signature valid");
  let said = await verdict.innerText();
  check(said.includes("Chữ ký hợp lệ") && said.includes("Nguyễn Thị Bình"), "the verdict names the signer, in plain words");
  check(said.includes("Có trong sổ cái của kyso"), "the verdict says the signature is in the ledger");
  check(!(await visitor.locator("article.verdict details").first().evaluate((d) => d.open)), "technical details are folded away");
  await shot(visitor, "verify-valid");

  await visitor.goto(`${BASE}/ledger`);
  await visitor.setInputFiles("[data-digest-source]", PDF);
  const expected = "sha256:" + createHash("sha256").update(readFileSync(PDF)).digest("hex");
  await visitor.waitForFunction((d) => document.querySelector("#digest").value === d, expected);
  check(true, "the ledger page computes an unsigned file's SHA-256 in the browser (WebCrypto)");
  // The signed PDF: the page hashes its signed byte ranges, which is what the ledger names.
  await visitor.setInputFiles("[data-digest-source]", signedPath);
  await visitor.waitForFunction((d) => document.querySelector("#digest").value === d, entry.document_digest);
  check(true, "for the signed PDF the browser computes the digest the ledger entry names");
  await Promise.all([visitor.waitForNavigation(), visitor.click("form[data-digest-form] button[type=submit]")]);
  check((await visitor.locator("[data-ledger-results]").innerText()).includes(`${receipt.index}`), "the ledger search finds the signature's entry");
  check(!visitor.url().includes("signed") && visitor.url().includes("digest=sha256"), "only the digest was sent");
  await shot(visitor, "ledger");

  // ---- The citizen revokes, with the PIN.
  await citizen.goto(`${BASE}/me`);
  await citizen.fill("#revoke-pin", "Hà-Giang-2468");
  await citizen.check("form[action='/me/revoke'] input[name=confirm]");
  await Promise.all([citizen.waitForNavigation(), citizen.click("form[action='/me/revoke'] button[type=submit]")]);
  check((await text(citizen)).includes("Đã thu hồi chứng thư số"), "the citizen revokes the certificate");
  await shot(citizen, "revoked");

  await visitor.goto(`${BASE}/verify`);
  await visitor.setInputFiles("#file", signedPath);
  await Promise.all([visitor.waitForNavigation(), visitor.click("form[action='/verify'] button[type=submit]")]);
  verdict = visitor.locator("article.verdict").first();
  said = await verdict.innerText();
  check(said.includes("Chứng thư đã bị thu hồi"), "the verification page now shows the certificate revoked");
  await shot(visitor, "verify-revoked");
  check(cspErrors.length === 0, `no Content-Security-Policy violation (${cspErrors.join("; ")})`);
  console.log(`all ${step} checks passed`);
} finally {
  await browser.close();
}
