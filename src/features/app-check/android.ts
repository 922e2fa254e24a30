/**
 * Android Play Integrity (loaded on demand): a classic integrity token is a JWE (A256KW + A256GCM)
 * around a JWS (ES256); both keys are the app's own, from the Play Console, so it is checked here
 * without a call to Google. The verdict must name our package and signing certificate, a
 * recognized app on a device that meets integrity, a licensed install, our challenge, and be fresh.
 */
import { compactVerify } from "jose";
import { type Config, limits } from "../../config";
import { AppError } from "../../errors";
import { fromB64url, hex } from "../../lib/crypto";

const refuse = (why: string): never => {
  throw new AppError("app_check_failed", `Play Integrity: ${why}.`);
};

interface Verdict {
  requestDetails?: { requestPackageName?: string; timestampMillis?: string | number; nonce?: string };
  appIntegrity?: { appRecognitionVerdict?: string; packageName?: string; certificateSha256Digest?: string[] };
  deviceIntegrity?: { deviceRecognitionVerdict?: string[] };
  accountDetails?: { appLicensingVerdict?: string };
}

/** A certificate digest as lowercase hex, from hex (colons allowed) or base64url (as verdicts carry them). */
function digestHex(d: string): string {
  const plain = d.replaceAll(":", "");
  if (/^[0-9a-fA-F]{64}$/.test(plain)) return plain.toLowerCase();
  try {
    return hex(fromB64url(d));
  } catch {
    return "";
  }
}

const keys = new WeakMap<Config, Promise<{ decrypt: CryptoKey; verify: CryptoKey }>>();

/** Opens a compact JWE made with A256KW and A256GCM (all Play uses) with WebCrypto alone. */
async function decryptJwe(jwe: string, kek: CryptoKey): Promise<Uint8Array> {
  const [head = "", wrapped = "", iv = "", ciphertext = "", tag = "", ...extra] = jwe.split(".");
  const header = JSON.parse(new TextDecoder().decode(fromB64url(head))) as { alg?: unknown; enc?: unknown };
  if (extra.length || header.alg !== "A256KW" || header.enc !== "A256GCM") throw new Error("unexpected JWE");
  const cek = await crypto.subtle.unwrapKey("raw", fromB64url(wrapped), kek, "AES-KW", "AES-GCM", false, ["decrypt"]);
  const sealed = new Uint8Array([...fromB64url(ciphertext), ...fromB64url(tag)]);
  const aad = new TextEncoder().encode(head);
  return new Uint8Array(
    await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromB64url(iv), additionalData: aad }, cek, sealed),
  );
}

function keysOf(cfg: Config) {
  let k = keys.get(cfg);
  if (!k) {
    const { playDecryptionKey, playVerificationKey } = cfg.appCheck;
    if (!playDecryptionKey || !playVerificationKey) return refuse("this server has no Play Integrity keys");
    const subtle = crypto.subtle;
    k = Promise.all([
      subtle.importKey("raw", fromB64url(playDecryptionKey), "AES-KW", false, ["unwrapKey"]),
      subtle.importKey("spki", fromB64url(playVerificationKey), { name: "ECDSA", namedCurve: "P-256" }, false, [
        "verify",
      ]),
    ])
      .then(([decrypt, verify]) => ({ decrypt, verify }))
      .catch(() => {
        throw new AppError("misconfigured", "PLAY_INTEGRITY_* keys could not be read.");
      });
    keys.set(cfg, k);
  }
  return k;
}

async function open(cfg: Config, token: string): Promise<Verdict> {
  const { decrypt, verify } = await keysOf(cfg);
  try {
    const plaintext = await decryptJwe(token, decrypt);
    const { payload } = await compactVerify(new TextDecoder().decode(plaintext), verify, { algorithms: ["ES256"] });
    const v: unknown = JSON.parse(new TextDecoder().decode(payload));
    return v !== null && typeof v === "object" ? (v as Verdict) : refuse("verdict not an object");
  } catch (e) {
    if (e instanceof AppError) throw e;
    return refuse("does not decrypt or verify");
  }
}

/** Verifies an integrity token made with `challenge` as its nonce; returns the package name. */
export async function verifyIntegrityToken(cfg: Config, token: string, challenge: string): Promise<string> {
  const v = await open(cfg, token);
  const req = v.requestDetails ?? {};
  const app = v.appIntegrity ?? {};
  const pkg = req.requestPackageName ?? "";
  if (!cfg.appCheck.androidPackages.includes(pkg) || app.packageName !== pkg) refuse("package not allowed");
  if (req.nonce !== challenge) refuse("wrong nonce");
  const age = Date.now() - Number(req.timestampMillis);
  if (!(age <= limits.appCheckPlayMaxAgeSec * 1000 && age > -60_000)) refuse("verdict not fresh");
  if (app.appRecognitionVerdict !== "PLAY_RECOGNIZED") refuse("app not recognized");
  const allowed = new Set(cfg.appCheck.androidCertDigests.map(digestHex));
  if (!(app.certificateSha256Digest ?? []).some((d) => allowed.has(digestHex(d)))) refuse("certificate not allowed");
  const device = v.deviceIntegrity?.deviceRecognitionVerdict ?? [];
  if (!device.includes("MEETS_DEVICE_INTEGRITY") && !device.includes("MEETS_STRONG_INTEGRITY"))
    refuse("device integrity not met");
  if (v.accountDetails?.appLicensingVerdict !== "LICENSED") refuse("not licensed");
  return pkg;
}
